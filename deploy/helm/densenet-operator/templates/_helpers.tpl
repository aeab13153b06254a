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
one Role per watched namespace. Every verb says which operator action needs it.
*/}}
{{- define "densenet-operator.jobRules" -}}
# The jobs themselves: watched by kopf; patch for kopf's finalizer and its handler-progress
# annotations; update for whole-object writes of the spec-side fields the operator owns.
- apiGroups: [densenet.dev]
  resources: [densenettrainingjobs]
  verbs: [get, list, watch, patch, update]
# status: phase, conditions, replica counts, restarts and progress are written here.
- apiGroups: [densenet.dev]
  resources: [densenettrainingjobs/status]
  verbs: [get, patch, update]
# Trainer pods: created per replica and attempt, watched for exit codes and the Ascend device
# plugin's annotation, deleted on restart, suspend and cleanPodPolicy, patched when adopted.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete, patch]
# Headless Services (one per worker, the TF_CONFIG host names) and ConfigMaps (the Ascend rank
# table rings-config-<job>): created with the job, patched when the rank table completes.
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [get, list, watch, create, delete, patch]
# Events on jobs (phase changes, restarts with their cause): kopf posts core/v1 Events, newer
# clients post events.k8s.io/v1; patch lets a repeated Event count up instead of piling up.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- if .Values.gangScheduling.volcano }}
# Gang scheduling: one Volcano PodGroup per job attempt, so all its pods start together.
- apiGroups: [scheduling.volcano.sh]
  resources: [podgroups]
  verbs: [get, create, delete]
{{- end }}
{{- end }}
