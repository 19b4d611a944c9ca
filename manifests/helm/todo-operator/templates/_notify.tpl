{{/* The Job template (batch/v1 JobTemplateSpec) of reminder Jobs and CronJobs. */}}
{{- define "todo-operator.notifyJobTemplate" -}}
metadata:
  labels:
    {{- include "todo-operator.componentLabels" (dict "root" . "component" "notify") | nindent 4 }}
spec:
  backoffLimit: 2
  activeDeadlineSeconds: {{ .Values.notify.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: {{ .Values.notify.ttlSecondsAfterFinished }}
  template:
    metadata:
      labels:
        {{- include "todo-operator.componentLabels" (dict "root" . "component" "notify") | nindent 8 }}
    spec:
      serviceAccountName: {{ include "todo-operator.notifyServiceAccount" . }}
      # notify reads its Reminder and patches its status through the API server.
      automountServiceAccountToken: true
      enableServiceLinks: false
      restartPolicy: Never
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      securityContext:
        {{- toYaml .Values.podSecurityContext | nindent 8 }}
      containers:
        - name: notify
          # No image here: the operator sets its own (TODO_NOTIFY_IMAGE), so an image
          # override (helm --set, kustomize images:) reaches the reminder Jobs too.
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          args: [notify]
          env:
            {{- include "todo-operator.databaseEnv" . | nindent 12 }}
            {{- include "todo-operator.telemetryEnv" . | nindent 12 }}
            {{- include "todo-operator.recipientEnv" . | nindent 12 }}
          envFrom:
            {{- include "todo-operator.smtpEnvFrom" . | nindent 12 }}
          resources:
            {{- toYaml .Values.notify.resources | nindent 12 }}
          securityContext:
            {{- toYaml .Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "todo-operator.tmpMount" . | nindent 12 }}
      volumes:
        {{- include "todo-operator.tmpVolume" . | nindent 8 }}
{{- end }}

{{/* Who reminders may go to: read where they are sent (notify Jobs; the operator in modes inline and dapr-jobs). */}}
{{- define "todo-operator.recipientEnv" -}}
- name: TODO_REMINDER_RECIPIENT_DOMAINS
  value: {{ join "," .Values.notify.recipientDomains | quote }}
{{- end }}

{{/* The SMTP settings (TODO_SMTP_*): whoever sends reminders loads the notify Secret (notify Jobs; the operator in modes inline and dapr-jobs). */}}
{{- define "todo-operator.smtpEnvFrom" -}}
- secretRef:
    name: {{ required "notify.smtpSecret is required (a Secret with the SMTP settings)" .Values.notify.smtpSecret }}
{{- end }}

{{/* "true" when the operator sends reminders itself (reminders.mode inline or dapr-jobs): it then needs SMTP. */}}
{{- define "todo-operator.operatorSendsReminders" -}}
{{- if has .Values.reminders.mode (list "inline" "dapr-jobs") }}true{{ end }}
{{- end }}
