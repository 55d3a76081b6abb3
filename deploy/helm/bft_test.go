package helm

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// The member chart on a BFT chain: every geth v1.17 has its consensus
// process (the agent, CometBFT in it) beside it in the pod, over the Engine
// API on the pod's loopback.

const cometHome = "/cometbft"

// mountAt returns the container's mount at path, if any.
func mountAt(c corev1.Container, path string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func volume(t *testing.T, ss *appsv1.StatefulSet, name string) corev1.Volume {
	t.Helper()
	for _, v := range ss.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("%s has no volume %s", ss.Name, name)
	return corev1.Volume{}
}

func hasPortNumber(c corev1.Container, name string, port int32) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name && p.ContainerPort == port })
}

func policyPorts(np *networkingv1.NetworkPolicy) []int {
	var out []int
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			out = append(out, p.Port.IntValue())
		}
	}
	return out
}

// bftNode checks what every geth pod of a BFT member has, whatever its
// role: geth's Engine API on loopback with the shared secret, the agent as
// consensus process with its CometBFT home on the volume, no Clique flags,
// probes, and the checksums that roll the pods.
func bftNode(t *testing.T, ss *appsv1.StatefulSet, gethImage string, engine, cmtPort, metricsPort int) {
	t.Helper()
	geth, agent := container(t, ss, "geth"), container(t, ss, "agent")
	if geth.Image != gethImage {
		t.Errorf("%s: geth image %s, want %s", ss.Name, geth.Image, gethImage)
	}
	want := map[string]string{
		"--authrpc.addr": "127.0.0.1", "--authrpc.port": fmt.Sprint(engine), "--authrpc.jwtsecret": "/engine/jwtsecret",
		"--metrics.addr": "0.0.0.0", "--metrics.port": fmt.Sprint(metricsPort),
	}
	for f, v := range want {
		if got := argAfter(geth.Args, f); got != v {
			t.Errorf("%s: geth %s %q, want %q", ss.Name, f, got, v)
		}
	}
	for _, f := range []string{"--mine", "--unlock", "--keystore", "--allow-insecure-unlock"} {
		if slices.Contains(geth.Args, f) {
			t.Errorf("%s: geth has the Clique flag %s on a BFT chain", ss.Name, f)
		}
	}
	want = map[string]string{
		"--consensus-home": cometHome, "--consensus-p2p": fmt.Sprintf("$(POD_IP):%d", cmtPort),
		"--engine": fmt.Sprintf("http://127.0.0.1:%d", engine), "--jwt-secret": "/engine/jwtsecret",
		"--fee-recipient": "0x6e1a4a8bd5c9ad3e1b3d0d7f1b4e0c1a2b3c4d5e",
	}
	for f, v := range want {
		if got := argAfter(agent.Args, f); got != v {
			t.Errorf("%s: agent %s %q, want %q", ss.Name, f, got, v)
		}
	}
	for _, f := range []string{"--seal", "--keystore"} {
		if slices.Contains(agent.Args, f) || slices.Contains(container(t, ss, "agent-init").Args, f) {
			t.Errorf("%s: the agent has the Clique flag %s on a BFT chain", ss.Name, f)
		}
	}
	if !hasPortNumber(agent, "cmt-p2p", int32(cmtPort)) || !hasPortNumber(geth, "geth-metrics", int32(metricsPort)) {
		t.Errorf("%s: ports geth %+v, agent %+v", ss.Name, geth.Ports, agent.Ports)
	}
	for _, c := range []corev1.Container{geth, agent} {
		if m, ok := mountAt(c, "/engine"); !ok || m.Name != "engine" || !m.ReadOnly {
			t.Errorf("%s: container %s does not read the Engine API secret at /engine", ss.Name, c.Name)
		}
		if c.StartupProbe == nil || c.StartupProbe.FailureThreshold*c.StartupProbe.PeriodSeconds < 300 {
			t.Errorf("%s: container %s: startupProbe %+v, want one that allows 5 minutes", ss.Name, c.Name, c.StartupProbe)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.InitialDelaySeconds != 0 {
			t.Errorf("%s: container %s: the liveness probe should wait on the startupProbe, not a delay", ss.Name, c.Name)
		}
	}
	if m, ok := mountAt(agent, cometHome+"/config/genesis.json"); !ok || m.Name != "genesis" || m.SubPath != "cometbft-genesis.json" {
		t.Errorf("%s: the CometBFT genesis is not at %s/config/genesis.json: %+v", ss.Name, cometHome, m)
	}
	// The home on a claim of its own (its root writable through fsGroup,
	// so CometBFT makes data/ there), config/ a scratch directory the
	// keys are mounted into: directories the runtime makes for nested
	// mounts belong to root, and a non-root process could not write them.
	if m, ok := mountAt(agent, cometHome); !ok || m.Name != "consensus" || m.ReadOnly || m.SubPath != "" {
		t.Errorf("%s: the CometBFT home is not the consensus claim: %+v", ss.Name, m)
	}
	if m, ok := mountAt(agent, cometHome+"/config"); !ok || volume(t, ss, m.Name).EmptyDir == nil {
		t.Errorf("%s: the CometBFT config directory is not a scratch directory: %+v", ss.Name, m)
	}
	if !slices.ContainsFunc(ss.Spec.VolumeClaimTemplates, func(c corev1.PersistentVolumeClaim) bool { return c.Name == "consensus" }) {
		t.Errorf("%s: no volume claim for the CometBFT data", ss.Name)
	}
	// The validator's signing state must stay on the volume: a copy from a
	// Secret would let a restarted validator sign a height twice.
	for _, m := range agent.VolumeMounts {
		if strings.Contains(m.MountPath, "priv_validator_state") || strings.HasPrefix(m.MountPath, cometHome+"/data") {
			t.Errorf("%s: %s is mounted over the CometBFT home's data: %+v", ss.Name, m.MountPath, m)
		}
	}
	ann := ss.Spec.Template.Annotations
	for _, k := range []string{"checksum/config", "checksum/keys"} {
		if len(ann[k]) != 64 {
			t.Errorf("%s: pod annotation %s = %q, want a sha256", ss.Name, k, ann[k])
		}
	}
	if ss.Spec.Template.Labels["consortium.dev/metrics"] != "geth" {
		t.Errorf("%s: pods lack the consortium.dev/metrics label", ss.Name)
	}
}

// stateFlags checks geth's state flags in a node's pod: with crashSafe
// (geth.stateScheme hash, the BFT default) geth init makes hash-scheme
// state and geth keeps every block's state on disk; without, geth gets no
// state flag and keeps whatever scheme its volume holds.
func stateFlags(t *testing.T, ss *appsv1.StatefulSet, crashSafe bool) {
	t.Helper()
	geth, init := container(t, ss, "geth"), container(t, ss, "geth-init")
	scheme, gc, initScheme := argAfter(geth.Args, "--state.scheme"), argAfter(geth.Args, "--gcmode"), argAfter(init.Args, "--state.scheme")
	if crashSafe && (scheme != "hash" || gc != "archive" || initScheme != "hash") {
		t.Errorf("%s: geth --state.scheme %q --gcmode %q, geth init --state.scheme %q; want hash, archive, hash", ss.Name, scheme, gc, initScheme)
	}
	if crashSafe && slices.Index(init.Args, "--state.scheme") > slices.Index(init.Args, "init") {
		t.Errorf("%s: geth init args %q: --state.scheme must come before the command", ss.Name, init.Args)
	}
	if !crashSafe && (slices.Contains(geth.Args, "--state.scheme") || slices.Contains(geth.Args, "--gcmode") || slices.Contains(init.Args, "--state.scheme")) {
		t.Errorf("%s: state flags given: geth %q, geth init %q", ss.Name, geth.Args, init.Args)
	}
}

func checkBFTMinimal(t *testing.T, r *rendered) {
	for _, n := range []string{"acme-validator-0", "acme-tx", "acme-public-0"} {
		bftNode(t, find(t, r.statefulSets, ssName, n), "consortium/geth:v1.17.10", 8551, 26656, 6060)
		stateFlags(t, find(t, r.statefulSets, ssName, n), true)
	}
	v := find(t, r.statefulSets, ssName, "acme-validator-0")
	agent := container(t, v, "agent")
	// A BFT node's agent runs its consensus process: the full binary.
	if len(agent.Command) != 0 || len(agent.Args) < 2 || agent.Args[0] != "agent" || agent.Args[1] != "run" {
		t.Errorf("BFT agent command %v args %v, want the image's consortium agent run", agent.Command, agent.Args)
	}
	m, ok := mountAt(agent, cometHome+"/config/priv_validator_key.json")
	if !ok || m.SubPath != "priv_validator_key.json" || volume(t, v, m.Name).Secret == nil || volume(t, v, m.Name).Secret.SecretName != "acme-validator-0" {
		t.Errorf("the validator key is not mounted from Secret acme-validator-0: %+v", m)
	}
	if _, ok := mountAt(agent, cometHome+"/config/node_key.json"); ok {
		t.Errorf("a CometBFT node key is mounted though none was given (it is made on the volume)")
	}
	if got := argAfter(container(t, v, "geth").Args, "--nodekey"); got != "/data/nodekey" {
		t.Errorf("validator geth --nodekey %s, want its volume's", got)
	}
	sec := find(t, r.secrets, secName, "acme-validator-0")
	if !strings.Contains(string(sec.Data["priv_validator_key.json"]), `"priv_key"`) || len(sec.Data) != 1 {
		t.Errorf("validator Secret keys %v", keysOf(sec.Data))
	}
	if eng := find(t, r.secrets, secName, "acme-engine"); !strings.HasPrefix(string(eng.Data["jwtsecret"]), "0x0a0b") {
		t.Errorf("engine Secret %q", eng.Data["jwtsecret"])
	}
	var genesis *corev1.ConfigMap
	for _, c := range r.configMaps {
		if c.Name == "acme-genesis" {
			genesis = c
		}
	}
	if genesis == nil || !strings.Contains(genesis.Data["cometbft-genesis.json"], `"chain_id":"consortium-123456789"`) {
		t.Errorf("the genesis ConfigMap lacks cometbft-genesis.json")
	}
	// One validator per member; a drain waits for the operator by default.
	b := find(t, r.pdbs, pdbName, "acme-validator-0")
	if b.Spec.MaxUnavailable == nil || b.Spec.MaxUnavailable.IntValue() != 0 {
		t.Errorf("validator PodDisruptionBudget maxUnavailable %v, want 0", b.Spec.MaxUnavailable)
	}
	// The public node carries consensus traffic across members.
	lb := find(t, r.services, svcName, "acme-public-0-p2p")
	if !slices.ContainsFunc(lb.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "cmt-p2p" && p.Port == 26656 }) {
		t.Errorf("public LoadBalancer ports %+v lack CometBFT's", lb.Spec.Ports)
	}
	for _, n := range []string{"acme-p2p", "acme-public-p2p"} {
		if !slices.Contains(policyPorts(find(t, r.policies, npName, n)), 26656) {
			t.Errorf("NetworkPolicy %s does not admit CometBFT's port", n)
		}
	}
	if len(r.monitors)+len(r.rules) != 0 {
		t.Errorf("ServiceMonitor or PrometheusRule rendered although off by default")
	}
	// helm test: the tx node must have the validator and the public node
	// as peers, and a fresh head.
	test := find(t, r.pods, podName, "acme-test-peered")
	c := test.Spec.Containers[0]
	script := argAfter(c.Args, "--exec")
	if c.Image != "consortium/geth:v1.17.10" || c.Args[len(c.Args)-1] != "http://acme-tx-rpc:8545" ||
		!strings.Contains(script, "want = 2,") || !strings.Contains(script, "maxAge = 30;") {
		t.Errorf("test pod runs %s %v", c.Image, c.Args)
	}
	if *test.Spec.ActiveDeadlineSeconds != 180 {
		t.Errorf("test pod deadline %d", *test.Spec.ActiveDeadlineSeconds)
	}
}

