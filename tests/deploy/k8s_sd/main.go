// Command densenet-k8s-sd runs Prometheus's own Kubernetes service discovery
// (github.com/prometheus/prometheus/discovery/kubernetes, the code behind
// kubernetes_sd_configs) and serves what it finds in the http_sd format, one URL per
// scrape job. Debian's Prometheus is built without kubernetes_sd_configs; with this,
// it gets the same targets and the same __meta_kubernetes_* labels through
// http_sd_configs, and the scrape jobs' relabel_configs stay exactly as written for
// kubernetes_sd_configs.
//
// Usage: densenet-k8s-sd -config FILE -listen 127.0.0.1:PORT
// FILE: {"jobs": {"<job>": <one kubernetes_sd_configs entry>}}; GET /targets/<job>.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/kubernetes"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"gopkg.in/yaml.v2"
)

type fileConfig struct {
	Jobs map[string]*kubernetes.SDConfig `yaml:"jobs"`
}

// httpGroup is one entry of the http_sd format.
type httpGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

func main() {
	configPath := flag.String("config", "", "YAML file: {jobs: {name: kubernetes SD config}}")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve /targets/<job> on")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	raw, err := os.ReadFile(*configPath)
	if err != nil {
		logger.Error("cannot read the config", "err", err)
		os.Exit(2)
	}
	var cfg fileConfig
	if err := yaml.UnmarshalStrict(raw, &cfg); err != nil {
		logger.Error("bad config", "err", err)
		os.Exit(2)
	}
	configs := map[string]discovery.Configs{}
	for name, sd := range cfg.Jobs {
		configs[name] = discovery.Configs{sd}
	}

	registry := prometheus.NewRegistry()
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(registry)
	if err != nil {
		logger.Error("metrics", "err", err)
		os.Exit(1)
	}
	manager := discovery.NewManager(context.Background(), logger, registry, sdMetrics)
	if manager == nil {
		logger.Error("cannot create the discovery manager")
		os.Exit(1)
	}
	if err := manager.ApplyConfig(configs); err != nil {
		logger.Error("apply config", "err", err)
		os.Exit(2)
	}
	go func() {
		if err := manager.Run(); err != nil {
			logger.Error("discovery stopped", "err", err)
			os.Exit(1)
		}
	}()

	var mu sync.Mutex
	current := map[string][]httpGroup{}
	go func() {
		for all := range manager.SyncCh() {
			next := map[string][]httpGroup{}
			for job, groups := range all {
				next[job] = flatten(groups)
			}
			mu.Lock()
			current = next
			mu.Unlock()
		}
	}()

	http.HandleFunc("/targets/", func(w http.ResponseWriter, r *http.Request) {
		job := strings.TrimPrefix(r.URL.Path, "/targets/")
		mu.Lock()
		groups := current[job]
		mu.Unlock()
		if groups == nil {
			groups = []httpGroup{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(groups)
	})
	logger.Info("serving", "listen", *listen)
	if err := http.ListenAndServe(*listen, nil); err != nil {
		logger.Error("serve", "err", err)
		os.Exit(1)
	}
}

// flatten gives each target its own http_sd group: the http_sd format has no per-target
// labels, and Kubernetes SD puts the container port's labels on each target.
func flatten(groups []*targetgroup.Group) []httpGroup {
	var out []httpGroup
	for _, group := range groups {
		for _, target := range group.Targets {
			labels := map[string]string{}
			for k, v := range group.Labels {
				labels[string(k)] = string(v)
			}
			for k, v := range target {
				labels[string(k)] = string(v)
			}
			address := labels[model.AddressLabel]
			delete(labels, model.AddressLabel)
			out = append(out, httpGroup{Targets: []string{address}, Labels: labels})
		}
	}
	return out
}
