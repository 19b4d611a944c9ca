{{/*
Names and labels. Kubernetes limits names and label values to 63 characters, so
every name is truncated there (and any trailing "-" removed), as in the
prometheus-community charts.
*/}}

{{- define "todo-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "todo-operator.fullname" -}}
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

{{/* A component's name: "<fullname>-<component>", truncated so the suffix survives. */}}
{{- define "todo-operator.componentName" -}}
{{- $suffix := printf "-%s" .component }}
{{- $base := include "todo-operator.fullname" .root | trunc (int (sub 63 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s%s" $base $suffix }}
{{- end }}

{{- define "todo-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "todo-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "todo-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "todo-operator.labels" -}}
helm.sh/chart: {{ include "todo-operator.chart" . }}
{{ include "todo-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "todo-operator.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: todo-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of one component: call with (dict "root" $ "component" "api"). */}}
{{- define "todo-operator.componentLabels" -}}
{{ include "todo-operator.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "todo-operator.componentSelectorLabels" -}}
{{ include "todo-operator.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The components of the operator's pods, as a JSON list: "operator", then "operator-<shard>" for each of operator.shards. */}}
{{- define "todo-operator.operatorComponents" -}}
{{- $components := list "operator" }}
{{- range .Values.operator.shards }}
{{- $components = append $components (printf "operator-%s" .name) }}
{{- end }}
{{- toJson $components }}
{{- end }}

{{- define "todo-operator.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* The image reference: a digest wins over a tag. */}}
{{- define "todo-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "todo-operator.imageTag" .) }}
{{- end }}
{{- end }}

{{- define "todo-operator.operatorServiceAccount" -}}
{{ include "todo-operator.componentName" (dict "root" . "component" "operator") }}
{{- end }}
{{- define "todo-operator.apiServiceAccount" -}}
{{ include "todo-operator.componentName" (dict "root" . "component" "api") }}
{{- end }}
{{- define "todo-operator.notifyServiceAccount" -}}
{{ include "todo-operator.componentName" (dict "root" . "component" "notify") }}
{{- end }}
{{- define "todo-operator.relayServiceAccount" -}}
{{ include "todo-operator.componentName" (dict "root" . "component" "relay") }}
{{- end }}

{{- define "todo-operator.apiNamespace" -}}
{{- default .Release.Namespace .Values.api.namespace }}
{{- end }}

{{/* The existing Secret with the DSN: the processes read it, and so does KEDA's relay trigger. */}}
{{- define "todo-operator.databaseSecret" -}}
{{- required "database.existingSecret is required (a Secret holding the PostgreSQL DSN)" .Values.database.existingSecret }}
{{- end }}

{{/* The DSN from the existing Secret, as TODO_DATABASE_URL. */}}
{{- define "todo-operator.databaseEnv" -}}
- name: TODO_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "todo-operator.databaseSecret" . }}
      key: {{ .Values.database.secretKey }}
- name: TODO_DATABASE_POOL_SIZE
  value: {{ .Values.database.poolSize | quote }}
{{- end }}

{{/* How the operator and the relay learn of new work written elsewhere (docs/ARCHITECTURE.md, "Wake-ups"). */}}
{{- define "todo-operator.wakeupsEnv" -}}
- name: TODO_LISTEN_NOTIFY
  value: {{ .Values.database.listenNotify | quote }}
{{- end }}

{{/* Logs and traces (docs/MONITORING.md), the same for every component. */}}
{{- define "todo-operator.telemetryEnv" -}}
- name: TODO_LOG_FORMAT
  value: {{ .Values.telemetry.logFormat | quote }}
{{- with .Values.telemetry.tracing }}
{{- if .zipkinEndpoint }}
- name: TODO_ZIPKIN_ENDPOINT
  value: {{ .zipkinEndpoint | quote }}
- name: TODO_TRACE_SAMPLE_RATIO
  value: {{ .sampleRatio | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* A writable, memory-backed /tmp: the root file system is read-only. */}}
{{- define "todo-operator.tmpVolume" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}
{{- define "todo-operator.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
"true" when the operator's pod has a Dapr sidecar: it runs the outbox relay (not relay.enabled), or its
reminders are jobs on the Dapr Scheduler (reminders.mode dapr-jobs), which reach it through the sidecar.
operator-deployment.yaml (annotations) and networkpolicies.yaml (the sidecar's egress) both follow it.
*/}}
{{- define "todo-operator.operatorHasSidecar" -}}
{{- if and .Values.dapr.enabled (or (not .Values.relay.enabled) (eq .Values.reminders.mode "dapr-jobs")) }}true{{ end }}
{{- end }}

{{- define "todo-operator.daprAnnotations" -}}
{{- $root := .root }}
dapr.io/enabled: "true"
dapr.io/app-id: {{ .appId | quote }}
{{- with .appPort }}
dapr.io/app-port: {{ . | quote }}
dapr.io/app-protocol: "http"
{{- end }}
{{- with $root.Values.dapr.config }}
dapr.io/config: {{ . | quote }}
{{- end }}
dapr.io/log-level: {{ $root.Values.dapr.logLevel | quote }}
dapr.io/log-as-json: {{ $root.Values.dapr.logAsJson | quote }}
dapr.io/enable-metrics: "true"
dapr.io/metrics-port: "9091"
dapr.io/sidecar-cpu-request: {{ $root.Values.dapr.sidecarCpuRequest | quote }}
dapr.io/sidecar-memory-request: {{ $root.Values.dapr.sidecarMemoryRequest | quote }}
dapr.io/sidecar-cpu-limit: {{ $root.Values.dapr.sidecarCpuLimit | quote }}
dapr.io/sidecar-memory-limit: {{ $root.Values.dapr.sidecarMemoryLimit | quote }}
dapr.io/sidecar-seccomp-profile-type: "RuntimeDefault"
{{- end }}