func checkBFTFull(t *testing.T, r *rendered) {
	for _, n := range []string{"acme-validator-0", "acme-tx", "acme-public-0", "acme-public-1"} {
		ss := find(t, r.statefulSets, ssName, n)
		bftNode(t, ss, "registry.example.org/geth:v1.17.10-custom", 8651, 26666, 6061)
		stateFlags(t, ss, false) // geth.stateScheme: path
		if got := volume(t, ss, "engine").Secret.SecretName; got != "acme-engine-jwt" {
			t.Errorf("%s: Engine API secret from %s, want the existing acme-engine-jwt", n, got)
		}
	}
	for _, s := range r.secrets {
		if s.Name == "acme-engine" || s.Name == "acme-validator-0" {
			t.Errorf("Secret %s rendered although an existing one was named", s.Name)
		}
	}
	// The validator's three keys from the existing Secret.
	v := find(t, r.statefulSets, ssName, "acme-validator-0")
	agent := container(t, v, "agent")
	for _, f := range []string{"priv_validator_key.json", "node_key.json"} {
		m, ok := mountAt(agent, cometHome+"/config/"+f)
		if !ok || volume(t, v, m.Name).Secret.SecretName != "acme-bft-validator" {
			t.Errorf("validator %s not mounted from acme-bft-validator: %+v", f, m)
		}
	}
	if got := argAfter(container(t, v, "geth").Args, "--nodekey"); got != "/keys/nodekey" {
		t.Errorf("validator geth --nodekey %s", got)
	}
	if b := find(t, r.pdbs, pdbName, "acme-validator-0"); b.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("validator PodDisruptionBudget maxUnavailable %v, want 1", b.Spec.MaxUnavailable)
	}
	// Public node 0 brings both its keys, node 1 none.
	sec := find(t, r.secrets, secName, "acme-public-0")
	if !slices.Equal(keysOf(sec.Data), []string{"node_key.json", "nodekey"}) {
		t.Errorf("public node Secret keys %v", keysOf(sec.Data))
	}
	if _, ok := mountAt(container(t, find(t, r.statefulSets, ssName, "acme-public-0"), "agent"), cometHome+"/config/node_key.json"); !ok {
		t.Errorf("public node 0's CometBFT node key is not mounted")
	}
	if _, ok := mountAt(container(t, find(t, r.statefulSets, ssName, "acme-public-1"), "agent"), cometHome+"/config/node_key.json"); ok {
		t.Errorf("public node 1 mounts a CometBFT node key it was not given")
	}
	if !slices.Contains(policyPorts(find(t, r.policies, npName, "acme-metrics")), 6061) {
		t.Errorf("the metrics NetworkPolicy does not admit geth's metrics port")
	}
	// The Prometheus Operator's objects.
	sm := find(t, r.monitors, smName, "acme")
	if sm.Labels["release"] != "kube-prometheus-stack" || len(sm.Spec.Endpoints) != 3 {
		t.Errorf("ServiceMonitor labels %v, %d endpoints", sm.Labels, len(sm.Spec.Endpoints))
	}
	paths := map[string]string{}
	for _, e := range sm.Spec.Endpoints {
		paths[e.Port] = e.Path
		if e.Interval != "30s" {
			t.Errorf("endpoint %s interval %q", e.Port, e.Interval)
		}
		for _, rc := range e.RelabelConfigs {
			if rc.TargetLabel == "member" && (rc.Replacement == nil || *rc.Replacement != "acme") {
				t.Errorf("endpoint %s labels member %v", e.Port, rc.Replacement)
			}
		}
	}
	if paths["geth-metrics"] != "/debug/metrics/prometheus" || paths["agent"] != "/metrics" || paths["http"] != "/metrics" {
		t.Errorf("ServiceMonitor paths %v", paths)
	}
	find(t, r.services, svcName, "acme-metrics")
	find(t, r.services, svcName, "acme-bootnode-metrics")
	if pr := find(t, r.rules, ruleName, "acme"); pr.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("PrometheusRule labels %v", pr.Labels)
	}
	// 1 validator + 2 public nodes + the other tx node.
	test := find(t, r.pods, podName, "acme-test-peered")
	c := test.Spec.Containers[0]
	if script := argAfter(c.Args, "--exec"); !strings.Contains(script, "want = 4,") || !strings.Contains(script, "maxAge = 20;") ||
		c.Args[len(c.Args)-1] != "http://acme-tx-rpc:8545" || *test.Spec.ActiveDeadlineSeconds != 300 {
		t.Errorf("test pod %v, deadline %d", c.Args, *test.Spec.ActiveDeadlineSeconds)
	}
}

