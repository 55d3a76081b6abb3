// Package helm tests the consortium's Helm charts without a helm binary or a
// cluster: Helm's own Go packages lint and render the charts, and every
// rendered object is decoded strictly into its Kubernetes API type (an
// unknown or misspelt field fails), then checked for the references between
// objects that the API server would only find at run time.
//
// It is a module of its own, so that Helm and the Kubernetes API types stay
// out of the consortium's go.mod. Run it from this directory:
//
//	go test ./...
package helm

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

const (
	memberChart    = "consortium-member"
	registrarChart = "consortium-registrar"
	namespace      = "consortium"
)

// rendered is what one chart produced for one set of values.
type rendered struct {
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	secrets      []*corev1.Secret
	configMaps   []*corev1.ConfigMap
	policies     []*networkingv1.NetworkPolicy
	notes        string
}

func loadValues(t *testing.T, file string) map[string]any {
	t.Helper()
	if file == "" {
		return map[string]any{}
	}
	v, err := chartutil.ReadValuesFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// render renders a chart the way `helm install --dry-run` would (values
// checked against values.schema.json first), without a cluster.
func render(chartDir string, vals map[string]any) (map[string]string, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "acme", Namespace: namespace, IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, top)
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decode splits the manifests and decodes each object strictly into its
// API type.
func decode(t *testing.T, files map[string]string) *rendered {
	t.Helper()
	r := &rendered{}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.notes = files[name]
			continue
		}
		for i, doc := range docSep.Split(files[name], -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s #%d: not YAML: %v\n%s", name, i, err, doc)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 StatefulSet":
				o := &appsv1.StatefulSet{}
				r.statefulSets, obj = append(r.statefulSets, o), o
			case "v1 Service":
				o := &corev1.Service{}
				r.services, obj = append(r.services, o), o
			case "v1 Secret":
				o := &corev1.Secret{}
				r.secrets, obj = append(r.secrets, o), o
			case "v1 ConfigMap":
				o := &corev1.ConfigMap{}
				r.configMaps, obj = append(r.configMaps, o), o
			case "networking.k8s.io/v1 NetworkPolicy":
				o := &networkingv1.NetworkPolicy{}
				r.policies, obj = append(r.policies, o), o
			default:
				t.Fatalf("%s #%d: unexpected object %q %q", name, i, tm.APIVersion, tm.Kind)
			}
			// UnmarshalStrict: unknown fields and duplicate keys are errors.
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s #%d (%s): does not match the Kubernetes API type: %v\n%s", name, i, tm.Kind, err, doc)
			}
		}
	}
	return r
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// check runs the checks every rendering must pass: names and labels the
// API server accepts, and every reference resolved.
func (r *rendered) check(t *testing.T, existing map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	meta := func(kind string, m metav1.ObjectMeta, dns1035 bool) {
		key := kind + "/" + m.Name
		if seen[key] {
			t.Errorf("%s rendered twice", key)
		}
		seen[key] = true
		errs := validation.IsDNS1123Subdomain(m.Name)
		if dns1035 {
			errs = validation.IsDNS1035Label(m.Name)
		}
		for _, e := range errs {
			t.Errorf("%s: bad name: %s", key, e)
		}
		for k, v := range m.Labels {
			for _, e := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				t.Errorf("%s: label %s=%s: %s", key, k, v, e)
			}
		}
	}
	secrets, configMaps, services := map[string]*corev1.Secret{}, map[string]*corev1.ConfigMap{}, map[string]*corev1.Service{}
	for _, s := range r.secrets {
		meta("Secret", s.ObjectMeta, false)
		secrets[s.Name] = s
		for k, v := range s.Data {
			if len(v) == 0 {
				t.Errorf("Secret %s: key %s is empty", s.Name, k)
			}
			for _, e := range validation.IsConfigMapKey(k) {
				t.Errorf("Secret %s: key %s: %s", s.Name, k, e)
			}
		}
	}
	for _, c := range r.configMaps {
		meta("ConfigMap", c.ObjectMeta, false)
		configMaps[c.Name] = c
	}
	for _, s := range r.services {
		meta("Service", s.ObjectMeta, true)
		services[s.Name] = s
	}
	podLabels := []labels.Set{}
	for _, ss := range r.statefulSets {
		meta("StatefulSet", ss.ObjectMeta, false)
		sel, err := metav1.LabelSelectorAsSelector(ss.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(ss.Spec.Template.Labels)) {
			t.Errorf("StatefulSet %s: selector %v does not match its pods' labels %v", ss.Name, ss.Spec.Selector, ss.Spec.Template.Labels)
		}
		podLabels = append(podLabels, ss.Spec.Template.Labels)
		if svc := services[ss.Spec.ServiceName]; svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("StatefulSet %s: serviceName %q is not a rendered headless Service", ss.Name, ss.Spec.ServiceName)
		}
		checkPod(t, "StatefulSet "+ss.Name, ss, secrets, configMaps, existing)
	}
	for _, s := range r.services {
		if len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s selects nothing", s.Name)
			continue
		}
		var pods []*appsv1.StatefulSet
		for _, ss := range r.statefulSets {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(ss.Spec.Template.Labels)) {
				pods = append(pods, ss)
			}
		}
		if len(pods) == 0 {
			t.Errorf("Service %s: selector %v matches no pod", s.Name, s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.StrVal == "" {
				continue
			}
			for _, ss := range pods {
				if !hasPort(ss.Spec.Template.Spec, p.TargetPort.StrVal, p.Protocol) {
					t.Errorf("Service %s: targetPort %s/%s is not a port of %s", s.Name, p.TargetPort.StrVal, p.Protocol, ss.Name)
				}
			}
		}
	}
	for _, np := range r.policies {
		meta("NetworkPolicy", np.ObjectMeta, false)
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			t.Errorf("NetworkPolicy %s: %v", np.Name, err)
			continue
		}
		if !slices.ContainsFunc(podLabels, func(l labels.Set) bool { return sel.Matches(l) }) {
			t.Errorf("NetworkPolicy %s selects no pod", np.Name)
		}
	}
}

