package metricstest

import (
	"os"
	"regexp"
	"sort"
	"testing"
)

// The files that name every metric the components export. The consensus
// process runs in the agent (BFT chains) and serves its metrics there.
var sources = map[string]string{
	"registrar": "../httpapi/metrics.go",
	"agent":     "../agent/metrics.go",
	"bootnode":  "../../cmd/consortium/bootnode.go",
	"consensus": "../consensus/metrics.go",
}

var nameInCode = regexp.MustCompile(`"(consortium_[a-z0-9_]+)"`)

// TestDocumentedMetrics: the documentation lists exactly the metrics the
// code exports, each under its component's heading.
func TestDocumentedMetrics(t *testing.T) {
	doc := documented(t)
	inCode := map[string]string{}
	for component, path := range sources {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range nameInCode.FindAllStringSubmatch(string(b), -1) {
			inCode[m[1]] = component
		}
	}
	if len(inCode) < 20 {
		t.Fatalf("found only %d metric names in the code: has a source moved?", len(inCode))
	}
	var names []string
	for n := range inCode {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		switch section, ok := doc[n]; {
		case !ok:
			t.Errorf("%s (%s) is not documented in docs/dashboard.md", n, inCode[n])
		case section != inCode[n]:
			t.Errorf("%s is documented under %q, but the %s exports it", n, section, inCode[n])
		}
	}
	for n := range doc {
		if _, ok := inCode[n]; !ok {
			t.Errorf("docs/dashboard.md documents %s, which no component exports", n)
		}
	}
}
