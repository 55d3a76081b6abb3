{{/*
A geth node with its agent: the pod template and the volume claim of a
StatefulSet. On a BFT chain the agent is also the node's consensus process
(CometBFT in it, driving geth over the Engine API on the pod's loopback).
Arguments (a dict):
  root      the chart's root context
  role      validator, tx or public
  name      the StatefulSet's name
  keySecret a Secret holding the node key (or "": the key lives on the volume)
  keyPath   where geth and the agent read the node key
  gethArgs  extra geth arguments (list)
  agentArgs extra agent arguments (list)
  ports     extra container ports of geth (list of dicts)
  signer    clique: the Secret of a validator's account (or "")
  cometKeys bft: the Secret holding the node's CometBFT keys (or "")
  cometFiles bft: the keys of cometKeys to place in the CometBFT home
            (priv_validator_key.json, node_key.json)
  keyData   what the node's own keys were made from, for the checksum that
            rolls its pods when they change
*/}}
{{- define "cm.gethStatefulSet" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $bft := include "cm.bft" $root -}}
{{- $crashSafe := and $bft (eq ($v.geth.stateScheme | default "hash") "hash") -}}
{{- $home := "/cometbft" -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .name }}
  labels:
    {{- include "cm.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .role }}
spec:
  serviceName: {{ .name }}
  replicas: {{ .replicas }}
  podManagementPolicy: Parallel
  selector:
    matchLabels:
      {{- include "cm.selector" (dict "root" $root "role" .role) | nindent 6 }}
      {{- if .instanceLabel }}
      consortium.dev/node: {{ .name }}
      {{- end }}
  template:
    metadata:
      labels:
        {{- include "cm.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .role }}
        consortium.dev/metrics: geth
        {{- if .instanceLabel }}
        consortium.dev/node: {{ .name }}
        {{- end }}
      # A new genesis, CA, credential or Engine API secret, or new keys of
      # this node, roll its pods (files mounted from Secrets and ConfigMaps
      # change under a running pod, but geth and the agent read them once).
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/config.yaml") $root | sha256sum }}
        checksum/keys: {{ toJson .keyData | sha256sum }}
    spec:
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: 60
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "cm.podSecurityContext" $root | nindent 8 }}
      initContainers:
        # geth init is idempotent: it writes the genesis once and checks it
        # against the stored one on every later start (and the state scheme
        # against the volume's: see geth.stateScheme).
        - name: geth-init
          image: {{ include "cm.image.geth" $root }}
          imagePullPolicy: {{ $v.image.geth.pullPolicy }}
          args: [--datadir, /data,{{ if $crashSafe }} --state.scheme, hash,{{ end }} init, /genesis/genesis.json]
          securityContext:
            {{- include "cm.securityContext" $root | nindent 12 }}
          volumeMounts:
            - {name: data, mountPath: /data}
            - {name: genesis, mountPath: /genesis, readOnly: true}
        # The cold start: config.toml with the peers the registrar gives
        # (or the last saved set, when it cannot be reached).
        - name: agent-init
          image: {{ include "cm.image.consortium" $root }}
          imagePullPolicy: {{ $v.image.consortium.pullPolicy }}
          args:
            - agent
            - init
            - --role
            - {{ .role }}
            - --nodekey
            - {{ .keyPath }}
            - --state-dir
            - /data/agent
            - --config-out
            - /data/config.toml
            - --nat-ip
            - $(POD_IP)
            {{- if not $bft }}
            # geth's keystore: a relay account (the agent marks geth synced
            # with it) and, for a signer, a copy of the signer key.
            - --keystore
            - /data/keystore
            {{- if .signer }}
            - --signer-keystore
            - /signer/keystore
            {{- end }}
            {{- end }}
            {{- include "cm.registrarArgs" $root | nindent 12 }}
          env:
            {{- include "cm.downwardEnv" $root | nindent 12 }}
          securityContext:
            {{- include "cm.securityContext" $root | nindent 12 }}
          volumeMounts:
            - {name: data, mountPath: /data}
            {{- if .keySecret }}
            - {name: keys, mountPath: /keys, readOnly: true}
            {{- end }}
            {{- if .signer }}
            - {name: signer, mountPath: /signer, readOnly: true}
            {{- end }}
            {{- include "cm.clientMounts" $root | nindent 12 }}
      containers:
        - name: geth
          image: {{ include "cm.image.geth" $root }}
          imagePullPolicy: {{ $v.image.geth.pullPolicy }}
          args:
            - --datadir
            - /data
            - --config
            - /data/config.toml
            - --nodekey
            - {{ .keyPath }}
            - --port
            - {{ $v.p2pPort | quote }}
            - --nat
            - extip:$(POD_IP)
            - --syncmode
            - full
            - --cache
            - {{ $v.geth.cache | default 256 | quote }}
            - --ipcpath
            - /data/geth.ipc
            {{- if $crashSafe }}
            # Crash-safe state: each block's state on disk once imported, so
            # a geth killed (OOM, node loss) comes back at its height, not at
            # genesis with a whole chain for its consensus process to replay.
            - --state.scheme
            - hash
            - --gcmode
            - archive
            {{- end }}
            {{- if $bft }}
            # The Engine API, for the consensus process in this pod only.
            - --authrpc.addr
            - 127.0.0.1
            - --authrpc.port
            - {{ $v.engine.port | default 8551 | quote }}
            - --authrpc.vhosts
            - localhost
            - --authrpc.jwtsecret
            - /engine/jwtsecret
            {{- else }}
            - --keystore
            - /data/keystore
            {{- end }}
            {{- if $v.geth.metrics.enabled }}
            - --metrics
            - --metrics.addr
            - 0.0.0.0
            - --metrics.port
            - {{ $v.geth.metrics.port | default 6060 | quote }}
            {{- end }}
            {{- with .gethArgs }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with $v.geth.extraArgs }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          env:
            {{- include "cm.downwardEnv" $root | nindent 12 }}
          ports:
            - {name: p2p, containerPort: {{ $v.p2pPort }}, protocol: TCP}
            - {name: p2p-udp, containerPort: {{ $v.p2pPort }}, protocol: UDP}
            {{- if $v.geth.metrics.enabled }}
            - {name: geth-metrics, containerPort: {{ $v.geth.metrics.port | default 6060 }}, protocol: TCP}
            {{- end }}
            {{- with .ports }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          # Opening a large database (or repairing it after a crash) can take
          # minutes: liveness starts counting only once P2P listens.
          startupProbe:
            tcpSocket: {port: p2p}
            periodSeconds: 5
            failureThreshold: 120
          readinessProbe:
            tcpSocket: {port: p2p}
            periodSeconds: 10
          livenessProbe:
            tcpSocket: {port: p2p}
            periodSeconds: 20
            failureThreshold: 6
          securityContext:
            {{- include "cm.securityContext" $root | nindent 12 }}
          {{- with $v.geth.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          volumeMounts:
            - {name: data, mountPath: /data}
            - {name: tmp, mountPath: /tmp}
            {{- if .keySecret }}
            - {name: keys, mountPath: /keys, readOnly: true}
            {{- end }}
            {{- if .signer }}
            - {name: signer, mountPath: /signer, readOnly: true}
            {{- end }}
            {{- if $bft }}
            - {name: engine, mountPath: /engine, readOnly: true}
            {{- end }}
        # The agent: registers the node, renews its lease, and keeps geth's
        # peers equal to the registrar's answer over the IPC socket. On a
        # BFT chain it also runs the node's consensus process (CometBFT
        # in-process, driving geth over the Engine API) and keeps its
        # CometBFT peers equal to the registrar's answer too.
        - name: agent
          image: {{ include "cm.image.consortium" $root }}
          imagePullPolicy: {{ $v.image.consortium.pullPolicy }}
          {{- if not $bft }}
          # A Clique node's agent runs no consensus process: the image's
          # agent-only build, a fifth of the full binary's RSS.
          command: [/usr/local/bin/consortium-agent]
          {{- end }}
          args:
            {{- if $bft }}
            - agent
            - run
            {{- end }}
            - --role
            - {{ .role }}
            - --rpc
            - /data/geth.ipc
            - --nodekey
            - {{ .keyPath }}
            - --state-dir
            - /data/agent
            - --config-out
            - /data/config.toml
            - --advertise-ip
            - $(POD_IP)
            - --listen
            - ":9899"
            {{- if $bft }}
            - --consensus-home
            - {{ $home }}
            - --consensus-p2p
            - {{ printf "$(POD_IP):%d" (int $v.consensusP2PPort) | quote }}
            - --engine
            - {{ printf "http://127.0.0.1:%d" (int ($v.engine.port | default 8551)) | quote }}
            - --jwt-secret
            - /engine/jwtsecret
            - --fee-recipient
            - {{ $v.feeRecipient | quote }}
            {{- else }}
            - --keystore
            - /data/keystore
            {{- end }}
            {{- with .agentArgs }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- include "cm.registrarArgs" $root | nindent 12 }}
          env:
            {{- include "cm.downwardEnv" $root | nindent 12 }}
          ports:
            - {name: agent, containerPort: 9899, protocol: TCP}
            {{- if $bft }}
            - {name: cmt-p2p, containerPort: {{ $v.consensusP2PPort }}, protocol: TCP}
            {{- end }}
          # The agent waits for geth's IPC socket, and a consensus process
          # first replays what geth lacks (CometBFT's handshake).
          startupProbe:
            httpGet: {path: /healthz, port: agent}
            periodSeconds: 5
            failureThreshold: 120
          readinessProbe:
            httpGet: {path: /healthz, port: agent}
            periodSeconds: 10
          livenessProbe:
            httpGet: {path: /healthz, port: agent}
            periodSeconds: 20
            failureThreshold: 6
          securityContext:
            {{- include "cm.securityContext" $root | nindent 12 }}
          {{- with $v.agent.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          volumeMounts:
            - {name: data, mountPath: /data}
            {{- if .keySecret }}
            - {name: keys, mountPath: /keys, readOnly: true}
            {{- end }}
            {{- if $bft }}
            - {name: engine, mountPath: /engine, readOnly: true}
            # The CometBFT home: its data (block store, state, and the
            # validator's signing state, which must never come from a
            # Secret) on a volume of its own, whose root fsGroup makes
            # writable; its config/ a scratch directory (the process writes
            # its address book there, and a node key when none is given)
            # into which the genesis and the keys come file by file.
            - {name: consensus, mountPath: {{ $home }}}
            - {name: cometbft-config, mountPath: {{ $home }}/config}
            - {name: genesis, mountPath: {{ $home }}/config/genesis.json, subPath: cometbft-genesis.json, readOnly: true}
            {{- range .cometFiles }}
            - {name: comet-keys, mountPath: {{ $home }}/config/{{ . }}, subPath: {{ . }}, readOnly: true}
            {{- end }}
            {{- end }}
            {{- include "cm.clientMounts" $root | nindent 12 }}
      volumes:
        - name: tmp
          emptyDir: {}
        - name: genesis
          configMap:
            name: {{ include "cm.fullname" $root }}-genesis
        {{- if .keySecret }}
        - name: keys
          secret:
            secretName: {{ .keySecret }}
            defaultMode: 0440
        {{- end }}
        {{- if .signer }}
        - name: signer
          secret:
            secretName: {{ .signer }}
            defaultMode: 0440
            items:
              - {key: keystore, path: keystore/key.json}
              - {key: password, path: password}
        {{- end }}
        {{- if $bft }}
        - name: cometbft-config
          emptyDir: {}
        - name: engine
          secret:
            secretName: {{ include "cm.engineSecret" $root }}
            defaultMode: 0440
            items:
              - {key: jwtsecret, path: jwtsecret}
        {{- if .cometFiles }}
        - name: comet-keys
          secret:
            secretName: {{ .cometKeys }}
            defaultMode: 0440
            items:
              {{- range .cometFiles }}
              - {key: {{ . }}, path: {{ . }}}
              {{- end }}
        {{- end }}
        {{- end }}
        {{- include "cm.clientVolumes" $root | nindent 8 }}
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: [ReadWriteOnce]
        {{- with $v.storageClassName }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ .storage }}
    {{- if $bft }}
    - metadata:
        name: consensus
      spec:
        accessModes: [ReadWriteOnce]
        {{- with $v.storageClassName }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ $v.consensusStorage | default "5Gi" }}
    {{- end }}
{{- end -}}
