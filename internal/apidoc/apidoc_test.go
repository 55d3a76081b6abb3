package apidoc

// The examples of docs/api.md are run by TestAPIDocExamples. The conventions
// a doc example follows, strictly:
//
//  1. An example is a fenced block opened by a line that is exactly "```sh".
//     Every such block is run, in document order, with `bash -euo pipefail -c`,
//     so any failing command, including a failing stage of a pipe, fails the
//     test. Fences of other shell languages (bash, shell, console, zsh) that
//     mention curl are refused, so no curl example escapes the test.
//  2. The next non-blank line after an example's closing fence must open a
//     "```text" block: the example's expected standard output. Output and
//     expectation must have the same number of lines, and each output line
//     must match its expected line as a whole. In an expected line:
//       - $REG, $ID, $ENR, $PUB_ID and $PUB_ENR stand for those variables'
//         values (below);
//       - <lower case words>, such as <time> or <key>, matches one or more
//         characters: values that change from run to run;
//       - <ACME> matches one or more characters and captures them as the
//         variable ACME for every later example (the example that creates
//         member acme prints its credential this way);
//       - everything else is literal.
//     Examples show the HTTP status they expect in their output (curl -w
//     '%{http_code}\n', or --fail-with-body which fails the example on an
//     error status).
//     An example that exits non-zero or does not match fails the test, and
//     the run stops there, since later examples build on earlier ones.
//  3. An example sees only these variables: REG (the registrar's base URL),
//     ADMIN (the administrator's credential), ACME (member acme's credential,
//     once captured), ENR and ID (a signed record of a validator node and its
//     node ID), PUB_ENR and PUB_ID (the same for a second node, registered
//     as acme's public node). Node keys are generated afresh each run, drawn
//     so that the validator's ID and enode URL sort before the public
//     node's: lists in the examples then have one order.
//  4. The registrar is the real one, built in-process from the packages
//     cmd/consortium uses, configured as `consortium registrar --ttl 10s
//     --rate-limit 20` would be; docs/api.md must say so in those words (see
//     docFlags), since examples about leases and rate limits depend on it.
//     Without bash, jq, or curl 7.84 or newer, the test is skipped, saying why.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrartest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
)

const (
	docPath = "../../docs/api.md"
	// The registrar's settings for the examples, and how the doc names them.
	docTTL       = 10 * time.Second
	docRateLimit = 20
	docFlags     = "consortium registrar --ttl 10s --rate-limit 20"
	// blockTimeout bounds one example.
	blockTimeout = 90 * time.Second
)

// capturable are the variables an expectation may capture with <NAME>.
var capturable = map[string]bool{"ACME": true}

// substituted are the variables written as $NAME in expectations.
var substituted = []string{"PUB_ENR", "PUB_ID", "REG", "ENR", "ID"} // longest first: $PUB_ID before $ID

type example struct {
	line   int // line of the opening fence, 1-based
	script string
	want   []string
	wantAt int // line of the expectation's opening fence
}

var shellFence = regexp.MustCompile("^```(bash|shell|console|zsh|shell-session)\\s*$")

// parseDoc extracts the examples and their expectations.
func parseDoc(doc string) ([]example, error) {
	lines := strings.Split(doc, "\n")
	var out []example
	block := func(i int) (body []string, end int, err error) {
		for j := i + 1; j < len(lines); j++ {
			if strings.TrimSpace(lines[j]) == "```" {
				return lines[i+1 : j], j, nil
			}
		}
		return nil, 0, fmt.Errorf("line %d: fence never closed", i+1)
	}
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], " \t\r")
		if shellFence.MatchString(l) {
			body, end, err := block(i)
			if err != nil {
				return nil, err
			}
			if strings.Contains(strings.Join(body, "\n"), "curl") {
				return nil, fmt.Errorf("line %d: a curl example must be fenced as ```sh so that it is run", i+1)
			}
			i = end
			continue
		}
		if l != "```sh" {
			if strings.HasPrefix(l, "```") && l != "```" {
				// Any other fenced block (json, text, toml...): skip it whole,
				// so its content is never taken for a fence.
				_, end, err := block(i)
				if err != nil {
					return nil, err
				}
				i = end
			}
			continue
		}
		body, end, err := block(i)
		if err != nil {
			return nil, err
		}
		ex := example{line: i + 1, script: strings.Join(body, "\n") + "\n"}
		j := end + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j >= len(lines) || strings.TrimRight(lines[j], " \t\r") != "```text" {
			return nil, fmt.Errorf("line %d: the ```sh example must be followed by a ```text block with its expected output", i+1)
		}
		want, wend, err := block(j)
		if err != nil {
			return nil, err
		}
		ex.want, ex.wantAt = want, j+1
		out = append(out, ex)
		i = wend
	}
	return out, nil
}

var placeholder = regexp.MustCompile(`<([a-z][a-z0-9 _-]*|[A-Z][A-Z0-9_]*)>`)

