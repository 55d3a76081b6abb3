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

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
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
	deployments  []*appsv1.Deployment
	services     []*corev1.Service
	secrets      []*corev1.Secret
	configMaps   []*corev1.ConfigMap
	policies     []*networkingv1.NetworkPolicy
	pdbs         []*policyv1.PodDisruptionBudget
	pods         []*corev1.Pod // helm test hooks
	monitors     []*monitoringv1.ServiceMonitor
	rules        []*monitoringv1.PrometheusRule
	notes        string
}

// workload is a StatefulSet's or a Deployment's pods.
type workload struct {
	what     string // "StatefulSet acme-tx"
	name     string
	selector *metav1.LabelSelector
	tmpl     corev1.PodTemplateSpec
	claims   []corev1.PersistentVolumeClaim
}

func (r *rendered) workloads() []workload {
	var out []workload
	for _, ss := range r.statefulSets {
		out = append(out, workload{"StatefulSet " + ss.Name, ss.Name, ss.Spec.Selector, ss.Spec.Template, ss.Spec.VolumeClaimTemplates})
	}
	for _, d := range r.deployments {
		out = append(out, workload{"Deployment " + d.Name, d.Name, d.Spec.Selector, d.Spec.Template, nil})
	}
	return out
}

// selecting returns the workloads whose pods a label selector matches.
func (r *rendered) selecting(sel labels.Selector) []string {
	var names []string
	for _, w := range r.workloads() {
		if sel.Matches(labels.Set(w.tmpl.Labels)) {
			names = append(names, w.name)
		}
	}
	return names
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
			case "apps/v1 Deployment":
				o := &appsv1.Deployment{}
				r.deployments, obj = append(r.deployments, o), o
			case "policy/v1 PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				r.pdbs, obj = append(r.pdbs, o), o
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
			case "v1 Pod":
				o := &corev1.Pod{}
				r.pods, obj = append(r.pods, o), o
			case "monitoring.coreos.com/v1 ServiceMonitor":
				o := &monitoringv1.ServiceMonitor{}
				r.monitors, obj = append(r.monitors, o), o
			case "monitoring.coreos.com/v1 PrometheusRule":
				o := &monitoringv1.PrometheusRule{}
				r.rules, obj = append(r.rules, o), o
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
		if svc := services[ss.Spec.ServiceName]; svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("StatefulSet %s: serviceName %q is not a rendered headless Service", ss.Name, ss.Spec.ServiceName)
		}
	}
	for _, d := range r.deployments {
		meta("Deployment", d.ObjectMeta, false)
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: selector %v does not match its pods' labels %v", d.Name, d.Spec.Selector, d.Spec.Template.Labels)
		}
	}
	for _, w := range r.workloads() {
		podLabels = append(podLabels, w.tmpl.Labels)
		checkPod(t, w.what, w.tmpl.Spec, w.claims, secrets, configMaps, existing)
	}
	// A controller whose selector also matches another's pods fights it
	// over them.
	for _, w := range r.workloads() {
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if ws := r.selecting(sel); err == nil && len(ws) != 1 {
			t.Errorf("%s: its selector matches the pods of %v", w.what, ws)
		}
	}
	for _, s := range r.services {
		if len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s selects nothing", s.Name)
			continue
		}
		var pods []workload
		for _, w := range r.workloads() {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.tmpl.Labels)) {
				pods = append(pods, w)
			}
		}
		if len(pods) == 0 {
			t.Errorf("Service %s: selector %v matches no pod", s.Name, s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.StrVal == "" {
				continue
			}
			for _, w := range pods {
				if !hasPort(w.tmpl.Spec, p.TargetPort.StrVal, p.Protocol) {
					t.Errorf("Service %s: targetPort %s/%s is not a port of %s", s.Name, p.TargetPort.StrVal, p.Protocol, w.name)
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
	for _, p := range r.pods {
		meta("Pod", p.ObjectMeta, false)
		// A bare Pod in a chart is a `helm test` hook, never a workload.
		if p.Annotations["helm.sh/hook"] != "test" {
			t.Errorf("Pod %s is not a helm test hook (annotations %v)", p.Name, p.Annotations)
		}
		if p.Spec.RestartPolicy != corev1.RestartPolicyNever || p.Spec.ActiveDeadlineSeconds == nil {
			t.Errorf("Pod %s: a test needs restartPolicy Never and a deadline", p.Name)
		}
		checkPod(t, "Pod "+p.Name, p.Spec, nil, secrets, configMaps, existing)
	}
	for _, m := range r.monitors {
		meta("ServiceMonitor", m.ObjectMeta, false)
		r.checkServiceMonitor(t, m)
	}
	for _, pr := range r.rules {
		meta("PrometheusRule", pr.ObjectMeta, false)
		checkPrometheusRule(t, pr)
	}
	for _, b := range r.pdbs {
		meta("PodDisruptionBudget", b.ObjectMeta, false)
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || len(r.selecting(sel)) != 1 {
			t.Errorf("PodDisruptionBudget %s: selector %v must match the pods of one workload (%v)", b.Name, b.Spec.Selector, err)
		}
		if (b.Spec.MaxUnavailable == nil) == (b.Spec.MinAvailable == nil) {
			t.Errorf("PodDisruptionBudget %s: set one of maxUnavailable and minAvailable", b.Name)
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

func checkPod(t *testing.T, what string, spec corev1.PodSpec, claims []corev1.PersistentVolumeClaim, secrets map[string]*corev1.Secret, configMaps map[string]*corev1.ConfigMap, existing map[string]bool) {
	t.Helper()
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
	for _, pvc := range claims {
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
			if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
				s, ok := secrets[ref.SecretKeyRef.Name]
				if !ok && !existing["Secret/"+ref.SecretKeyRef.Name] {
					t.Errorf("%s: env %s: Secret %s is neither rendered nor given as existing", cw, e.Name, ref.SecretKeyRef.Name)
				}
				if s != nil && s.Data[ref.SecretKeyRef.Key] == nil {
					t.Errorf("%s: env %s: Secret %s has no key %s", cw, e.Name, s.Name, ref.SecretKeyRef.Key)
				}
			}
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
		{memberChart, "testdata/member-bft-minimal.yaml", nil, checkBFTMinimal},
		{memberChart, "testdata/member-bft-full.yaml", []string{"ConfigMap/consortium-registrar-ca", "Secret/acme-credential", "Secret/acme-bft-validator", "Secret/acme-engine-jwt"}, checkBFTFull},
		{registrarChart, "testdata/registrar-minimal.yaml", []string{"Secret/registrar-tls", "Secret/consortium-seed"}, checkRegistrarSQLite},
		{registrarChart, "testdata/registrar-full.yaml", []string{"Secret/registrar-tls"}, checkRegistrarFull},
		{registrarChart, "testdata/registrar-ha.yaml", []string{"Secret/registrar-tls", "Secret/consortium-seed"}, checkRegistrarHA},
		{registrarChart, "testdata/registrar-external-etcd.yaml", []string{"Secret/registrar-tls", "Secret/etcd-client-tls", "Secret/etcd-registrar-password"}, checkRegistrarExternalEtcd},
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

func ssName(s *appsv1.StatefulSet) string            { return s.Name }
func svcName(s *corev1.Service) string               { return s.Name }
func secName(s *corev1.Secret) string                { return s.Name }
func npName(s *networkingv1.NetworkPolicy) string    { return s.Name }
func depName(s *appsv1.Deployment) string            { return s.Name }
func pdbName(s *policyv1.PodDisruptionBudget) string { return s.Name }

func container(t *testing.T, ss *appsv1.StatefulSet, name string) corev1.Container {
	t.Helper()
	return podContainer(t, ss.Name, ss.Spec.Template.Spec, name)
}

func podContainer(t *testing.T, what string, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("%s has no container %s", what, name)
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
	stateFlags(t, v, false) // Clique: geth v1.13 keeps its default (hash)
	geth := container(t, v, "geth")
	// The signer's geth runs without --mine: its agent starts sealing
	// (--seal) once peered and at the head, from the keystore agent-init
	// filled (signer key copied in, relay account made).
	const signer = "0xe528327bc2c4f65d5ca351bf68229d9977c8978e"
	if argAfter(geth.Args, "--unlock") != signer || argAfter(geth.Args, "--keystore") != "/data/keystore" || slices.Contains(geth.Args, "--mine") {
		t.Errorf("validator geth args %v", geth.Args)
	}
	if got := argAfter(container(t, v, "agent").Args, "--seal"); got != signer {
		t.Errorf("validator agent --seal %q, want %s", got, signer)
	}
	// A Clique node's agent is the image's agent-only build: no consensus
	// process to run, a fifth of the full binary's RSS.
	if a := container(t, v, "agent"); !slices.Equal(a.Command, []string{"/usr/local/bin/consortium-agent"}) || len(a.Args) == 0 || a.Args[0] != "--role" {
		t.Errorf("Clique agent command %v args %v, want consortium-agent --role ...", a.Command, a.Args)
	}
	if init := container(t, v, "agent-init"); argAfter(init.Args, "--signer-keystore") != "/signer/keystore" || argAfter(init.Args, "--keystore") != "/data/keystore" {
		t.Errorf("validator agent-init args %v", init.Args)
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
	checkRegistrarSQLite(t, r)
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

// The default store: one replica, a StatefulSet on an SQLite volume, as
// before the etcd store.
func checkRegistrarSQLite(t *testing.T, r *rendered) {
	t.Helper()
	if len(r.deployments) != 0 || len(r.pdbs) != 0 || len(r.statefulSets) != 1 {
		t.Errorf("SQLite mode rendered %d StatefulSets, %d Deployments and %d PodDisruptionBudgets", len(r.statefulSets), len(r.deployments), len(r.pdbs))
	}
	ss := find(t, r.statefulSets, ssName, "acme-registrar")
	if ss.Spec.Replicas == nil || *ss.Spec.Replicas != 1 || len(ss.Spec.VolumeClaimTemplates) != 1 {
		t.Errorf("registrar StatefulSet: replicas %v, %d volume claims", ss.Spec.Replicas, len(ss.Spec.VolumeClaimTemplates))
	}
	args := container(t, ss, "registrar").Args
	if slices.Contains(args, "--store") || argAfter(args, "--data") != "/data" {
		t.Errorf("registrar args %v: want the SQLite store in /data", args)
	}
	if !strings.Contains(r.notes, "SQLite") {
		t.Errorf("NOTES do not say where the state is:\n%s", r.notes)
	}
}

// The workloads whose pods a NetworkPolicy peer's pod selector admits (in
// the policy's own namespace: no namespaceSelector, no ipBlock).
func admitted(t *testing.T, r *rendered, np *networkingv1.NetworkPolicy, port int) []string {
	t.Helper()
	var out []string
	for _, rule := range np.Spec.Ingress {
		if !slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port != nil && p.Port.IntValue() == port }) {
			continue
		}
		if len(rule.From) == 0 {
			t.Errorf("NetworkPolicy %s: port %d is open to everyone", np.Name, port)
		}
		for _, f := range rule.From {
			if f.PodSelector == nil || f.NamespaceSelector != nil || f.IPBlock != nil {
				t.Errorf("NetworkPolicy %s: port %d admits %+v, not only pods of this namespace", np.Name, port, f)
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(f.PodSelector)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r.selecting(sel)...)
		}
	}
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 {
			t.Errorf("NetworkPolicy %s: a rule admits every port", np.Name)
		}
	}
	return out
}

func checkRegistrarHA(t *testing.T, r *rendered) {
	const (
		etcdName = "acme-registrar-etcd"
		headless = "acme-registrar-etcd-headless"
	)
	// Three registrar replicas, stateless, on every bundled etcd member.
	dep := find(t, r.deployments, depName, "acme-registrar")
	for _, ss := range r.statefulSets {
		if ss.Name == "acme-registrar" {
			t.Errorf("the SQLite StatefulSet is rendered beside the Deployment")
		}
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
		t.Errorf("registrar replicas %v, want 3", dep.Spec.Replicas)
	}
	if ru := dep.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("registrar rolling update %+v: want a new replica up before an old one goes", ru)
	}
	args := podContainer(t, dep.Name, dep.Spec.Template.Spec, "registrar").Args
	var members []string
	for i := range 3 {
		members = append(members, fmt.Sprintf("%s-%d.%s.%s.svc.cluster.local:2379", etcdName, i, headless, namespace))
	}
	if got, want := argAfter(args, "--store"), "etcd://"+strings.Join(members, ","); got != want {
		t.Errorf("registrar --store %q, want %q", got, want)
	}
	if argAfter(args, "--etcd-prefix") != "/consortium/" || argAfter(args, "--seed") != "/seed/seed.json" || argAfter(args, "--tls-cert") != "/tls/tls.crt" {
		t.Errorf("registrar args %v", args)
	}
	for _, f := range []string{"--etcd-cacert", "--etcd-user"} {
		if slices.Contains(args, f) {
			t.Errorf("registrar on the bundled etcd (plain http, no users) has %s", f)
		}
	}
	aff := dep.Spec.Template.Spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
		len(aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 0 {
		t.Fatalf("registrar affinity %+v: want one soft anti-affinity term", aff)
	}
	term := aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
	sel, _ := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if term.TopologyKey != "kubernetes.io/hostname" || !slices.Equal(r.selecting(sel), []string{dep.Name}) {
		t.Errorf("registrar anti-affinity %+v: want its own pods, across nodes", term)
	}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == "data" && v.EmptyDir == nil {
			t.Errorf("registrar /data on %+v, want scratch (emptyDir)", v.VolumeSource)
		}
	}

	// The bundled etcd: three members that name each other by stable DNS.
	etcd := find(t, r.statefulSets, ssName, etcdName)
	if etcd.Spec.Replicas == nil || *etcd.Spec.Replicas != 3 {
		t.Errorf("etcd replicas %v, want 3", etcd.Spec.Replicas)
	}
	if etcd.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("etcd podManagementPolicy %q: an ordered start never gets member 0 ready", etcd.Spec.PodManagementPolicy)
	}
	hs := find(t, r.services, svcName, headless)
	if etcd.Spec.ServiceName != headless || !hs.Spec.PublishNotReadyAddresses {
		t.Errorf("etcd serviceName %q, headless Service publishNotReadyAddresses %v", etcd.Spec.ServiceName, hs.Spec.PublishNotReadyAddresses)
	}
	if q := etcd.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "4Gi" {
		t.Errorf("etcd volume %s, want 4Gi", q.String())
	}
	ec := container(t, etcd, "etcd")
	if ec.Image != "consortium/consortium:dev" || len(ec.Args) == 0 || ec.Args[0] != "etcd" {
		t.Errorf("etcd container runs %s %v, want consortium etcd", ec.Image, ec.Args)
	}
	if len(ec.Env) == 0 || ec.Env[0].Name != "POD_NAME" || ec.Env[0].ValueFrom == nil || ec.Env[0].ValueFrom.FieldRef == nil ||
		ec.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("etcd env %+v: want POD_NAME from metadata.name", ec.Env)
	}
	for i := range 3 {
		// What pod i runs: $(POD_NAME) is its name.
		pod := fmt.Sprintf("%s-%d", etcdName, i)
		var args []string
		for _, a := range ec.Args {
			args = append(args, strings.ReplaceAll(a, "$(POD_NAME)", pod))
		}
		cluster := map[string]string{}
		for _, m := range strings.Split(argAfter(args, "--initial-cluster"), ",") {
			n, u, _ := strings.Cut(m, "=")
			cluster[n] = u
		}
		for j := range 3 {
			n := fmt.Sprintf("%s-%d", etcdName, j)
			if want := fmt.Sprintf("http://%s.%s.%s.svc.cluster.local:2380", n, headless, namespace); cluster[n] != want {
				t.Errorf("pod %s: --initial-cluster has %s=%q, want %s", pod, n, cluster[n], want)
			}
		}
		if len(cluster) != 3 {
			t.Errorf("pod %s: --initial-cluster names %d members", pod, len(cluster))
		}
		if name := argAfter(args, "--name"); name != pod || argAfter(args, "--advertise-peer") != cluster[name] {
			t.Errorf("pod %s: --name %s --advertise-peer %s, not its own --initial-cluster entry %s", pod, name, argAfter(args, "--advertise-peer"), cluster[pod])
		}
		if argAfter(args, "--initial-cluster-state") != "new" || argAfter(args, "--data") != "/data/etcd" {
			t.Errorf("pod %s: args %v", pod, args)
		}
	}
	if p := ec.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/health" || p.HTTPGet.Port.StrVal != "client" {
		t.Errorf("etcd readiness probe %+v", p)
	}
	if p := ec.LivenessProbe; p == nil || p.HTTPGet == nil || !strings.HasPrefix(p.HTTPGet.Path, "/health") {
		t.Errorf("etcd liveness probe %+v", p)
	}
	if !hasPort(etcd.Spec.Template.Spec, "client", corev1.ProtocolTCP) || !hasPort(etcd.Spec.Template.Spec, "peer", corev1.ProtocolTCP) {
		t.Errorf("etcd ports %+v", ec.Ports)
	}
	find(t, r.services, svcName, etcdName)

	// One member, one registrar down at a time.
	for _, n := range []string{"acme-registrar", etcdName} {
		b := find(t, r.pdbs, pdbName, n)
		if b.Spec.MaxUnavailable == nil || b.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("PodDisruptionBudget %s: maxUnavailable %v, want 1", n, b.Spec.MaxUnavailable)
		}
		sel, _ := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if got := r.selecting(sel); !slices.Equal(got, []string{n}) {
			t.Errorf("PodDisruptionBudget %s covers %v", n, got)
		}
	}

	// etcd's client port only from the registrars, its peer port only from
	// its members; the policy covers the etcd pods and nothing else.
	np := find(t, r.policies, npName, etcdName)
	sel, _ = metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if got := r.selecting(sel); !slices.Equal(got, []string{etcdName}) {
		t.Errorf("NetworkPolicy %s applies to %v", etcdName, got)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("NetworkPolicy %s policyTypes %v", etcdName, np.Spec.PolicyTypes)
	}
	if got := admitted(t, r, np, 2379); !slices.Equal(got, []string{"acme-registrar"}) {
		t.Errorf("etcd client port 2379 admits %v, want only the registrar pods", got)
	}
	if got := admitted(t, r, np, 2380); !slices.Equal(got, []string{etcdName}) {
		t.Errorf("etcd peer port 2380 admits %v, want only the etcd pods", got)
	}
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if v := p.Port.IntValue(); v != 2379 && v != 2380 {
				t.Errorf("NetworkPolicy %s opens port %d", etcdName, v)
			}
		}
	}

	// Several replicas behind one address.
	lb := find(t, r.services, svcName, "acme-registrar")
	if got := r.selecting(labels.SelectorFromSet(lb.Spec.Selector)); lb.Spec.Type != corev1.ServiceTypeLoadBalancer || !slices.Equal(got, []string{"acme-registrar"}) {
		t.Errorf("registrar Service: type %s, selects %v; want a LoadBalancer in front of the registrar replicas only", lb.Spec.Type, got)
	}
	for _, s := range r.services {
		if s.Name == "acme-registrar-headless" {
			t.Errorf("the SQLite StatefulSet's headless Service is rendered in etcd mode")
		}
	}
	if !strings.Contains(r.notes, "3 replica(s)") || !strings.Contains(r.notes, "bundled etcd: 3 members") {
		t.Errorf("NOTES do not describe the HA registrar:\n%s", r.notes)
	}
}

