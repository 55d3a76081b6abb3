{{- define "cr.fullname" -}}
{{- if contains "registrar" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-registrar" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cr.labels" -}}
app.kubernetes.io/name: consortium-registrar
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "cr.selector" -}}
app.kubernetes.io/name: consortium-registrar
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cr.seedSecret" -}}
{{- if .Values.existingSeedSecret -}}
{{ .Values.existingSeedSecret }}
{{- else if .Values.seed -}}
{{ include "cr.fullname" . }}-seed
{{- end -}}
{{- end -}}
