# Developer entry points. `make test` is the test command CI runs.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
UV := $(VENV)/bin/uv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: system-packages venv venv-keras2 binaries test lint cluster-up cluster-down cluster-status demo clean \
  docker-daemon images locks kind-e2e kind-down

# Editable installs map packages at install time: a new package directory needs a reinstall.
PACKAGE_MARKERS := $(wildcard contract/src/*/__init__.py trainer/src/*/__init__.py operator/src/*/__init__.py hack/*/__init__.py)

$(VENV)/.installed: requirements/dev.txt contract/pyproject.toml trainer/pyproject.toml operator/pyproject.toml hack/pyproject.toml $(PACKAGE_MARKERS)
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet uv==0.13.9
	$(UV) pip install --quiet --python $(VENV)/bin/python -r requirements/dev.txt \
	  -e contract -e trainer -e operator -e hack
	touch $@

venv: $(VENV)/.installed

.venv-keras2/.installed: requirements/keras2.txt contract/pyproject.toml trainer/pyproject.toml | $(VENV)/.installed
	test -x .venv-keras2/bin/python || $(PY) -m venv .venv-keras2
	$(UV) pip install --quiet --python .venv-keras2/bin/python -r requirements/keras2.txt \
	  -e contract -e trainer
	touch $@

venv-keras2: .venv-keras2/.installed

binaries:
	bash hack/build-binaries.sh

# prometheus (promtool), iproute2, util-linux from Debian, when missing (needs root).
system-packages:
	bash hack/install-system-packages.sh

test: system-packages venv venv-keras2 binaries images
	$(VENV)/bin/pytest tests --durations=30

# A Docker daemon for the image builds and tests: started when none answers (needs root), left
# running; `bash hack/dockerd.sh stop` stops the one it started.
docker-daemon:
	bash hack/dockerd.sh start

# densenet-operator:$(IMAGE_TAG) and densenet-trainer:$(IMAGE_TAG); BASE_IMAGE overrides the
# pinned official base (where none can be pulled, a Debian-built base is used, and said so).
IMAGE_TAG ?= dev
images: docker-daemon
	IMAGE_TAG=$(IMAGE_TAG) bash images/build.sh

# The images' lock files (requirements/*.lock, with hashes) from requirements/*.in.
locks: venv
	bash requirements/lock.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint $(wildcard Dockerfile.*)

# DEVCLUSTER_ARGS: e.g. "--with kueue" (Kueue's manager, CRDs and webhooks; off by default).
cluster-up: venv binaries
	$(VENV)/bin/devcluster up $(DEVCLUSTER_ARGS)

cluster-down: venv
	$(VENV)/bin/devcluster down

cluster-status: venv
	$(VENV)/bin/devcluster status

# The product end to end: cluster and its real node, the images, the chart, a 2-worker CPU job on
# digits (needs root).
# `make demo DEMO_ARGS=--keep` leaves it all running.
demo: system-packages venv binaries images
	IMAGE_TAG=$(IMAGE_TAG) $(VENV)/bin/python -m devcluster.demo $(DEMO_ARGS)

# The chart end to end on a kind cluster (hack/kind-e2e.sh: the images, kind's node image and
# its own Docker daemon from hack/kind, kind load, helm install, a job to Succeeded; needs root).
# KEEP_CLUSTER=1 keeps the cluster; `make kind-down` removes it, its network and its daemon.
kind-e2e: system-packages venv binaries docker-daemon
	bash hack/kind-e2e.sh

kind-down:
	bash hack/kind/daemon.sh stop

clean:
	rm -rf $(VENV) .venv-keras2

.PHONY: dashboards chart

# Grafana dashboards from code (deploy/densenet_dashboards) into the chart; never edit that JSON.
dashboards: venv
	PYTHONPATH=deploy $(VENV)/bin/python -m densenet_dashboards

# Every generated chart file: the dashboards, values.schema.json (from values.yaml's comments)
# and the chart's copy of crds/. tests/deploy fails when any of them is stale.
chart: dashboards
	PYTHONPATH=deploy $(VENV)/bin/python -m densenet_chart