func checkRegistrarExternalEtcd(t *testing.T, r *rendered) {
	for _, ss := range r.statefulSets {
		t.Errorf("StatefulSet %s rendered for an external etcd", ss.Name)
	}
	dep := find(t, r.deployments, depName, "acme-registrar")
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("registrar replicas %v, want 2", dep.Spec.Replicas)
	}
	c := podContainer(t, dep.Name, dep.Spec.Template.Spec, "registrar")
	want := map[string]string{
		"--store":             "etcds://etcd-0.db.example.org:2379,etcd-1.db.example.org:2379,10.0.3.7:2379",
		"--etcd-prefix":       "/consortia/acme/",
		"--etcd-dial-timeout": "10s",
		"--etcd-cacert":       "/etcd-tls/ca.crt",
		"--etcd-cert":         "/etcd-tls/tls.crt",
		"--etcd-key":          "/etcd-tls/tls.key",
		"--etcd-user":         "registrar",
	}
	for f, v := range want {
		if got := argAfter(c.Args, f); got != v {
			t.Errorf("registrar %s %q, want %q", f, got, v)
		}
	}
	// The client certificate: the Secret's three keys, where the flags say.
	var tlsVol *corev1.Volume
	for i, v := range dep.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "etcd-client-tls" {
			tlsVol = &dep.Spec.Template.Spec.Volumes[i]
		}
	}
	if tlsVol == nil {
		t.Fatalf("no volume from Secret etcd-client-tls")
	}
	var keys []string
	for _, it := range tlsVol.Secret.Items {
		keys = append(keys, it.Key+"="+it.Path)
	}
	if !slices.Equal(keys, []string{"ca.crt=ca.crt", "tls.crt=tls.crt", "tls.key=tls.key"}) {
		t.Errorf("etcd TLS volume items %v", keys)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == tlsVol.Name && m.MountPath == "/etcd-tls" && m.ReadOnly
	}) {
		t.Errorf("etcd TLS volume not mounted read-only at /etcd-tls: %+v", c.VolumeMounts)
	}
	// The password: from the Secret, never in the args.
	var pw *corev1.EnvVar
	for i, e := range c.Env {
		if e.Name == "CONSORTIUM_ETCD_PASSWORD" {
			pw = &c.Env[i]
		}
	}
	if pw == nil || pw.Value != "" || pw.ValueFrom == nil || pw.ValueFrom.SecretKeyRef == nil ||
		pw.ValueFrom.SecretKeyRef.Name != "etcd-registrar-password" || pw.ValueFrom.SecretKeyRef.Key != "password" {
		t.Errorf("CONSORTIUM_ETCD_PASSWORD %+v, want the key password of Secret etcd-registrar-password", pw)
	}
	b := find(t, r.pdbs, pdbName, "acme-registrar")
	if b.Spec.MaxUnavailable == nil || b.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("registrar PodDisruptionBudget maxUnavailable %v", b.Spec.MaxUnavailable)
	}
	if len(r.pdbs) != 1 || len(r.policies) != 1 {
		t.Errorf("%d PodDisruptionBudgets, %d NetworkPolicies: want the registrar's only", len(r.pdbs), len(r.policies))
	}
	find(t, r.secrets, secName, "acme-registrar-seed")
	if !strings.Contains(r.notes, "etcd-0.db.example.org:2379") || !strings.Contains(r.notes, "(TLS)") {
		t.Errorf("NOTES do not name the external etcd:\n%s", r.notes)
	}
}