// TestChecksumsRollPods: a change of the genesis rolls every geth pod; a
// change of one node's keys rolls that node's pods only.
func TestChecksumsRollPods(t *testing.T) {
	base := loadValues(t, "testdata/member-bft-minimal.yaml")
	annotations := func(vals map[string]any) map[string]map[string]string {
		t.Helper()
		files, err := render(memberChart, vals)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]string{}
		for _, ss := range decode(t, files).statefulSets {
			out[ss.Name] = ss.Spec.Template.Annotations
		}
		return out
	}
	before := annotations(base)
	changed := func(after map[string]map[string]string, key string) []string {
		var out []string
		for n, a := range after {
			if a[key] != before[n][key] {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out
	}
	geth := []string{"acme-public-0", "acme-tx", "acme-validator-0"}

	g := loadValues(t, "testdata/member-bft-minimal.yaml")
	g["cometGenesis"] = strings.Replace(g["cometGenesis"].(string), "2026-12-07", "2026-12-08", 1)
	if got := changed(annotations(g), "checksum/config"); !slices.Equal(got, geth) {
		t.Errorf("a new CometBFT genesis changed checksum/config of %v, want %v", got, geth)
	}
	k := loadValues(t, "testdata/member-bft-minimal.yaml")
	node := k["validators"].(map[string]any)["nodes"].([]any)[0].(map[string]any)
	node["validatorKey"] = strings.Replace(node["validatorKey"].(string), "not-a-real-key", "another-key", 1)
	after := annotations(k)
	if got := changed(after, "checksum/keys"); !slices.Equal(got, []string{"acme-validator-0"}) {
		t.Errorf("a new validator key changed checksum/keys of %v, want the validator's only", got)
	}
	if got := changed(after, "checksum/config"); len(got) != 0 {
		t.Errorf("a new validator key changed checksum/config of %v", got)
	}
	if got := changed(annotations(base), "checksum/config"); len(got) != 0 {
		t.Errorf("rendering twice changed the checksums of %v", got)
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func podName(p *corev1.Pod) string { return p.Name }