func hasPort(spec corev1.PodSpec, name string, proto corev1.Protocol) bool {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name && p.Protocol == proto {
				return true
			}
		}
	}
	return false
}

var varRef = regexp.MustCompile(`\$\(([A-Z_][A-Z0-9_]*)\)`)

func checkPod(t *testing.T, what string, ss *appsv1.StatefulSet, secrets map[string]*corev1.Secret, configMaps map[string]*corev1.ConfigMap, existing map[string]bool) {
	t.Helper()
	spec := ss.Spec.Template.Spec
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod may run as root", what)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		switch {
		case v.Secret != nil:
			s, ok := secrets[v.Secret.SecretName]
			if !ok && !existing["Secret/"+v.Secret.SecretName] {
				t.Errorf("%s: volume %s: Secret %s is neither rendered nor given as existing", what, v.Name, v.Secret.SecretName)
			}
			for _, it := range v.Secret.Items {
				if s != nil && s.Data[it.Key] == nil {
					t.Errorf("%s: volume %s: Secret %s has no key %s", what, v.Name, s.Name, it.Key)
				}
			}
		case v.ConfigMap != nil:
			c, ok := configMaps[v.ConfigMap.Name]
			if !ok && !existing["ConfigMap/"+v.ConfigMap.Name] {
				t.Errorf("%s: volume %s: ConfigMap %s is neither rendered nor given as existing", what, v.Name, v.ConfigMap.Name)
			}
			for _, it := range v.ConfigMap.Items {
				if c != nil && c.Data[it.Key] == "" {
					t.Errorf("%s: volume %s: ConfigMap %s has no key %s", what, v.Name, c.Name, it.Key)
				}
			}
		}
	}
	for _, pvc := range ss.Spec.VolumeClaimTemplates {
		volumes[pvc.Name] = corev1.Volume{Name: pvc.Name}
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		cw := what + " container " + c.Name
		if c.Image == "" || strings.HasSuffix(c.Image, ":") {
			t.Errorf("%s: image %q", cw, c.Image)
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
			!slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: securityContext must be read-only, without privilege escalation, dropping ALL capabilities", cw)
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("%s: mounts unknown volume %s", cw, m.Name)
			}
		}
		env := map[string]bool{}
		for _, e := range c.Env {
			env[e.Name] = true
		}
		for _, a := range append(slices.Clone(c.Command), c.Args...) {
			for _, m := range varRef.FindAllStringSubmatch(a, -1) {
				if !env[m[1]] {
					t.Errorf("%s: argument %q uses $(%s), which is not in its env", cw, a, m[1])
				}
			}
		}
	}
}

func lintErrors(chartDir string, vals map[string]any) []support.Message {
	l := lint.All(chartDir, vals, namespace, false)
	var out []support.Message
	for _, m := range l.Messages {
		if m.Severity >= support.WarningSev {
			out = append(out, m)
		}
	}
	return out
}

