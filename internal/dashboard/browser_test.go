package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/consortium/consortium/internal/registry"
)

// The browser tests drive Debian's headless chromium against a registrar
// with the dashboard mounted. Without chromium they skip, unless
// CONSORTIUM_REQUIRE_CHROMIUM=1 makes that a failure. CONSORTIUM_CHROMIUM
// overrides the path. CONSORTIUM_UPDATE_SCREENSHOT=1 writes docs/dashboard.png.

func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CONSORTIUM_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CONSORTIUM_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("chromium is required (CONSORTIUM_REQUIRE_CHROMIUM=1) but %s is missing: apt-get install -y chromium", path)
		}
		t.Skipf("chromium not found at %s: apt-get install -y chromium to run the browser tests (CONSORTIUM_REQUIRE_CHROMIUM=1 makes this a failure)", path)
	}
	return path
}

// tab is one browser tab with what it sent over the network.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	requests []*network.Request
	console  []string
}

// newBrowser starts headless chromium (no sandbox: the tests run as root)
// and kills it, with every process it forked, when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1000),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			// Its own process group, so cleanup can kill every child;
			// and killed with us if the test binary dies.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		}),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			cancel()
			acancel()
			t.Fatalf("starting chromium: %v", err)
		}
	case <-time.After(60 * time.Second):
		cancel()
		acancel()
		t.Fatal("chromium did not start within 60 s")
	}
	pid := chromedp.FromContext(ctx).Browser.Process().Pid
	t.Cleanup(func() {
		cancel()
		acancel()
		syscall.Kill(-pid, syscall.SIGKILL) // stragglers of the group, if any
	})
	return ctx
}

// captureFetch tees every fetch() answer the page reads into
// window.__captured, so a test can check all the JSON the page received,
// the stream included.
const captureFetch = `
window.__captured = [];
(() => {
  const orig = window.fetch;
  window.fetch = async function (...args) {
    const res = await orig.apply(this, args);
    try {
      const reader = res.clone().body.getReader();
      const dec = new TextDecoder();
      (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          window.__captured.push(dec.decode(value, { stream: true }));
        }
      })().catch(() => {});
    } catch (e) {}
    return res;
  };
})();
`

// newTab opens a tab in browser with fetch capture and request logging.
func newTab(t *testing.T, browser context.Context) *tab {
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			tb.mu.Lock()
			tb.requests = append(tb.requests, e.Request)
			tb.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.console = append(tb.console, m.String())
			tb.mu.Unlock()
		}
	}()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: captureFetch}); err != nil {
		t.Fatal(err)
	}
	return tb
}

func (tb *tab) do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// waitJS polls a JavaScript predicate every 10 ms and returns how long it
// took to hold.
func (tb *tab) waitJS(timeout time.Duration, js string) time.Duration {
	tb.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(10*time.Millisecond))); err != nil {
		tb.mu.Lock()
		for _, m := range tb.console {
			tb.t.Logf("console: %s", m)
		}
		tb.mu.Unlock()
		if errors.Is(err, context.DeadlineExceeded) {
			tb.t.Fatalf("%s did not hold within %v", js, timeout)
		}
		tb.t.Fatalf("polling %s: %v", js, err)
	}
	return time.Since(start)
}

// signIn opens the page, types the credential and waits for the first render.
func (tb *tab) signIn(url, cred string) {
	tb.t.Helper()
	tb.do(20*time.Second,
		chromedp.Navigate(url+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("cred")),
		chromedp.SendKeys(chromedp.ID("cred"), cred),
		chromedp.Click(chromedp.ID("signin")),
	)
	tb.waitJS(10*time.Second, `window.__dash && window.__dash.ready`)
}

// seen is everything of the page a person or a script could read: the DOM
// (text and attributes) and every byte fetched.
func (tb *tab) seen() string {
	tb.t.Helper()
	return eval[string](tb, `document.documentElement.outerHTML + "\n" + document.body.innerText + "\n" + window.__captured.join("")`)
}

func (tb *tab) drawnEdges() [][2]string {
	tb.t.Helper()
	pairs := eval[[][2]string](tb, `Array.from(document.querySelectorAll('#topology line.edge')).map(l => [l.dataset.a, l.dataset.b])`)
	for i, p := range pairs {
		pairs[i] = edge(p[0], p[1])
	}
	sortEdges(pairs)
	return pairs
}