// lineRE turns one expected line into an anchored regular expression. It
// also returns, per group, the variable the group captures ("" for none).
func lineRE(want string, vars map[string]string) (*regexp.Regexp, []string, error) {
	var b strings.Builder
	var names []string
	b.WriteString("^")
	literal := func(s string) {
		for _, name := range substituted {
			s = strings.ReplaceAll(s, "$"+name, "\x00"+name+"\x00")
		}
		for k, part := range strings.Split(s, "\x00") {
			if k%2 == 1 {
				b.WriteString(regexp.QuoteMeta(vars[part]))
			} else {
				b.WriteString(regexp.QuoteMeta(part))
			}
		}
	}
	rest := want
	for {
		loc := placeholder.FindStringSubmatchIndex(rest)
		if loc == nil {
			literal(rest)
			break
		}
		literal(rest[:loc[0]])
		name := rest[loc[2]:loc[3]]
		if name[0] >= 'A' && name[0] <= 'Z' {
			if !capturable[name] {
				return nil, nil, fmt.Errorf("<%s> is not a variable an example may capture", name)
			}
		} else {
			name = ""
		}
		names = append(names, name)
		b.WriteString("(.+?)")
		rest = rest[loc[1]:]
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	return re, names, err
}

// match compares output with the expectation and returns the captures.
func match(out string, want []string, vars map[string]string) (map[string]string, error) {
	got := strings.Split(strings.TrimSuffix(strings.ReplaceAll(out, "\r\n", "\n"), "\n"), "\n")
	if out == "" {
		got = nil
	}
	if len(got) != len(want) {
		return nil, fmt.Errorf("got %d output lines, the doc expects %d", len(got), len(want))
	}
	captured := map[string]string{}
	for i := range want {
		re, names, err := lineRE(want[i], vars)
		if err != nil {
			return nil, fmt.Errorf("expected line %d: %v", i+1, err)
		}
		m := re.FindStringSubmatch(got[i])
		if m == nil {
			return nil, fmt.Errorf("output line %d does not match\n  got:  %s\n  want: %s", i+1, got[i], want[i])
		}
		for k, name := range names {
			if name != "" {
				captured[name] = m[k+1]
			}
		}
	}
	return captured, nil
}

func TestParseDocConventions(t *testing.T) {
	doc := "x\n```sh\necho hi\n```\n\n```text\nhi <word>\n```\n```json\n```sh\n```\n"
	exs, err := parseDoc(doc)
	if err != nil || len(exs) != 1 || exs[0].script != "echo hi\n" || len(exs[0].want) != 1 {
		t.Fatalf("parseDoc = %+v, %v", exs, err)
	}
	for _, bad := range []string{
		"```sh\necho\n```\nno expectation\n",
		"```sh\necho\n```\n",
		"```bash\ncurl x\n```\n",
		"```sh\necho\n",
	} {
		if _, err := parseDoc(bad); err == nil {
			t.Errorf("parseDoc(%q) accepted", bad)
		}
	}
	vars := map[string]string{"ID": "ab", "PUB_ID": "cd", "REG": "http://x"}
	for _, tc := range []struct {
		out  string
		want []string
		ok   bool
	}{
		{"200\n", []string{"200"}, true},
		{"201\n", []string{"200"}, false},
		{"200\n", []string{"200", ""}, false},
		{"id ab cd\n", []string{"id $ID $PUB_ID"}, true},
		{"id cd\n", []string{"id $ID"}, false},
		{`{"t":"2026"}`, []string{`{"t":"<time>"}`}, true},
		{`{"t":""}`, []string{`{"t":"<time>"}`}, false},
		{"a.b\n", []string{"a<x>b"}, true}, // "." is literal
		{"axb\n", []string{"a.b"}, false},
	} {
		_, err := match(tc.out, tc.want, vars)
		if (err == nil) != tc.ok {
			t.Errorf("match(%q, %q): err = %v, want ok=%v", tc.out, tc.want, err, tc.ok)
		}
	}
	c, err := match(`{"credential":"acme.xyz","n":1}`, []string{`{"credential":"<ACME>","n":<n>}`}, vars)
	if err != nil || c["ACME"] != "acme.xyz" {
		t.Errorf("capture = %v, %v", c, err)
	}
	if _, err := match("x\n", []string{"<SECRET>"}, vars); err == nil {
		t.Error("capturing an unknown variable was accepted")
	}
}

// skipOrFail skips where the examples' tools are missing, unless
// CONSORTIUM_REQUIRE_TOOLS=1 (set by .ci/run) makes that a failure: in CI a
// silent skip would leave docs/api.md unchecked.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CONSORTIUM_REQUIRE_TOOLS") == "1" {
		t.Fatalf("CONSORTIUM_REQUIRE_TOOLS=1: "+format, args...)
	}
	t.Skipf(format, args...)
}

