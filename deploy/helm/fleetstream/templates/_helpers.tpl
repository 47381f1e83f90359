{{/* Names and labels. */}}
{{- define "fleetstream.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fleetstream.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "fleetstream.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "fleetstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one role; call with (dict "root" $ "role" "ingest"). */}}
{{- define "fleetstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fleetstream.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "fleetstream.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "fleetstream.secretName" -}}
{{ default (include "fleetstream.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "fleetstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fleetstream.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ConfigMap of collect's --schedule file, empty without jobs. */}}
{{- define "fleetstream.scheduleConfigMap" -}}
{{- $s := .Values.collect.schedule -}}
{{- if $s.existingConfigMap }}{{ $s.existingConfigMap }}
{{- else if $s.jobs }}{{ include "fleetstream.fullname" . }}-collect-schedule
{{- end }}
{{- end }}

{{/* Roles that talk to ClickHouse. */}}
{{- define "fleetstream.usesClickHouse" -}}
{{- if has .role (list "sink" "api" "migrate") }}true{{ end }}
{{- end }}

{{/*
Non-secret settings of one role as FLEETSTREAM_* variables (the ConfigMap
of the role); call with (dict "root" $ "role" "sink"). Only flags the role
has appear: deploy/deploy_test.go checks them against the binary.
*/}}
{{- define "fleetstream.config" -}}
{{- $v := .root.Values -}}
FLEETSTREAM_LOG_LEVEL: {{ $v.logLevel | quote }}
{{- if not $v.kafka.brokers }}{{ fail "kafka.brokers: list the Kafka seed brokers (host:port)" }}{{ end }}
FLEETSTREAM_BROKERS: {{ $v.kafka.brokers | join "," | quote }}
FLEETSTREAM_PARTITIONS: {{ $v.kafka.partitions | quote }}
FLEETSTREAM_REPLICATION: {{ $v.kafka.replication | quote }}
{{- include "fleetstream.tlsConfig" (dict "name" "KAFKA" "dir" "kafka" "tls" $v.kafka.tls) }}
{{- with $v.kafka.sasl.mechanism }}
FLEETSTREAM_KAFKA_SASL_MECHANISM: {{ . | quote }}
FLEETSTREAM_KAFKA_SASL_USER: {{ required "kafka.sasl.user: set the SASL user" $v.kafka.sasl.user | quote }}
{{- end }}
{{- if ne .role "migrate" }}
FLEETSTREAM_LISTEN: ":8080"
{{- end }}
{{- if and (eq .role "process") $v.process.stateVolume.enabled }}
FLEETSTREAM_STATE_DIR: /var/lib/fleetstream
{{- end }}
{{- if eq .role "collect" }}
{{- $c := $v.collect }}
FLEETSTREAM_CONCURRENCY: {{ $c.concurrency | int64 | quote }}
FLEETSTREAM_PRIORITY: {{ $c.priority | quote }}
{{- if include "fleetstream.scheduleConfigMap" .root }}
FLEETSTREAM_SCHEDULE: /etc/fleetstream/schedule/schedule.yaml
{{- end }}
{{- with $c.aws.endpoint }}
FLEETSTREAM_AWS_ENDPOINT: {{ . | quote }}
{{- end }}
{{- with $c.aws.allowedEndpoints }}
FLEETSTREAM_AWS_ALLOWED_ENDPOINTS: {{ . | join "," | quote }}
{{- end }}
FLEETSTREAM_AWS_HOME_REGION: {{ $c.aws.homeRegion | quote }}
{{- with $c.vsphere.url }}
FLEETSTREAM_VSPHERE_URL: {{ . | quote }}
{{- end }}
{{- with $c.vsphere.username }}
FLEETSTREAM_VSPHERE_USERNAME: {{ . | quote }}
{{- end }}
{{- if $c.vsphere.insecure }}
FLEETSTREAM_VSPHERE_INSECURE: "true"
{{- end }}
{{- with $c.vsphere.allowedEndpoints }}
FLEETSTREAM_VSPHERE_ALLOWED_ENDPOINTS: {{ . | join "," | quote }}
{{- end }}
{{- end }}
{{- if eq .role "ingest" }}
FLEETSTREAM_MAX_BODY_BYTES: {{ $v.ingest.maxBodyBytes | int64 | quote }}
{{- end }}
{{- if include "fleetstream.usesClickHouse" . }}
FLEETSTREAM_CLICKHOUSE: {{ required "clickhouse.addr: set the ClickHouse native address (host:9000)" $v.clickhouse.addr | quote }}
FLEETSTREAM_CLICKHOUSE_DATABASE: {{ $v.clickhouse.database | quote }}
FLEETSTREAM_CLICKHOUSE_USER: {{ $v.clickhouse.user | quote }}
{{- include "fleetstream.tlsConfig" (dict "name" "CLICKHOUSE" "dir" "clickhouse" "tls" $v.clickhouse.tls) }}
{{- end }}
{{- end }}

{{/* The --<name>-tls-* variables; certificates come from a mounted Secret. */}}
{{- define "fleetstream.tlsConfig" -}}
{{- if .tls.enabled }}
FLEETSTREAM_{{ .name }}_TLS: "true"
{{- if .tls.secretName }}
FLEETSTREAM_{{ .name }}_TLS_CA: /etc/fleetstream/tls/{{ .dir }}/ca.crt
{{- if .tls.clientCertificate }}
FLEETSTREAM_{{ .name }}_TLS_CERT: /etc/fleetstream/tls/{{ .dir }}/tls.crt
FLEETSTREAM_{{ .name }}_TLS_KEY: /etc/fleetstream/tls/{{ .dir }}/tls.key
{{- end }}
{{- end }}
{{- with .tls.serverName }}
FLEETSTREAM_{{ $.name }}_TLS_SERVER_NAME: {{ . | quote }}
{{- end }}
{{- if .tls.insecureSkipVerify }}
FLEETSTREAM_{{ .name }}_TLS_INSECURE_SKIP_VERIFY: "true"
{{- end }}
{{- end }}
{{- end }}

{{/* Secret variables of one role, as container env entries. */}}
{{- define "fleetstream.secretEnv" -}}
{{- $secret := include "fleetstream.secretName" .root -}}
{{- $v := .root.Values -}}
{{- if $v.kafka.sasl.mechanism }}
- name: FLEETSTREAM_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: kafka-sasl-password}
{{- end }}
{{- if include "fleetstream.usesClickHouse" . }}
- name: FLEETSTREAM_CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: clickhouse-password, optional: true}
{{- end }}
{{- if eq .role "ingest" }}
- name: FLEETSTREAM_AGENT_KEY_SECRET
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: agent-key-secret, optional: true}
- name: FLEETSTREAM_ENROLLMENT_KEY
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: enrollment-key, optional: true}
{{- end }}
{{- if eq .role "api" }}
- name: FLEETSTREAM_API_KEYS
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: api-keys}
{{- end }}
{{- if eq .role "collect" }}
{{- /* Read by the AWS SDK's default chain; absent keys leave it to a pod identity. */}}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: aws-access-key-id, optional: true}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: aws-secret-access-key, optional: true}
- name: FLEETSTREAM_VSPHERE_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: vsphere-password, optional: true}
{{- end }}
{{- end }}