// checkRequests: the credential never in a URL, always in the header.
func (tb *tab) checkRequests(cred string) {
	tb.t.Helper()
	secret := cred[strings.IndexByte(cred, '.')+1:]
	tb.mu.Lock()
	defer tb.mu.Unlock()
	api := 0
	for _, r := range tb.requests {
		if strings.Contains(r.URL, secret) || strings.Contains(r.URLFragment, secret) {
			tb.t.Fatalf("credential in a URL: %s", r.URL)
		}
		if strings.Contains(r.URL, "/ui/api/") {
			api++
			if h, _ := r.Headers["Authorization"].(string); h != "Bearer "+cred {
				tb.t.Fatalf("%s sent without the credential header (%q)", r.URL, h)
			}
		}
	}
	if api == 0 {
		tb.t.Fatal("no API request seen")
	}
}

func TestBrowserDevnet(t *testing.T) {
	browser := newBrowser(t)
	r := newRegistrar(t, setup{ttl: time.Hour})
	d := buildDevnet(t, devnetMembers)
	d.register(t, r)

	admin := newTab(t, browser)
	admin.signIn(r.URL, r.admin)
	if who := eval[string](admin, `document.getElementById('who').textContent`); who != "administrator" {
		t.Errorf("signed in as %q", who)
	}

	// Every member and node, in the cards, the table and the graph.
	cards := eval[[]string](admin, `Array.from(document.querySelectorAll('#members .card')).map(c => c.dataset.member + ' ' + c.querySelector('.badge').textContent)`)
	if strings.Join(cards, ",") != "acme up,bank up,coop up" {
		t.Errorf("member cards %v", cards)
	}
	boxes := eval[[]string](admin, `Array.from(document.querySelectorAll('#topology g.group')).map(g => g.dataset.member)`)
	if strings.Join(boxes, ",") != "acme,bank,coop" {
		t.Errorf("member boxes %v", boxes)
	}
	for _, n := range d.nodes {
		row := eval[[]string](admin, fmt.Sprintf(`Array.from(document.querySelector('#nodes tr[data-id="%s"]')?.cells || []).map(c => c.textContent)`, n.id))
		ep := n.privateEndpoint()
		if n.role == "public" {
			ep += " · public " + n.pubIP + ":30303"
		}
		if len(row) != 9 || row[0] != n.member || row[1] != n.role || row[3] != ep {
			t.Errorf("row of %s %s: %q", n.member, n.role, row)
			continue
		}
		if n.role != "bootnode" && (row[5] != fmt.Sprintf("#%d", n.status.Head) || row[6] != fmt.Sprint(len(n.status.PeerIDs))) {
			t.Errorf("row of %s %s: head/peers %q %q", n.member, n.role, row[5], row[6])
		}
		if !strings.HasPrefix(row[7], "59m") {
			t.Errorf("lease of %s %s: %q", n.member, n.role, row[7])
		}
		in := eval[string](admin, fmt.Sprintf(`document.querySelector('#topology g.node[data-id="%s"]')?.getAttribute('class') || ''`, n.id))
		if in != "node role-"+n.role {
			t.Errorf("graph node of %s %s: class %q", n.member, n.role, in)
		}
	}
	// Exactly the actual peer connections.
	if got := admin.drawnEdges(); fmt.Sprint(got) != fmt.Sprint(d.edges) {
		t.Errorf("graph edges:\n got %v\nwant %v", got, d.edges)
	}
	if cross := eval[int](admin, `document.querySelectorAll('#topology line.edge.cross').length`); cross != 3 {
		t.Errorf("%d cross-member edges drawn, want 3", cross)
	}
	// Who sealed: each recent block names its sealer's member.
	blocks := eval[[]string](admin, `Array.from(document.querySelectorAll('#blocks li')).map(li => li.dataset.number + ' ' + li.children[1].textContent + ' ' + li.children[2].textContent)`)
	if len(blocks) != 3 {
		t.Fatalf("blocks %v", blocks)
	}
	for _, b := range blocks {
		f := strings.Fields(b)
		if d.signers[f[2]] != f[1] {
			t.Errorf("block %q: sealer belongs to %q", b, d.signers[f[2]])
		}
	}

	// A registration shows in the event list within a second.
	n := newNode(t, "acme", "tx", "10.1.0.9", "")
	n.status = d.newNodeStatus("acme")
	start := time.Now()
	r.register(d.creds["acme"], n)
	admin.waitJS(5*time.Second, fmt.Sprintf(`!!document.querySelector('#events li[data-kind="registered"][data-node="%s"]')`, n.id))
	eventAfter := time.Since(start)
	admin.waitJS(5*time.Second, fmt.Sprintf(`!!document.querySelector('#nodes tr[data-id="%s"]') && !!document.querySelector('#topology g.node[data-id="%s"]')`, n.id, n.id))
	t.Logf("registration → event in the page: %v", eventAfter)

	// An agent-reported client string is shown as text, never as markup.
	var coopTx *node
	for _, x := range d.nodes {
		if x.member == "coop" && x.role == "tx" {
			coopTx = x
		}
	}
	coopTx.status.Client = `<img src=x id=pwned onerror="document.title='pwned'">`
	r.renew(d.creds["coop"], coopTx)
	admin.waitJS(5*time.Second, fmt.Sprintf(`document.querySelector('#nodes tr[data-id="%s"]').cells[4].textContent.startsWith('<img')`, coopTx.id))
	if eval[bool](admin, `!!document.getElementById('pwned') || document.title === 'pwned'`) {
		t.Fatal("a client string was rendered as HTML")
	}
	coopTx.status.Client = "Geth/v1.17.10-stable-2a5ff2e4/linux-amd64/go1.26.8"
	r.renew(d.creds["coop"], coopTx)
	admin.waitJS(5*time.Second, fmt.Sprintf(`document.querySelector('#nodes tr[data-id="%s"]').cells[4].textContent.startsWith('Geth')`, coopTx.id))
	admin.checkRequests(r.admin)

	shot := screenshot(admin)
	out := filepath.Join(t.TempDir(), "dashboard.png")
	if os.Getenv("CONSORTIUM_UPDATE_SCREENSHOT") == "1" {
		out = filepath.Join("..", "..", "docs", "dashboard.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(shot))

	// A member's view: its own nodes with private endpoints, the others'
	// public nodes by public endpoint, and nothing else, in the DOM or in
	// any byte fetched.
	bank := newTab(t, browser)
	bank.signIn(r.URL, d.creds["bank"])
	seen := bank.seen()
	for _, bad := range d.forbidden("bank") {
		if strings.Contains(seen, bad) {
			t.Errorf("bank's page shows %q", bad)
		}
	}
	if strings.Contains(seen, n.id) || strings.Contains(seen, "10.1.0.9") {
		t.Error("bank's page shows acme's new tx node")
	}
	for _, x := range d.nodes {
		switch {
		case x.member == "bank" && !strings.Contains(seen, x.privateEndpoint()):
			t.Errorf("bank's own %s endpoint missing", x.role)
		case x.member != "bank" && x.role == "public" && !strings.Contains(seen, x.pubIP+":30303"):
			t.Errorf("%s's public endpoint missing", x.member)
		}
	}
	rows := eval[int](bank, `document.querySelectorAll('#nodes tbody tr').length`)
	if rows != 6 {
		t.Errorf("bank sees %d nodes, want its 4 and 2 public", rows)
	}
	// bank's graph: what its own nodes report, no more.
	var want [][2]string
	for _, e := range d.edges {
		a, b := d.byID(e[0]), d.byID(e[1])
		if a.member == "bank" || b.member == "bank" {
			want = append(want, e)
		}
	}
	sortEdges(want)
	if got := bank.drawnEdges(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("bank's graph edges:\n got %v\nwant %v", got, want)
	}
	bank.checkRequests(d.creds["bank"])

	// Signing out forgets the credential.
	bank.do(5*time.Second, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("cred")))
	if left := eval[int](bank, `sessionStorage.length`); left != 0 {
		t.Errorf("%d items left in sessionStorage after signing out", left)
	}
	if html := eval[string](bank, `document.getElementById('app').outerHTML`); strings.Contains(html, "203.0.113.") || strings.Contains(html, "10.2.0.") {
		t.Error("bank's view stays in the page after signing out")
	}
	// A bad credential gets the API's error, not the page.
	bank.do(5*time.Second, chromedp.SendKeys(chromedp.ID("cred"), "bank.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), chromedp.Click(chromedp.ID("signin")))
	bank.waitJS(5*time.Second, `document.getElementById('login-error').textContent.includes('credential')`)
}

func (d *devnet) byID(id string) *node {
	for _, n := range d.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// newNodeStatus is the status of a new node of member m: peered with the
// member's validator, tx and public nodes.
func (d *devnet) newNodeStatus(m string) (st registry.Status) {
	for _, x := range d.nodes {
		if x.member == m && x.role != "bootnode" {
			st.PeerIDs = append(st.PeerIDs, x.id)
		}
	}
	sort.Strings(st.PeerIDs)
	st.Peers = len(st.PeerIDs)
	st.Client = "Geth/v1.17.10-stable"
	st.Head = 121
	return st
}

func screenshot(tb *tab) []byte {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatal(err)
	}
	return b
}

// The consensus panel: hidden while no node reports a consensus view, then
// height, proposer, signers of the last commit and fault tolerance, with
// reported names shown as text.
func TestBrowserConsensus(t *testing.T) {
	browser := newBrowser(t)
	r := newRegistrar(t, setup{ttl: time.Hour})
	d := buildDevnet(t, devnetMembers)
	d.register(t, r)
	admin := newTab(t, browser)
	admin.signIn(r.URL, r.admin)
	if !eval[bool](admin, `document.getElementById('chain-panel').hidden`) {
		t.Error("consensus panel shown with no consensus report")
	}
	var val *node
	for _, x := range d.nodes {
		if x.member == "acme" && x.role == "validator" {
			val = x
		}
	}
	addr := func(c byte) string { return strings.Repeat(string(c), 40) }
	val.status.Consensus = &registry.ConsensusStatus{
		Height: 77, Round: 2, Proposer: addr('b'), Validator: addr('a'), BlockMillis: 1040,
		Validators: []registry.ValidatorVote{
			{Address: addr('a'), Name: "acme", Power: 1, Signed: true},
			{Address: addr('b'), Name: "bank", Power: 1, Signed: true},
			{Address: addr('c'), Name: `<b id=pwned>coop</b>`, Power: 1, Signed: false},
			{Address: addr('d'), Name: "dair", Power: 1, Signed: true},
		},
	}
	r.renew(d.creds["acme"], val)
	admin.waitJS(5*time.Second, `!document.getElementById('chain-panel').hidden`)
	facts := eval[string](admin, `document.querySelector('#chain .facts').textContent`)
	for _, want := range []string{"height77", "round2", "proposerbank", "time per block1.04 s", "signed last commit3 of 4", "tolerates1 validator lost"} {
		if !strings.Contains(facts, want) {
			t.Errorf("consensus facts %q lack %q", facts, want)
		}
	}
	missing := eval[[]string](admin, `Array.from(document.querySelectorAll('#chain .sig.missing')).map(s => s.textContent)`)
	if len(missing) != 1 || !strings.HasPrefix(missing[0], "<b id=pwned>coop</b>") {
		t.Errorf("missing signers %q", missing)
	}
	if eval[bool](admin, `!!document.getElementById('pwned')`) {
		t.Fatal("a validator name was rendered as HTML")
	}
}

// Every link of the topology is visible: no line passes through a node it
// does not join (the members stand in a circle with their public nodes
// facing its centre; in a row, the a–c link hid behind a–b–c).
func TestBrowserTopologyLinksVisible(t *testing.T) {
	browser := newBrowser(t)
	for _, members := range [][]string{devnetMembers, {"acme", "bank", "coop", "dair"}} {
		t.Run(strings.Join(members, ","), func(t *testing.T) {
			r := newRegistrar(t, setup{ttl: time.Hour})
			d := buildDevnet(t, members)
			d.register(t, r)
			tab := newTab(t, browser)
			tab.signIn(r.URL, r.admin)
			if got := tab.drawnEdges(); fmt.Sprint(got) != fmt.Sprint(d.edges) {
				t.Fatalf("graph edges:\n got %v\nwant %v", got, d.edges)
			}
			k := len(members)
			if cross := eval[int](tab, `document.querySelectorAll('#topology line.edge.cross').length`); cross != k*(k-1)/2 {
				t.Errorf("%d cross-member edges drawn, want %d", cross, k*(k-1)/2)
			}
			// The distance from each node's centre to each line it is not
			// an end of; a node's circle has radius 12.
			hidden := eval[[]string](tab, `(() => {
				const nodes = Array.from(document.querySelectorAll('#topology g.node')).map((g) => {
					const c = g.querySelector('circle');
					return { id: g.dataset.id, x: +c.getAttribute('cx'), y: +c.getAttribute('cy') };
				});
				const out = [];
				for (const l of document.querySelectorAll('#topology line.edge')) {
					const x1 = +l.getAttribute('x1'), y1 = +l.getAttribute('y1'), x2 = +l.getAttribute('x2'), y2 = +l.getAttribute('y2');
					const dx = x2 - x1, dy = y2 - y1, len2 = dx * dx + dy * dy;
					for (const n of nodes) {
						if (n.id === l.dataset.a || n.id === l.dataset.b) continue;
						const u = Math.max(0, Math.min(1, ((n.x - x1) * dx + (n.y - y1) * dy) / len2));
						const d = Math.hypot(x1 + u * dx - n.x, y1 + u * dy - n.y);
						if (d < 13) out.push(l.dataset.a.slice(0, 6) + '-' + l.dataset.b.slice(0, 6) + ' through ' + n.id.slice(0, 6) + ' (' + d.toFixed(1) + ')');
					}
				}
				return out;
			})()`)
			if len(hidden) > 0 {
				t.Errorf("%d links pass through other nodes: %v", len(hidden), hidden)
			}
		})
	}
}