// Each good values file lints clean (no warning, no error) and renders
// objects that pass the strict decoding and the checks above.
func TestChartsRenderStrictly(t *testing.T) {
	for _, tc := range []struct {
		chart, values string
		existing      []string // objects the values name as already there
		more          func(*testing.T, *rendered)
	}{
		{memberChart, "testdata/member-minimal.yaml", nil, checkMemberMinimal},
		{memberChart, "testdata/member-full.yaml", []string{"ConfigMap/consortium-registrar-ca", "Secret/acme-credential", "Secret/acme-validator-2"}, checkMemberFull},
		{memberChart, "testdata/member-validators-only.yaml", []string{"Secret/acme-signer"}, checkValidatorsOnly},
		{registrarChart, "testdata/registrar-minimal.yaml", []string{"Secret/registrar-tls", "Secret/consortium-seed"}, nil},
		{registrarChart, "testdata/registrar-full.yaml", []string{"Secret/registrar-tls"}, checkRegistrarFull},
	} {
		t.Run(tc.chart+"/"+filepath.Base(tc.values), func(t *testing.T) {
			vals := loadValues(t, tc.values)
			for _, m := range lintErrors(tc.chart, vals) {
				t.Errorf("helm lint: %s", m)
			}
			files, err := render(tc.chart, vals)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			r := decode(t, files)
			existing := map[string]bool{}
			for _, e := range tc.existing {
				existing[e] = true
			}
			r.check(t, existing)
			if tc.more != nil {
				tc.more(t, r)
			}
		})
	}
}

// Bad values fail at schema or template time, with a message that names
// the value. Each file's first line says "# want: <part of the message>";
// those checked by the schema must also fail `helm lint`.
func TestBadValuesFailClearly(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad values files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, rest, _ := bytes.Cut(b, []byte("\n"))
			want, ok := strings.CutPrefix(string(first), "# want: ")
			// "# template:": a check in the templates (fail), which helm
			// lint runs in lint mode, where fail only logs.
			templateOnly := bytes.HasPrefix(rest, []byte("# template:"))
			if !ok {
				t.Fatalf("%s: first line must be '# want: ...'", f)
			}
			chartDir := memberChart
			if strings.HasPrefix(filepath.Base(f), "registrar-") {
				chartDir = registrarChart
			}
			vals := loadValues(t, f)
			_, err = render(chartDir, vals)
			if err == nil {
				t.Fatalf("rendered without error; want one saying %q", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not say %q:\n%v", want, err)
			}
			if templateOnly {
				t.Logf("%s", firstLines(err.Error(), 4))
				return
			}
			msgs := lintErrors(chartDir, vals)
			found := false
			for _, m := range msgs {
				found = found || (m.Severity == support.ErrorSev && strings.Contains(m.Err.Error(), want))
			}
			if !found {
				t.Errorf("helm lint does not report %q; it says %v", want, msgs)
			}
			t.Logf("%s", firstLines(err.Error(), 4))
		})
	}
}

// The charts as shipped, with no values given, lint to a message that says
// what to set, not to a template crash.
func TestDefaultsSayWhatIsMissing(t *testing.T) {
	for chartDir, want := range map[string][]string{
		memberChart:    {"/member", "/genesis", "/registrar/url", "/validators/nodes"},
		registrarChart: {"/tls/existingSecret"},
	} {
		msgs := lintErrors(chartDir, nil)
		var all strings.Builder
		for _, m := range msgs {
			all.WriteString(m.Err.Error() + "\n")
		}
		for _, w := range want {
			if !strings.Contains(all.String(), w) {
				t.Errorf("%s with its defaults: lint does not name %s:\n%s", chartDir, w, all.String())
			}
		}
	}
}

func firstLines(s string, n int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[:min(n, len(l))], "\n")
}

func find[T any](t *testing.T, list []*T, name func(*T) string, want string) *T {
	t.Helper()
	for _, o := range list {
		if name(o) == want {
			return o
		}
	}
	t.Fatalf("%s not rendered", want)
	return nil
}

func ssName(s *appsv1.StatefulSet) string         { return s.Name }
func svcName(s *corev1.Service) string            { return s.Name }
func secName(s *corev1.Secret) string             { return s.Name }
func npName(s *networkingv1.NetworkPolicy) string { return s.Name }

