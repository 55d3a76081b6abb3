package helm

import (
	"bytes"
	"os"
	"slices"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// The alert rules the member chart ships (its PrometheusRule) and the ones
// deploy/prometheus tests with promtool (make promtool-test).
const (
	chartAlerts  = memberChart + "/files/alerts.yml"
	deployAlerts = "../prometheus/alerts.yml"
)

// TestChartAlertsAreTheTestedOnes: the chart's copy of the alert rules is
// byte for byte the file promtool checks and tests; Helm reads files only
// from inside a chart, so the chart cannot point at the other one.
func TestChartAlertsAreTheTestedOnes(t *testing.T) {
	a, err := os.ReadFile(chartAlerts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(deployAlerts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("%s differs from %s: copy it (cp %s %s)", chartAlerts, deployAlerts, deployAlerts, chartAlerts)
	}
}

// alertNames reads the alert names of a rules file.
func alertNames(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var spec monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(b, &spec); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var out []string
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Alert)
		}
	}
	return out
}

// checkServiceMonitor: the monitor selects rendered Services in the
// release's namespace, each endpoint names a port of one of them, and every
// target is labelled with the job, member and role the alert rules use.
func (r *rendered) checkServiceMonitor(t *testing.T, m *monitoringv1.ServiceMonitor) {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
	if err != nil {
		t.Fatalf("ServiceMonitor %s: %v", m.Name, err)
	}
	ports := map[string]bool{}
	for _, s := range r.services {
		if sel.Matches(labels.Set(s.Labels)) {
			for _, p := range s.Spec.Ports {
				ports[p.Name] = true
			}
		}
	}
	if len(ports) == 0 {
		t.Errorf("ServiceMonitor %s selects no rendered Service", m.Name)
	}
	if !slices.Equal(m.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
		t.Errorf("ServiceMonitor %s: namespaces %v, want the release's", m.Name, m.Spec.NamespaceSelector.MatchNames)
	}
	for _, e := range m.Spec.Endpoints {
		if !ports[e.Port] {
			t.Errorf("ServiceMonitor %s: endpoint port %q is not a port of a selected Service", m.Name, e.Port)
		}
		set := map[string]bool{}
		for _, rc := range e.RelabelConfigs {
			set[rc.TargetLabel] = true
		}
		for _, l := range []string{"job", "member", "role"} {
			if !set[l] {
				t.Errorf("ServiceMonitor %s: endpoint %s sets no %s label", m.Name, e.Port, l)
			}
		}
	}
}

// checkPrometheusRule: the rendered rule holds exactly the alerts of
// deploy/prometheus/alerts.yml.
func checkPrometheusRule(t *testing.T, pr *monitoringv1.PrometheusRule) {
	t.Helper()
	var got []string
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Expr.String() == "" {
				t.Errorf("PrometheusRule %s: alert %s has no expression", pr.Name, r.Alert)
			}
			got = append(got, r.Alert)
		}
	}
	if want := alertNames(t, deployAlerts); !slices.Equal(got, want) {
		t.Errorf("PrometheusRule %s has the alerts %v, want those of %s: %v", pr.Name, got, deployAlerts, want)
	}
}

func smName(m *monitoringv1.ServiceMonitor) string   { return m.Name }
func ruleName(m *monitoringv1.PrometheusRule) string { return m.Name }