func TestAPIDocExamples(t *testing.T) {
	for _, tool := range []string{"curl", "jq", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "the docs/api.md examples need %s, which is not installed: %v", tool, err)
		}
	}
	if err := curlNewEnough(); err != nil {
		skipOrFail(t, "the docs/api.md examples need curl 7.84 or newer (--json, -w '%%header{}'): %v", err)
	}
	raw, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	if !strings.Contains(doc, docFlags) {
		t.Fatalf("docs/api.md must state that its examples run against `%s` (the settings this test uses)", docFlags)
	}
	examples, err := parseDoc(doc)
	if err != nil {
		t.Fatalf("docs/api.md: %v", err)
	}
	if len(examples) == 0 {
		t.Fatal("docs/api.md has no ```sh examples")
	}

	base, admin, logs := startRegistrar(t)
	vars := map[string]string{"REG": base, "ADMIN": admin}
	vars["ENR"], vars["ID"], vars["PUB_ENR"], vars["PUB_ID"] = nodeRecords(t)

	home := t.TempDir()
	for _, ex := range examples {
		ok := t.Run(fmt.Sprintf("line%d", ex.line), func(t *testing.T) {
			out, stderr, err := runExample(t, ex.script, vars, home)
			if err != nil {
				t.Fatalf("docs/api.md:%d: the example failed: %v\n--- script\n%s--- stdout\n%s--- stderr\n%s", ex.line, err, ex.script, out, stderr)
			}
			captured, err := match(out, ex.want, vars)
			if err != nil {
				t.Fatalf("docs/api.md:%d: the output does not match the expectation at line %d: %v\n--- script\n%s--- stdout\n%s--- stderr\n%s", ex.line, ex.wantAt, err, ex.script, out, stderr)
			}
			for k, v := range captured {
				vars[k] = v
			}
		})
		if !ok {
			t.Logf("registrar log:\n%s", logs.String())
			break // later examples depend on this one
		}
	}
	if _, ok := vars["ACME"]; !ok && !t.Failed() {
		t.Error("no example captured <ACME>: the doc must create member acme and show its credential")
	}
}

// curlNewEnough checks that curl is at least 7.84.
func curlNewEnough() error {
	out, err := exec.Command("curl", "--version").Output()
	if err != nil {
		return err
	}
	var major, minor int
	if _, err := fmt.Sscanf(string(out), "curl %d.%d", &major, &minor); err != nil {
		return fmt.Errorf("cannot read the version in %q", strings.SplitN(string(out), "\n", 2)[0])
	}
	if major < 7 || (major == 7 && minor < 84) {
		return fmt.Errorf("found curl %d.%d", major, minor)
	}
	return nil
}

// runExample runs one script with only the documented variables (and the
// basics a shell needs) in its environment.
func runExample(t *testing.T, script string, vars map[string]string, home string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), blockTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	// No proxy, no ~/.curlrc, a fixed locale: the same output everywhere.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "CURL_HOME=" + home, "LC_ALL=C", "TZ=UTC"}
	for _, k := range []string{"REG", "ADMIN", "ACME", "ENR", "ID", "PUB_ENR", "PUB_ID"} {
		if v, ok := vars[k]; ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v", blockTimeout)
	}
	return stdout.String(), stderr.String(), err
}

// startRegistrar runs the registrar as cmd/consortium does (SQLite store,
// registry with its reaper and write-behind, HTTP API), on 127.0.0.1, with
// its log kept for a failing example.
func startRegistrar(t *testing.T) (baseURL, admin string, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := registrartest.New(t, registrartest.Options{
		Registry: registry.Config{TTL: docTTL},
		API:      httpapi.Config{RateLimit: docRateLimit},
		Logger:   log,
	})
	return r.URL, r.Admin, logs
}

// nodeRecords makes the two nodes of the examples: a validator at a private
// address and a public node at a documentation address (RFC 5737), each
// record signed by its node's own key. The keys are drawn until the
// validator sorts first by node ID and by enode URL.
func nodeRecords(t *testing.T) (enrText, id, pubENR, pubID string) {
	t.Helper()
	for range 1000 {
		v := signed(t, mustKey(t), "10.0.1.10")
		p := signed(t, mustKey(t), "203.0.113.7")
		if v.ID().String() < p.ID().String() && v.URLv4() < p.URLv4() {
			return v.String(), v.ID().String(), p.String(), p.ID().String()
		}
	}
	t.Fatal("could not draw two keys in the wanted order")
	return
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signed(t *testing.T, key *ecdsa.PrivateKey, ip string) *enode.Node {
	var r enr.Record
	r.SetSeq(1)
	r.Set(enr.IP(net.ParseIP(ip)))
	r.Set(enr.TCP(30303))
	r.Set(enr.UDP(30303))
	if err := enode.SignV4(&r, key); err != nil {
		t.Fatal(err)
	}
	n, err := enode.New(enode.ValidSchemes, &r)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
