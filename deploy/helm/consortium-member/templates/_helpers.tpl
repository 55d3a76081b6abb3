{{/* The release's name prefix, at most 40 characters so that
"<fullname>-validator-15-p2p" stays a valid Service name. */}}
{{- define "cm.fullname" -}}
{{- if contains .Values.member .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Values.member | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cm.labels" -}}
app.kubernetes.io/name: consortium-member
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
consortium.dev/member: {{ .Values.member }}
{{- end -}}

{{/* Selector labels of one role's pods: dict "root" $ "role" ROLE */}}
{{- define "cm.selector" -}}
app.kubernetes.io/name: consortium-member
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{/* Every pod of the release, whatever its role. */}}
{{- define "cm.releasePods" -}}
app.kubernetes.io/name: consortium-member
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cm.image.consortium" -}}
{{ .Values.image.consortium.repository }}:{{ .Values.image.consortium.tag }}
{{- end -}}
{{- define "cm.image.geth" -}}
{{ .Values.image.geth.repository }}:{{ .Values.image.geth.tag | default (ternary "v1.13.15" "v1.17.10" (eq .Values.consensus "clique")) }}
{{- end -}}

{{/* "true" when the chain is BFT (a consensus process beside every geth),
"" for the legacy Clique chain. */}}
{{- define "cm.bft" -}}
{{- if ne .Values.consensus "clique" }}true{{ end -}}
{{- end -}}

{{- define "cm.engineSecret" -}}
{{- if .Values.engine.existingSecret -}}
{{ .Values.engine.existingSecret }}
{{- else -}}
{{ include "cm.fullname" . }}-engine
{{- end -}}
{{- end -}}

{{- define "cm.credentialSecret" -}}
{{- if .Values.registrar.existingCredentialSecret -}}
{{ .Values.registrar.existingCredentialSecret }}
{{- else -}}
{{ include "cm.fullname" . }}-credential
{{- end -}}
{{- end -}}

{{- define "cm.caConfigMap" -}}
{{- if .Values.registrar.existingCAConfigMap -}}
{{ .Values.registrar.existingCAConfigMap }}
{{- else -}}
{{ include "cm.fullname" . }}-registrar-ca
{{- end -}}
{{- end -}}

{{/* Checks that cross fields, which the schema cannot say clearly. */}}
{{- define "cm.validate" -}}
{{- if and (not .Values.registrar.ca) (not .Values.registrar.existingCAConfigMap) -}}
{{- fail "registrar.ca (the PEM of the registrar's CA, --set-file registrar.ca=ca.pem) or registrar.existingCAConfigMap is required: the images carry no CA bundle" -}}
{{- end -}}
{{- if and (not .Values.registrar.credential) (not .Values.registrar.existingCredentialSecret) -}}
{{- fail "registrar.credential (the member's credential) or registrar.existingCredentialSecret is required" -}}
{{- end -}}
{{- if and .Values.registrar.credential (not (hasPrefix (printf "%s." .Values.member) .Values.registrar.credential)) -}}
{{- fail (printf "registrar.credential belongs to another member: it must start with %q" (printf "%s." .Values.member)) -}}
{{- end -}}
{{- if and .Values.bootnodes.nodekeys (ne (len .Values.bootnodes.nodekeys) (int .Values.bootnodes.replicas)) -}}
{{- fail (printf "bootnodes.nodekeys has %d keys for %d replicas: give one per replica, or none" (len .Values.bootnodes.nodekeys) (int .Values.bootnodes.replicas)) -}}
{{- end -}}
{{- if and .Values.tx.nodekeys (ne (len .Values.tx.nodekeys) (int .Values.tx.replicas)) -}}
{{- fail (printf "tx.nodekeys has %d keys for %d replicas: give one per replica, or none" (len .Values.tx.nodekeys) (int .Values.tx.replicas)) -}}
{{- end -}}
{{- end -}}

{{- define "cm.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "cm.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The registrar flags every agent and bootnode passes. */}}
{{- define "cm.registrarArgs" -}}
- --registrar
- {{ .Values.registrar.url | quote }}
- --ca
- /registrar-ca/ca.pem
- --credential-file
- /member/credential
{{- end -}}

{{- define "cm.downwardEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- end -}}

{{- define "cm.clientMounts" -}}
- name: credential
  mountPath: /member
  readOnly: true
- name: registrar-ca
  mountPath: /registrar-ca
  readOnly: true
{{- end -}}

{{- define "cm.clientVolumes" -}}
- name: credential
  secret:
    secretName: {{ include "cm.credentialSecret" . }}
    defaultMode: 0440
    items:
      - key: credential
        path: credential
- name: registrar-ca
  configMap:
    name: {{ include "cm.caConfigMap" . }}
    items:
      - key: ca.pem
        path: ca.pem
{{- end -}}
