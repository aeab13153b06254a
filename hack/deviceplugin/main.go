// Command fake-device-plugin advertises fake accelerators to a real kubelet through the
// device-plugin API (k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1: Register,
// ListAndWatch, Allocate), as the vendors' plugins do, so the kubelet, the scheduler and the
// operator meet extended resources the way they will on Ascend and Gaudi nodes. Test
// infrastructure: there are no devices behind it, and Allocate returns only what the vendors'
// plugins return in the environment (Ascend: ASCEND_VISIBLE_DEVICES; Gaudi:
// HABANA_VISIBLE_DEVICES and HABANA_VISIBLE_MODULES), no device nodes. The Ascend one also
// writes the pod annotation ascend.kubectl.kubernetes.io/ascend-910-configuration that
// MindCluster's plugin writes, which the operator reads to build the rank table.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	podresources "k8s.io/kubelet/pkg/apis/podresources/v1"
)

const ascendAnnotation = "ascend.kubectl.kubernetes.io/ascend-910-configuration"

type vendor struct {
	resource string // from --resource (devcluster's config names it)
	env      func(ids string) map[string]string
}

var vendors = map[string]vendor{
	"ascend": {env: func(ids string) map[string]string {
		return map[string]string{"ASCEND_VISIBLE_DEVICES": ids}
	}},
	"gaudi": {env: func(ids string) map[string]string {
		return map[string]string{"HABANA_VISIBLE_DEVICES": ids, "HABANA_VISIBLE_MODULES": ids}
	}},
}

type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	vendor vendor
	count  int
	node   string
	nodeIP string
	kube   kubernetes.Interface // nil: no annotation (Gaudi)
	// The kubelet's pod-resources socket (Ascend: which pod got which devices).
	podResources string
}

func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

func (p *plugin) ListAndWatch(_ *pluginapi.Empty, stream grpc.ServerStreamingServer[pluginapi.ListAndWatchResponse]) error {
	devices := make([]*pluginapi.Device, p.count)
	for i := range devices {
		devices[i] = &pluginapi.Device{ID: strconv.Itoa(i), Health: pluginapi.Healthy}
	}
	if err := stream.Send(&pluginapi.ListAndWatchResponse{Devices: devices}); err != nil {
		return err
	}
	<-stream.Context().Done() // fake devices never change
	return nil
}

func (p *plugin) Allocate(ctx context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, container := range req.ContainerRequests {
		ids := append([]string(nil), container.DevicesIds...)
		sort.Slice(ids, func(a, b int) bool { return atoi(ids[a]) < atoi(ids[b]) })
		joined := strings.Join(ids, ",")
		resp.ContainerResponses = append(resp.ContainerResponses,
			&pluginapi.ContainerAllocateResponse{Envs: p.vendor.env(joined)})
		if p.kube != nil {
			go p.annotate(ids) // once the kubelet has recorded the allocation
		}
	}
	return resp, nil
}