{{/* Volumes and mounts of the TLS Secrets (and the state of process). */}}
{{- define "fleetstream.volumes" -}}
{{- $v := .root.Values -}}
- name: tmp
  emptyDir: {}
{{- if and $v.kafka.tls.enabled $v.kafka.tls.secretName }}
- name: kafka-tls
  secret: {secretName: {{ $v.kafka.tls.secretName }}}
{{- end }}
{{- if and (include "fleetstream.usesClickHouse" .) $v.clickhouse.tls.enabled $v.clickhouse.tls.secretName }}
- name: clickhouse-tls
  secret: {secretName: {{ $v.clickhouse.tls.secretName }}}
{{- end }}
{{- if and (eq .role "process") $v.process.stateVolume.enabled }}
- name: state
  emptyDir: {sizeLimit: {{ $v.process.stateVolume.sizeLimit }}}
{{- end }}
{{- if eq .role "collect" }}
{{- with include "fleetstream.scheduleConfigMap" .root }}
- name: schedule
  configMap: {name: {{ . }}}
{{- end }}
{{- end }}
{{- end }}

{{- define "fleetstream.volumeMounts" -}}
{{- $v := .root.Values -}}
- {name: tmp, mountPath: /tmp}
{{- if and $v.kafka.tls.enabled $v.kafka.tls.secretName }}
- {name: kafka-tls, mountPath: /etc/fleetstream/tls/kafka, readOnly: true}
{{- end }}
{{- if and (include "fleetstream.usesClickHouse" .) $v.clickhouse.tls.enabled $v.clickhouse.tls.secretName }}
- {name: clickhouse-tls, mountPath: /etc/fleetstream/tls/clickhouse, readOnly: true}
{{- end }}
{{- if and (eq .role "process") $v.process.stateVolume.enabled }}
- {name: state, mountPath: /var/lib/fleetstream}
{{- end }}
{{- if and (eq .role "collect") (include "fleetstream.scheduleConfigMap" .root) }}
- {name: schedule, mountPath: /etc/fleetstream/schedule, readOnly: true}
{{- end }}
{{- end }}
