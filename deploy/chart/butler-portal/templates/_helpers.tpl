{{/* Names, labels and the pieces every process shares. */}}

{{- define "butler-portal.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "butler-portal.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "butler-portal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "butler-portal.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "butler-portal.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "butler-portal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component (web, worker, watcher, migrate): call with (list $ "web"). */}}
{{- define "butler-portal.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "butler-portal.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "butler-portal.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "butler-portal.ingressHosts" -}}
{{- $hosts := list -}}
{{- if .Values.ingress.enabled -}}
{{- range .Values.ingress.hosts }}{{ $hosts = append $hosts .host }}{{ end -}}
{{- end -}}
{{- join "," $hosts -}}
{{- end -}}

{{- define "butler-portal.allowedHosts" -}}
{{- if .Values.allowedHosts -}}
{{- join "," .Values.allowedHosts -}}
{{- else -}}
{{- include "butler-portal.ingressHosts" . -}}
{{- end -}}
{{- end -}}

{{- define "butler-portal.csrfTrustedOrigins" -}}
{{- if .Values.csrfTrustedOrigins -}}
{{- join "," .Values.csrfTrustedOrigins -}}
{{- else if .Values.ingress.enabled -}}
{{- $origins := list -}}
{{- range .Values.ingress.hosts }}{{ $origins = append $origins (printf "https://%s" .host) }}{{ end -}}
{{- join "," $origins -}}
{{- end -}}
{{- end -}}

{{/*
The environment of every process: call with (list $ "web"). Credentials come from the
existing Secret by key; everything else is plain configuration (butler_portal/settings.py).
*/}}
{{- define "butler-portal.env" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $values := $root.Values -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $values.existingSecret }}
      key: {{ $values.secretKeys.databaseUrl }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $values.existingSecret }}
      key: {{ $values.secretKeys.redisUrl }}
- name: SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $values.existingSecret }}
      key: {{ $values.secretKeys.secretKey }}
- name: SECRET_KEY_FALLBACKS
  valueFrom:
    secretKeyRef:
      name: {{ $values.existingSecret }}
      key: {{ $values.secretKeys.secretKeyFallbacks }}
      optional: true
- name: DEBUG
  value: "false"
- name: KUBE_MODE
  value: in-cluster
- name: ALLOWED_HOSTS
  value: {{ include "butler-portal.allowedHosts" $root | quote }}
- name: CSRF_TRUSTED_ORIGINS
  value: {{ include "butler-portal.csrfTrustedOrigins" $root | quote }}
- name: BUTLER_VAR_DIR
  value: {{ $values.varDir | quote }}
- name: METALLB_NAMESPACE
  value: {{ $values.metallbNamespace | quote }}
- name: TENANT_NAMESPACE_PREFIX
  value: {{ $values.tenantNamespacePrefix | quote }}
- name: CHANNEL_LAYER_PREFIX
  value: {{ default (include "butler-portal.fullname" $root) $values.channelLayerPrefix | quote }}
- name: WATCHER_LEADER_ELECTION
  value: "true"
- name: WATCHER_LEASE_NAMESPACE
  value: {{ $root.Release.Namespace | quote }}
- name: WATCHER_RECONCILE_MINUTES
  value: {{ $values.watcher.reconcileMinutes | quote }}
- name: CELERY_TASK_ALWAYS_EAGER
  value: "false"
{{- /* The web process pools its Postgres connections; Celery's forking workers must not. */}}
- name: DB_POOL_SIZE
  value: {{ ternary $values.web.dbPoolSize 0 (eq $component "web") | quote }}
- name: DB_CONN_MAX_AGE
  value: "0"
- name: LOG_LEVEL
  value: {{ $values.logLevel | quote }}
{{- with $values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* /tmp and the var dir: the only writable paths of a read-only container. */}}
{{- define "butler-portal.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: var
  mountPath: {{ .Values.varDir }}
{{- end -}}

{{- define "butler-portal.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.scratchSizeLimit }}
- name: var
  emptyDir:
    sizeLimit: {{ .Values.scratchSizeLimit }}
{{- end -}}

{{/* The pod-level settings every process shares: call with (list $ "web" $componentValues). */}}
{{- define "butler-portal.podSpec" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $values := $root.Values -}}
{{- with $values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $values.podSecurityContext | nindent 2 }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- /* Spread replicas over nodes when the scheduler can, so one node's loss keeps the others. */}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "butler-portal.selectorLabels" (list $root $component) | nindent 8 }}
volumes:
  {{- include "butler-portal.volumes" $root | nindent 2 }}
{{- end -}}

{{- define "butler-portal.podMetadata" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
labels:
  {{- include "butler-portal.labels" $root | nindent 2 }}
  app.kubernetes.io/component: {{ $component }}
  {{- with $root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $root.Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