func (p *plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

type ascendDevice struct {
	DeviceID string `json:"device_id"`
	DeviceIP string `json:"device_ip"`
}

type ascendConfiguration struct {
	PodName  string         `json:"pod_name"`
	ServerID string         `json:"server_id"`
	HostIP   string         `json:"host_ip"`
	Devices  []ascendDevice `json:"devices"`
}

// annotate writes the devices a pod got into its annotation, as MindCluster's plugin does.
// Allocate does not say which pod it is for: MindCluster's plugin picks the pending pod on the
// node with the earliest Volcano predicate-time annotation (without Volcano, the first listed),
// which is a guess when the operator creates a job's pods within one second. Here
// the kubelet's pod-resources API (List), once Allocate has returned, names the pod whose
// container holds exactly these devices. Device IPs are made up (strings in the rank table,
// never dialled).
func (p *plugin) annotate(ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	want := strings.Join(ids, ",")
	conn, err := grpc.NewClient("unix://"+p.podResources, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Printf("annotating the pod of devices %s: %v", want, err)
		return
	}
	defer conn.Close()
	lister := podresources.NewPodResourcesListerClient(conn)
	for {
		pod, err := p.holder(ctx, lister, want)
		if err == nil && pod != nil {
			if err = p.write(ctx, pod, ids); err == nil {
				log.Printf("annotated %s/%s with devices %s", pod.Namespace, pod.Name, want)
				return
			}
		}
		select {
		case <-ctx.Done():
			log.Printf("annotating the pod of devices %s: no pod holds them (%v)", want, err)
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// holder is the pod, not yet annotated, whose container the kubelet gave exactly `want`
// (sorted ids, comma-joined) of this plugin's resource; nil while the kubelet lists none.
func (p *plugin) holder(ctx context.Context, lister podresources.PodResourcesListerClient, want string) (*corev1.Pod, error) {
	listed, err := lister.List(ctx, &podresources.ListPodResourcesRequest{})
	if err != nil {
		return nil, err
	}
	for _, held := range listed.PodResources {
		for _, c := range held.Containers {
			var got []string // the kubelet lists a container's devices one entry each
			for _, d := range c.Devices {
				if d.ResourceName == p.vendor.resource {
					got = append(got, d.DeviceIds...)
				}
			}
			sort.Slice(got, func(a, b int) bool { return atoi(got[a]) < atoi(got[b]) })
			if strings.Join(got, ",") != want {
				continue
			}
			// The name may be an earlier pod's, already annotated and still going.
			pod, err := p.kube.CoreV1().Pods(held.Namespace).Get(ctx, held.Name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			if _, done := pod.Annotations[ascendAnnotation]; !done && pod.Spec.NodeName == p.node {
				return pod, nil
			}
		}
	}
	return nil, nil
}

func (p *plugin) write(ctx context.Context, pod *corev1.Pod, ids []string) error {
	conf := ascendConfiguration{PodName: pod.Name, ServerID: p.nodeIP, HostIP: p.nodeIP}
	for _, id := range ids {
		conf.Devices = append(conf.Devices, ascendDevice{id, fmt.Sprintf("192.168.100.%d", 101+atoi(id))})
	}
	value, _ := json.Marshal(conf)
	// The pod's UID as a precondition: never the annotation of a pod of the same name.
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid": pod.UID, "annotations": map[string]string{ascendAnnotation: string(value)},
	}})
	_, err := p.kube.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

func register(dir, endpoint, resource string) error {
	conn, err := grpc.NewClient("unix://"+filepath.Join(dir, "kubelet.sock"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version: pluginapi.Version, Endpoint: endpoint, ResourceName: resource,
	})
	return err
}

func main() {
	kind := flag.String("vendor", "", "ascend or gaudi")
	resource := flag.String("resource", "", "the extended resource to advertise (huawei.com/Ascend910, habana.ai/gaudi)")
	count := flag.Int("count", 8, "devices to advertise")
	dir := flag.String("plugin-dir", pluginapi.DevicePluginPath, "the kubelet's device-plugins directory")
	node := flag.String("node", "", "this node's name (Ascend: to find the pod to annotate)")
	nodeIP := flag.String("node-ip", "", "this node's IP (Ascend: the annotation's server_id)")
	kubeconfig := flag.String("kubeconfig", "", "Ascend: the kubeconfig to annotate pods with")
	podResources := flag.String("pod-resources-socket", "/var/lib/kubelet/pod-resources/kubelet.sock", "Ascend: the kubelet's pod-resources socket (<root-dir>/pod-resources/kubelet.sock)")
	flag.Parse()
	v, ok := vendors[*kind]
	if !ok {
		log.Fatalf("--vendor must be ascend or gaudi, not %q", *kind)
	}
	if *resource == "" {
		log.Fatalf("--resource is required")
	}
	v.resource = *resource
	p := &plugin{vendor: v, count: *count, node: *node, nodeIP: *nodeIP, podResources: *podResources}
	if *kind == "ascend" {
		config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
		if err != nil {
			log.Fatalf("--kubeconfig: %v", err)
		}
		p.kube = kubernetes.NewForConfigOrDie(config)
	}
	endpoint := "densenet-fake-" + *kind + ".sock"
	socket := filepath.Join(*dir, endpoint)
	_ = os.Remove(socket)
	listener, err := net.Listen("unix", socket)
	if err != nil {
		log.Fatalf("listen %s: %v", socket, err)
	}
	server := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(server, p)
	go func() {
		if err := server.Serve(listener); err != nil {
			log.Fatalf("serve: %v", err)
		}
	}()
	if err := register(*dir, endpoint, v.resource); err != nil {
		log.Fatalf("registering %s with the kubelet: %v", v.resource, err)
	}
	log.Printf("registered %d x %s with the kubelet", *count, v.resource)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.Stop()
	_ = os.Remove(socket)
}
