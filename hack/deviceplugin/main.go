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
			if err := p.annotate(ctx, ids); err != nil {
				log.Printf("annotating the pod of devices %s: %v", joined, err)
			}
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

// annotate finds the pod the kubelet is allocating for, as MindCluster's plugin does: the
// oldest pod on this node, not yet running, that asks for the resource and has no
// annotation yet; and writes the devices it got. Device IPs are made up (strings in the rank
// table, never dialled).
func (p *plugin) annotate(ctx context.Context, ids []string) error {
	pods, err := p.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: "spec.nodeName=" + p.node + ",status.phase=Pending",
	})
	if err != nil {
		return err
	}
	var candidates []corev1.Pod
	for _, pod := range pods.Items {
		if _, done := pod.Annotations[ascendAnnotation]; done {
			continue
		}
		for _, c := range pod.Spec.Containers {
			if q, ok := c.Resources.Limits[corev1.ResourceName(p.vendor.resource)]; ok && int(q.Value()) == len(ids) {
				candidates = append(candidates, pod)
				break
			}
		}
	}
	if len(candidates) == 0 {
		return fmt.Errorf("no pending pod on %s asks for %d %s", p.node, len(ids), p.vendor.resource)
	}
	sort.Slice(candidates, func(a, b int) bool {
		return candidates[a].CreationTimestamp.Before(&candidates[b].CreationTimestamp)
	})
	pod := candidates[0]
	conf := ascendConfiguration{PodName: pod.Name, ServerID: p.nodeIP, HostIP: p.nodeIP}
	for _, id := range ids {
		conf.Devices = append(conf.Devices, ascendDevice{id, fmt.Sprintf("192.168.100.%d", 101+atoi(id))})
	}
	value, _ := json.Marshal(conf)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{ascendAnnotation: string(value)}}})
	_, err = p.kube.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
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
	flag.Parse()
	v, ok := vendors[*kind]
	if !ok {
		log.Fatalf("--vendor must be ascend or gaudi, not %q", *kind)
	}
	if *resource == "" {
		log.Fatalf("--resource is required")
	}
	v.resource = *resource
	p := &plugin{vendor: v, count: *count, node: *node, nodeIP: *nodeIP}
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
