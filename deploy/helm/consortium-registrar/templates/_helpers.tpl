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

{{/*
The bundled etcd (etcd.enabled). Its name stays short enough (50) that the
StatefulSet's controller-revision-hash label (name-hash, 63 at most) fits.
*/}}
{{- define "cr.etcdName" -}}
{{- printf "%s-etcd" (include "cr.fullname" . | trunc 45 | trimSuffix "-") -}}
{{- end -}}

{{- define "cr.etcdHeadless" -}}
{{- printf "%s-headless" (include "cr.etcdName" .) -}}
{{- end -}}

{{/* Another app.kubernetes.io/name, so that the registrar's selectors
(unchanged since the SQLite-only chart) never match the etcd pods. */}}
{{- define "cr.etcdLabels" -}}
app.kubernetes.io/name: consortium-etcd
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: etcd
app.kubernetes.io/part-of: consortium-registrar
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "cr.etcdSelector" -}}
app.kubernetes.io/name: consortium-etcd
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The stable DNS name of every bundled etcd member (through the headless
Service), one per line: name host. */}}
{{- define "cr.etcdMembers" -}}
{{- $etcd := include "cr.etcdName" . -}}
{{- $domain := printf "%s.%s.svc.%s" (include "cr.etcdHeadless" .) .Release.Namespace .Values.clusterDomain -}}
{{- range $i := until (int .Values.etcd.replicas) }}
{{ printf "%s-%d" $etcd $i }} {{ printf "%s-%d.%s" $etcd $i $domain }}
{{- end -}}
{{- end -}}

{{/* etcd's --initial-cluster: name=http://stable-dns:2380 for each member. */}}
{{- define "cr.etcdInitialCluster" -}}
{{- $out := list -}}
{{- range splitList "\n" (include "cr.etcdMembers" . | trim) -}}
{{- $f := splitList " " . -}}
{{- $out = append $out (printf "%s=http://%s:2380" (index $f 0) (index $f 1)) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/*
The registrar's --store in etcd mode. Bundled: every member by its stable
name, so that etcd's client balances and fails over between members itself
(through one ClusterIP its gRPC connection would stay pinned to whichever
member kube-proxy picked, even one that lost the quorum). External: the
listed endpoints; etcds:// with store.etcd.tls.
*/}}
{{- define "cr.storeURL" -}}
{{- $eps := list -}}
{{- if .Values.etcd.enabled -}}
{{- range splitList "\n" (include "cr.etcdMembers" . | trim) -}}
{{- $eps = append $eps (printf "%s:2379" (index (splitList " " .) 1)) -}}
{{- end -}}
{{- else -}}
{{- $eps = .Values.store.etcd.endpoints -}}
{{- end -}}
{{- printf "%s://%s" (ternary "etcds" "etcd" (not (empty .Values.store.etcd.tls.existingSecret))) (join "," $eps) -}}
{{- end -}}

{{/* Soft anti-affinity: spread the pods a selector names across nodes. */}}
{{- define "cr.spread" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- . | nindent 12 }}
{{- end -}}

{{- define "cr.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "cr.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/*
The registrar's pod template, for the StatefulSet (SQLite) and the
Deployment (etcd). dict: root (the chart's context), seed (the seed
Secret's name, or "").
*/}}
{{- define "cr.registrarPod" -}}
{{- $r := .root -}}
{{- $seed := .seed -}}
{{- $etcd := eq $r.Values.store.type "etcd" -}}
{{- $etcdTLS := and $etcd $r.Values.store.etcd.tls.existingSecret -}}
metadata:
  labels:
    {{- include "cr.labels" $r | nindent 4 }}
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with $r.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- include "cr.podSecurityContext" $r | nindent 4 }}
  {{- if $etcd }}
  affinity:
    {{- include "cr.spread" (include "cr.selector" $r) | nindent 4 }}
  {{- end }}
  containers:
    - name: registrar
      image: {{ $r.Values.image.repository }}:{{ $r.Values.image.tag }}
      imagePullPolicy: {{ $r.Values.image.pullPolicy }}
      args:
        - registrar
        - --listen
        - ":9898"
        - --data
        - /data
        {{- if $etcd }}
        - --store
        - {{ include "cr.storeURL" $r | quote }}
        - --etcd-prefix
        - {{ $r.Values.store.etcd.prefix | quote }}
        {{- with $r.Values.store.etcd.dialTimeout }}
        - --etcd-dial-timeout
        - {{ . | quote }}
        {{- end }}
        {{- if $etcdTLS }}
        - --etcd-cacert
        - /etcd-tls/ca.crt
        - --etcd-cert
        - /etcd-tls/tls.crt
        - --etcd-key
        - /etcd-tls/tls.key
        {{- end }}
        {{- with $r.Values.store.etcd.auth.username }}
        - --etcd-user
        - {{ . | quote }}
        {{- end }}
        {{- end }}
        - --tls-cert
        - /tls/tls.crt
        - --tls-key
        - /tls/tls.key
        - --ttl
        - {{ $r.Values.ttl | quote }}
        - --log-format
        - {{ $r.Values.logFormat | default "json" }}
        {{- if $seed }}
        - --seed
        - /seed/seed.json
        {{- end }}
      {{- if $etcd }}
      env:
        # A replica takes over the agents of one that fails (docs/ha.md).
        - name: GOMEMLIMIT
          value: 256MiB
        {{- if $r.Values.store.etcd.auth.username }}
        - name: CONSORTIUM_ETCD_PASSWORD
          valueFrom:
            secretKeyRef: {name: {{ $r.Values.store.etcd.auth.existingSecret }}, key: password}
        {{- end }}
      {{- end }}
      ports:
        - {name: https, containerPort: 9898, protocol: TCP}
      readinessProbe:
        httpGet: {path: /readyz, port: https, scheme: HTTPS}
        periodSeconds: 5
      livenessProbe:
        httpGet: {path: /healthz, port: https, scheme: HTTPS}
        initialDelaySeconds: 10
        periodSeconds: 20
      securityContext:
        {{- include "cr.containerSecurityContext" $r | nindent 8 }}
      {{- with $r.Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - {name: data, mountPath: /data}
        - {name: tls, mountPath: /tls, readOnly: true}
        {{- if $seed }}
        - {name: seed, mountPath: /seed, readOnly: true}
        {{- end }}
        {{- if $etcdTLS }}
        - {name: etcd-tls, mountPath: /etcd-tls, readOnly: true}
        {{- end }}
  volumes:
    {{- if $etcd }}
    # etcd holds the state; /data is scratch.
    - name: data
      emptyDir: {sizeLimit: 64Mi}
    {{- end }}
    - name: tls
      secret:
        secretName: {{ $r.Values.tls.existingSecret }}
        defaultMode: 0440
    {{- if $seed }}
    - name: seed
      secret:
        secretName: {{ $seed }}
        defaultMode: 0440
    {{- end }}
    {{- if $etcdTLS }}
    - name: etcd-tls
      secret:
        secretName: {{ $r.Values.store.etcd.tls.existingSecret }}
        defaultMode: 0440
        items:
          - {key: ca.crt, path: ca.crt}
          - {key: tls.crt, path: tls.crt}
          - {key: tls.key, path: tls.key}
    {{- end }}
{{- end -}}
