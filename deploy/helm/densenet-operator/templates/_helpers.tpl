{{/*
The chart's name, or nameOverride.
*/}}
{{- define "densenet-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A fully qualified name: the release name, followed by the chart name unless the release name
already contains it. Truncated at 63 characters (DNS label limit).
*/}}
{{- define "densenet-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "densenet-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "densenet-operator.labels" -}}
helm.sh/chart: {{ include "densenet-operator.chart" . }}
{{ include "densenet-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the operator pod.
*/}}
{{- define "densenet-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "densenet-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "densenet-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "densenet-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image: repository:tag, the tag defaulting to the chart's appVersion.
*/}}
{{- define "densenet-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
"true" when the Prometheus Operator objects are to be rendered: monitoring.mode "always", or
"auto" and the cluster serves monitoring.coreos.com/v1 (`helm template` without a cluster:
pass --api-versions monitoring.coreos.com/v1, or set monitoring.mode=always).
*/}}
{{- define "densenet-operator.monitoring" -}}
{{- if eq .Values.monitoring.mode "always" -}}
true
{{- else if and (eq .Values.monitoring.mode "auto") (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}
true
{{- end -}}
{{- end }}

{{/*
Labels on the ServiceMonitor, PodMonitor and PrometheusRule: the chart's, the `release` label
kube-prometheus-stack selects by, and any extra ones.
*/}}
{{- define "densenet-operator.monitoringLabels" -}}
{{ include "densenet-operator.labels" . }}
{{- with .Values.monitoring.release }}
release: {{ . | quote }}
{{- end }}
{{- with .Values.monitoring.additionalLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
RBAC rules on the objects of jobs: in the ClusterRole when watching every namespace, else in
one Role per watched namespace. Each rule names the operator code that makes the request; the
set is the one tests/deploy/test_rbac_audit.py sees the operator use in the API server's audit
log, no more and no less.
*/}}
{{- define "densenet-operator.jobRules" -}}
# The jobs: kopf lists and watches them (handlers.py job_changed); every reconcile and
# progress read gets its job by name (kube.py read_job); a finished job past
# runPolicy.ttlSecondsAfterFinished is deleted (kube.py delete_job).
- apiGroups: [densenet.dev]
  resources: [densenettrainingjobs]
  verbs: [get, list, watch, delete]
# status: merge-patched by reconciles and progress reads (kube.py patch_status).
- apiGroups: [densenet.dev]
  resources: [densenettrainingjobs/status]
  verbs: [patch]
# finalizers: no request of its own. Every child's ownerReference sets blockOwnerDeletion
# (kube.py owner_reference), which the OwnerReferencesPermissionEnforcement admission plugin
# allows only to a client that may update the owner's finalizers.
- apiGroups: [densenet.dev]
  resources: [densenettrainingjobs/finalizers]
  verbs: [update]
# Every child (pods, Service, ConfigMaps, PodGroup) is created by name (kube.py create); on a
# 409 the one there is read (get) to tell the job's own child from a foreign object it never
# adopts. The garbage collector deletes children with their job (ownerReferences).
# Trainer pods: kopf lists and watches them (handlers.py pod_changed); reconciles list a job's
# pods (kube.py list_pods), create them per replica and attempt and delete them on a restart,
# suspend, deadline or cleanPodPolicy (kube.py delete_pod).
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
# The job's headless Service (the TF_CONFIG host names): created with the job.
- apiGroups: [""]
  resources: [services]
  verbs: [get, create]
# ConfigMaps (TF_CONFIG's cluster, Ascend's rank table rings-config-<job>): created with the
# job; the rank table is read and merge-patched when the device plugin's annotations complete
# it or a new attempt resets it (kube.py write_config_map).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, patch]
# Events on jobs (phase changes, restarts with their cause): core/v1, as `kubectl describe`
# shows them (kube.py post_event). List: a pod's Warning Events, read when it stays Pending with
# no reason in its status (a volume the kubelet cannot mount), for PodsNotStarting
# (kube.py pod_warning).
- apiGroups: [""]
  resources: [events]
  verbs: [create, list]
{{- if .Values.networkPolicy.enabled }}
# The job's NetworkPolicy (render.render_network_policy): created with the job, get on a 409.
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create]
{{- end }}
{{- if .Values.gangScheduling.kueue }}
# Kueue: the Workload of a job's pod group (named after the job), read while its pods wait at
# Kueue's admission gate, for Kueue's reason in the job's Queued condition (kube.py workload).
- apiGroups: [kueue.x-k8s.io]
  resources: [workloads]
  verbs: [get]
# Kueue holds a pod group's quota (and its finalizer on the pods) until the group ends: the
# pods of a failed or deleted job are annotated kueue.x-k8s.io/retriable-in-group=false
# (kube.py annotate_pod, reconcile.py end_groups_of_deleted).
- apiGroups: [""]
  resources: [pods]
  verbs: [patch]
{{- end }}
{{- if .Values.gangScheduling.volcano }}
# Gang scheduling: one Volcano PodGroup per job, shared by its attempts (kube.py create, get
# on a 409 as for every child).
- apiGroups: [scheduling.volcano.sh]
  resources: [podgroups]
  verbs: [get, create]
{{- end }}
{{- end }}
