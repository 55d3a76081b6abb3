package metricstest

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

var metricInExpr = regexp.MustCompile(`consortium_[a-z0-9_]+`)

// TestGrafanaDashboard: deploy/grafana/consortium.json is valid JSON, its
// queries use only documented metrics, and every documented metric has a
// panel.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/consortium.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("consortium.json: %v", err)
	}
	doc := documented(t)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range metricInExpr.FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if _, ok := doc[m]; !ok {
						m = strings.TrimSuffix(m, suffix)
					}
				}
				if _, ok := doc[m]; !ok {
					t.Errorf("panel %q queries %s, which docs/dashboard.md does not document", p.Title, m)
				}
				used[m] = true
			}
		}
	}
	for m := range doc {
		if !used[m] {
			t.Errorf("%s has no panel in deploy/grafana/consortium.json", m)
		}
	}
}
