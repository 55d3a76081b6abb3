package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/consortium/consortium/"

// clients are the packages that talk to the registrar over HTTP and must
// never link the server: they get the wire types from this package.
var clients = []string{
	"internal/agent",
	"internal/agent/agentonly",
	"internal/registrarclient",
	"internal/bootnode",
	"internal/bench/load",
}

// server are the registrar's own packages.
var server = []string{"internal/registry", "internal/httpapi"}

// A client that imports the server (even through another package) drags the
// registrar, its store drivers and their dependencies into the agent's
// binary, and lets wire types drift from what the client decodes.
func TestClientsImportNoServer(t *testing.T) {
	for _, c := range clients {
		deps := goListDeps(t, "../../"+c)
		for _, s := range server {
			if slices.Contains(deps, module+s) {
				t.Errorf("%s depends on %s (go list -deps %s | grep %s): a client must take the wire types from internal/api, not from the server", c, s, "./"+c, s)
			}
		}
	}
}

// goListDeps is the import paths of dir's package and all it depends on
// (not its tests).
func goListDeps(t *testing.T, dir string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}}", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", dir, err, out)
	}
	return strings.Fields(string(out))
}

// The wire contract is a leaf: it imports nothing from this repository, so
// any package may import it.
func TestAPIImportsNothingOfTheRepo(t *testing.T) {
	for _, d := range goListDeps(t, ".") {
		if strings.HasPrefix(d, module) && d != module+"internal/api" {
			t.Errorf("internal/api depends on %s; it must stay a leaf", d)
		}
	}
}

// Every error code is in docs/api.md's error reference, and every code the
// reference lists is one of ours.
func TestErrorCodesDocumented(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "api.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || !strings.HasPrefix(vs.Names[0].Name, "Code") || len(vs.Values) != 1 {
			return true
		}
		if lit, ok := vs.Values[0].(*ast.BasicLit); ok {
			v, _ := strconv.Unquote(lit.Value)
			codes = append(codes, v)
		}
		return true
	})
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	_, ref, ok := strings.Cut(string(doc), "\n## Error reference\n")
	if !ok {
		t.Fatal("docs/api.md has no \"## Error reference\" section")
	}
	ref, _, _ = strings.Cut(ref, "\n## ")
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| \\d{3} \\| `([a-z_]+)` \\|").FindAllStringSubmatch(ref, -1) {
		documented = append(documented, m[1])
	}
	if len(codes) < 10 || len(documented) < 10 {
		t.Fatalf("found %d codes in api.go and %d in the reference: the parsing is broken", len(codes), len(documented))
	}
	for _, c := range codes {
		if !slices.Contains(documented, c) {
			t.Errorf("code %q is not in docs/api.md's error reference", c)
		}
	}
	for _, c := range documented {
		if !slices.Contains(codes, c) {
			t.Errorf("docs/api.md's error reference lists %q, which api.go does not define", c)
		}
	}
}