func container(t *testing.T, ss *appsv1.StatefulSet, name string) corev1.Container {
	t.Helper()
	for _, c := range append(slices.Clone(ss.Spec.Template.Spec.InitContainers), ss.Spec.Template.Spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("%s has no container %s", ss.Name, name)
	return corev1.Container{}
}

// argAfter returns the argument that follows flag.
func argAfter(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func checkMemberMinimal(t *testing.T, r *rendered) {
	boot := find(t, r.statefulSets, ssName, "acme-bootnode")
	if *boot.Spec.Replicas != 2 {
		t.Errorf("bootnode replicas %d, want the default 2", *boot.Spec.Replicas)
	}
	if got := argAfter(container(t, boot, "bootnode").Args, "--nodekey"); got != "/data/nodekey" {
		t.Errorf("bootnode without nodekeys reads its key from %s, want its volume", got)
	}
	v := find(t, r.statefulSets, ssName, "acme-validator-0")
	geth := container(t, v, "geth")
	if argAfter(geth.Args, "--miner.etherbase") != "0xe528327bc2c4f65d5ca351bf68229d9977c8978e" || !slices.Contains(geth.Args, "--mine") {
		t.Errorf("validator geth args %v", geth.Args)
	}
	pub := find(t, r.statefulSets, ssName, "acme-public-0")
	if got := argAfter(container(t, pub, "agent").Args, "--public-ip"); got != "203.0.113.7" {
		t.Errorf("public agent --public-ip %q", got)
	}
	if got := argAfter(container(t, pub, "agent-init").Args, "--registrar"); got != "https://registrar.example.org:9898" {
		t.Errorf("agent-init --registrar %q", got)
	}
	lb := find(t, r.services, svcName, "acme-public-0-p2p")
	if lb.Spec.Type != corev1.ServiceTypeLoadBalancer || lb.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Errorf("public Service: type %s, externalTrafficPolicy %s", lb.Spec.Type, lb.Spec.ExternalTrafficPolicy)
	}
	cred := find(t, r.secrets, secName, "acme-credential")
	if string(cred.Data["credential"]) != "acme."+strings.Repeat("A", 43) {
		t.Errorf("credential Secret holds %q", cred.Data["credential"])
	}
	// P2P only from this member's pods; the public node also from the
	// consortium's addresses.
	p2p := find(t, r.policies, npName, "acme-p2p")
	from := p2p.Spec.Ingress[0].From
	if len(from) != 1 || from[0].PodSelector == nil || from[0].PodSelector.MatchLabels["app.kubernetes.io/instance"] != "acme" || from[0].IPBlock != nil {
		t.Errorf("acme-p2p admits %+v", from)
	}
	pp := find(t, r.policies, npName, "acme-public-p2p")
	var cidrs []string
	for _, f := range pp.Spec.Ingress[0].From {
		cidrs = append(cidrs, f.IPBlock.CIDR)
	}
	if !slices.Equal(cidrs, []string{"198.51.100.10/32", "198.51.100.20/32"}) {
		t.Errorf("acme-public-p2p admits %v", cidrs)
	}
	if !strings.Contains(r.notes, "203.0.113.7:30303") {
		t.Errorf("NOTES do not give the public endpoint:\n%s", r.notes)
	}
}

func checkMemberFull(t *testing.T, r *rendered) {
	boot := find(t, r.statefulSets, ssName, "acme-bootnode")
	keys := find(t, r.secrets, secName, "acme-bootnode-keys")
	for i := range 2 {
		pod := fmt.Sprintf("%s-%d", boot.Name, i) // a StatefulSet pod's name
		if got := string(keys.Data[pod]); got != strings.Repeat(fmt.Sprintf("%02x", i+1), 32) {
			t.Errorf("bootnode key for pod %s: %q", pod, got)
		}
	}
	if got := argAfter(container(t, boot, "bootnode").Args, "--nodekey"); got != "/keys/$(POD_NAME)" {
		t.Errorf("bootnode --nodekey %s", got)
	}
	tx := find(t, r.statefulSets, ssName, "acme-tx")
	if *tx.Spec.Replicas != 2 || argAfter(container(t, tx, "geth").Args, "--http.api") != "eth,net,web3" {
		t.Errorf("tx: replicas %d, args %v", *tx.Spec.Replicas, container(t, tx, "geth").Args)
	}
	if got := argAfter(container(t, tx, "geth").Args, "--netrestrict"); got != "10.20.0.0/16" {
		t.Errorf("tx --netrestrict %q", got)
	}
	pub := find(t, r.statefulSets, ssName, "acme-public-0")
	if got := argAfter(container(t, pub, "geth").Args, "--netrestrict"); got != "10.20.0.0/16,198.51.100.10/32,192.0.2.0/28" {
		t.Errorf("public --netrestrict %q", got)
	}
	pub1 := find(t, r.statefulSets, ssName, "acme-public-1")
	if a := container(t, pub1, "agent").Args; argAfter(a, "--public-ip") != "203.0.113.8" || argAfter(a, "--public-port") != "30400" {
		t.Errorf("public-1 agent args %v", a)
	}
	lb := find(t, r.services, svcName, "acme-public-1-p2p")
	if lb.Spec.Ports[0].Port != 30400 || lb.Spec.Ports[0].TargetPort.StrVal != "p2p" {
		t.Errorf("public-1 LoadBalancer ports %+v", lb.Spec.Ports)
	}
	lb0 := find(t, r.services, svcName, "acme-public-0-p2p")
	if lb0.Annotations["service.beta.kubernetes.io/aws-load-balancer-type"] != "nlb" || lb0.Spec.LoadBalancerIP != "203.0.113.7" ||
		!slices.Equal(lb0.Spec.LoadBalancerSourceRanges, []string{"198.51.100.10/32", "192.0.2.0/28"}) {
		t.Errorf("public-0 LoadBalancer %+v", lb0.Spec)
	}
	v1 := find(t, r.statefulSets, ssName, "acme-validator-1")
	for _, vol := range v1.Spec.Template.Spec.Volumes {
		if vol.Name == "signer" && vol.Secret.SecretName != "acme-validator-2" {
			t.Errorf("validator-1 signer from %s, want the existing Secret", vol.Secret.SecretName)
		}
	}
	for _, s := range r.secrets {
		if s.Name == "acme-validator-1" || s.Name == "acme-credential" {
			t.Errorf("Secret %s rendered although an existing one was named", s.Name)
		}
	}
	rpc := find(t, r.policies, npName, "acme-tx-rpc")
	if n := len(rpc.Spec.Ingress[0].From); n != 3 {
		t.Errorf("acme-tx-rpc admits %d peers, want the release and the two listed", n)
	}
	find(t, r.policies, npName, "acme-metrics")
	for _, ss := range r.statefulSets {
		if sc := ss.Spec.VolumeClaimTemplates[0].Spec.StorageClassName; sc == nil || *sc != "fast-ssd" {
			t.Errorf("%s: storage class %v", ss.Name, sc)
		}
		if ps := ss.Spec.Template.Spec.ImagePullSecrets; len(ps) != 1 || ps[0].Name != "regcred" {
			t.Errorf("%s: imagePullSecrets %v", ss.Name, ps)
		}
	}
}

func checkValidatorsOnly(t *testing.T, r *rendered) {
	if len(r.statefulSets) != 1 || r.statefulSets[0].Name != "acme-validator-0" {
		var names []string
		for _, s := range r.statefulSets {
			names = append(names, s.Name)
		}
		t.Errorf("StatefulSets %v, want only acme-validator-0", names)
	}
	if len(r.policies) != 0 {
		t.Errorf("%d NetworkPolicies with networkPolicy.enabled false", len(r.policies))
	}
	v := r.statefulSets[0]
	if got := argAfter(container(t, v, "geth").Args, "--nodekey"); got != "/keys/nodekey" {
		t.Errorf("validator with an existing Secret reads its node key from %s", got)
	}
}

func checkRegistrarFull(t *testing.T, r *rendered) {
	ss := find(t, r.statefulSets, ssName, "acme-registrar")
	args := container(t, ss, "registrar").Args
	if argAfter(args, "--ttl") != "45s" || argAfter(args, "--seed") != "/seed/seed.json" || argAfter(args, "--tls-cert") != "/tls/tls.crt" {
		t.Errorf("registrar args %v", args)
	}
	seed := find(t, r.secrets, secName, "acme-registrar-seed")
	if !bytes.Contains(seed.Data["seed.json"], []byte(`"admin_hash"`)) {
		t.Errorf("seed Secret %q", seed.Data["seed.json"])
	}
	svc := find(t, r.services, svcName, "acme-registrar")
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.Ports[0].Port != 443 || len(svc.Spec.LoadBalancerSourceRanges) != 2 {
		t.Errorf("registrar Service %+v", svc.Spec)
	}
	if p := ss.Spec.Template.Spec.Containers[0].ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("registrar readiness probe %+v", p)
	}
}
