package reconcile

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// names are the test nodes, and keys are ordered so that sorting by node ID
// is sorting by name: the wanted order in the tables reads alphabetically.
var names = []string{"a", "b", "c", "d", "e", "self"}

var keyOf, nameOf = testKeys()

func testKeys() (map[string]*ecdsa.PrivateKey, map[enode.ID]string) {
	var keys []*ecdsa.PrivateKey
	for i := range names {
		seed := sha256.Sum256([]byte(fmt.Sprintf("reconcile-test-%d", i)))
		k, err := crypto.ToECDSA(seed[:])
		if err != nil {
			panic(err)
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y *ecdsa.PrivateKey) int {
		a, b := enode.PubkeyToIDV4(&x.PublicKey), enode.PubkeyToIDV4(&y.PublicKey)
		return bytes.Compare(a[:], b[:])
	})
	keyOf, nameOf := map[string]*ecdsa.PrivateKey{}, map[enode.ID]string{}
	for i, name := range names {
		keyOf[name] = keys[i]
		nameOf[enode.PubkeyToIDV4(&keys[i].PublicKey)] = name
	}
	return keyOf, nameOf
}

func id(name string) enode.ID { return enode.PubkeyToIDV4(&keyOf[name].PublicKey) }

// at is a node at "ip:port" (TCP and UDP) or "ip:tcp:udp".
func at(name, endpoint string) *enode.Node {
	parts := strings.Split(endpoint, ":")
	var tcp, udp int
	fmt.Sscan(parts[1], &tcp)
	udp = tcp
	if len(parts) == 3 {
		fmt.Sscan(parts[2], &udp)
	}
	return enode.NewV4(&keyOf[name].PublicKey, net.ParseIP(parts[0]), tcp, udp)
}

// std is a node at its usual address.
func std(name string) *enode.Node {
	return at(name, fmt.Sprintf("10.0.0.%d:30303", 1+slices.Index(names, name)))
}

// connected is a connected peer; inbound peers show an ephemeral port.
func connected(name string, trusted bool) Peer {
	return Peer{Node: at(name, "10.9.9.9:51234:0"), Trusted: trusted}
}

func nodes(names ...string) []*enode.Node {
	var out []*enode.Node
	for _, n := range names {
		out = append(out, std(n))
	}
	return out
}

// render writes an action as "kind name@ip:tcp reason".
func render(a Action) string {
	s := fmt.Sprintf("%s %s@%s:%d", a.Kind, nameOf[a.Node.ID()], a.Node.IP(), a.Node.TCP())
	if a.Node.UDP() != a.Node.TCP() {
		s += fmt.Sprintf("/%d", a.Node.UDP())
	}
	return s + " " + string(a.Reason)
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name     string
		desired  []*enode.Node
		previous []*enode.Node
		actual   []Peer
		allowed  []string
		want     []string
	}{
		{
			name: "nothing at all",
		},
		{
			name:    "new desired peer is made static and trusted",
			desired: nodes("a"),
			want: []string{
				"add-peer a@10.0.0.1:30303 new",
				"add-trusted a@10.0.0.1:30303 new",
			},
		},
		{
			name:    "new desired peer that already dialled in is still made static and trusted",
			desired: nodes("a"),
			actual:  []Peer{connected("a", true)},
			want: []string{
				"add-peer a@10.0.0.1:30303 new",
				"add-trusted a@10.0.0.1:30303 new",
			},
		},
		{
			name:     "applied, connected and trusted: nothing to do",
			desired:  nodes("a", "b"),
			previous: nodes("a", "b"),
			actual:   []Peer{connected("a", true), connected("b", true)},
		},
		{
			name:     "applied but not connected is re-asserted (the client may have restarted)",
			desired:  nodes("a", "b"),
			previous: nodes("a", "b"),
			actual:   []Peer{connected("b", true)},
			want: []string{
				"add-peer a@10.0.0.1:30303 reassert",
				"add-trusted a@10.0.0.1:30303 reassert",
			},
		},
		{
			name:     "applied, connected without the trusted flag: the client forgot it",
			desired:  nodes("a"),
			previous: nodes("a"),
			actual:   []Peer{connected("a", false)},
			want: []string{
				"add-peer a@10.0.0.1:30303 reassert",
				"add-trusted a@10.0.0.1:30303 reassert",
			},
		},
		{
			name:     "departed and connected: untrusted, then removed (which disconnects)",
			desired:  nodes("a"),
			previous: nodes("a", "b"),
			actual:   []Peer{connected("a", true), connected("b", true)},
			want: []string{
				"remove-trusted b@10.0.0.2:30303 departed",
				"remove-peer b@10.0.0.2:30303 departed",
			},
		},
		{
			name:     "departed and not connected: still forgotten, or the client keeps dialling it",
			desired:  nodes("a"),
			previous: nodes("a", "b"),
			actual:   []Peer{connected("a", true)},
			want: []string{
				"remove-trusted b@10.0.0.2:30303 departed",
				"remove-peer b@10.0.0.2:30303 departed",
			},
		},
		{
			name:     "departed even when allowed: removing a static peer disconnects it",
			previous: nodes("b"),
			actual:   []Peer{connected("b", true)},
			allowed:  []string{"b"},
			want: []string{
				"remove-trusted b@10.0.0.2:30303 departed",
				"remove-peer b@10.0.0.2:30303 departed",
			},
		},
		{
			name:     "connected stranger is disconnected",
			desired:  nodes("a"),
			previous: nodes("a"),
			actual:   []Peer{connected("a", true), connected("c", false)},
			want: []string{
				"disconnect c@10.9.9.9:51234/0 not-allowed",
			},
		},
		{
			name:     "trusted stranger loses the flag before it is disconnected",
			desired:  nodes("a"),
			previous: nodes("a"),
			actual:   []Peer{connected("a", true), connected("c", true)},
			want: []string{
				"remove-trusted c@10.9.9.9:51234/0 not-allowed",
				"disconnect c@10.9.9.9:51234/0 not-allowed",
			},
		},
		{
			name:     "allowed but not desired peer stays",
			desired:  nodes("a"),
			previous: nodes("a"),
			actual:   []Peer{connected("a", true), connected("c", false)},
			allowed:  []string{"c"},
		},
		{
			name:     "moved peer: old endpoint removed before the new one is added",
			desired:  []*enode.Node{at("a", "10.0.0.99:30303")},
			previous: nodes("a"),
			actual:   []Peer{connected("a", true)},
			want: []string{
				"remove-peer a@10.0.0.1:30303 moved",
				"add-peer a@10.0.0.99:30303 moved",
				"add-trusted a@10.0.0.99:30303 moved",
			},
		},
		{
			name:     "a new discovery port is a move too",
			desired:  []*enode.Node{at("a", "10.0.0.1:30303:30399")},
			previous: nodes("a"),
			actual:   []Peer{connected("a", true)},
			want: []string{
				"remove-peer a@10.0.0.1:30303 moved",
				"add-peer a@10.0.0.1:30303/30399 moved",
				"add-trusted a@10.0.0.1:30303/30399 moved",
			},
		},
		{
			name:     "the node itself is never its own peer",
			desired:  nodes("self", "a"),
			previous: nodes("self", "a"),
			actual:   []Peer{connected("a", true)},
		},
		{
			name:    "duplicates of one record are harmless",
			desired: nodes("a", "a"),
			want: []string{
				"add-peer a@10.0.0.1:30303 new",
				"add-trusted a@10.0.0.1:30303 new",
			},
		},
		{
			name: "removals first, then additions, each by node ID",
			desired: []*enode.Node{
				std("e"), std("a"), at("c", "10.0.0.33:30303"),
			},
			previous: nodes("d", "c", "b"),
			actual:   []Peer{connected("c", true), connected("b", true), connected("e", false)},
			want: []string{
				"remove-trusted b@10.0.0.2:30303 departed",
				"remove-peer b@10.0.0.2:30303 departed",
				"remove-peer c@10.0.0.3:30303 moved",
				"remove-trusted d@10.0.0.4:30303 departed",
				"remove-peer d@10.0.0.4:30303 departed",
				"add-peer a@10.0.0.1:30303 new",
				"add-trusted a@10.0.0.1:30303 new",
				"add-peer c@10.0.0.33:30303 moved",
				"add-trusted c@10.0.0.33:30303 moved",
				"add-peer e@10.0.0.5:30303 new",
				"add-trusted e@10.0.0.5:30303 new",
			},
		},
		{
			// Why the agent must not pass an empty set from a
			// registrar outage: Plan takes it at its word.
			name:     "empty desired set removes everything",
			previous: nodes("a", "b"),
			actual:   []Peer{connected("a", true), connected("b", true)},
			want: []string{
				"remove-trusted a@10.0.0.1:30303 departed",
				"remove-peer a@10.0.0.1:30303 departed",
				"remove-trusted b@10.0.0.2:30303 departed",
				"remove-peer b@10.0.0.2:30303 departed",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Self: id("self"), Desired: tt.desired, Previous: tt.previous, Actual: tt.actual}
			for _, name := range tt.allowed {
				in.Allowed = append(in.Allowed, id(name))
			}
			plan, err := Plan(in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range plan {
				got = append(got, render(a))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestPlanDeterministic shuffles the input lists: Plan iterates maps, and
// its output must not depend on that.
func TestPlanDeterministic(t *testing.T) {
	in := Input{
		Self:     id("self"),
		Desired:  []*enode.Node{std("a"), std("b"), at("c", "10.0.0.33:1"), std("self")},
		Previous: nodes("b", "c", "d"),
		Actual:   []Peer{connected("a", false), connected("d", true), connected("e", true)},
	}
	first, err := Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) < 8 {
		t.Fatalf("plan too small to show an order: %v", first)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		r.Shuffle(len(in.Desired), func(i, j int) { in.Desired[i], in.Desired[j] = in.Desired[j], in.Desired[i] })
		r.Shuffle(len(in.Previous), func(i, j int) { in.Previous[i], in.Previous[j] = in.Previous[j], in.Previous[i] })
		r.Shuffle(len(in.Actual), func(i, j int) { in.Actual[i], in.Actual[j] = in.Actual[j], in.Actual[i] })
		again, _ := Plan(in)
		if !slices.EqualFunc(first, again, func(x, y Action) bool { return x.String() == y.String() }) {
			t.Fatalf("plan changed with input order:\n%v\n%v", first, again)
		}
	}
}

func TestPlanInputErrors(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		err  error
		list string
	}{
		{"nil desired", Input{Desired: []*enode.Node{std("a"), nil}}, ErrNilNode, "desired"},
		{"nil previous", Input{Previous: []*enode.Node{nil}}, ErrNilNode, "previous"},
		{"nil actual", Input{Actual: []Peer{{}}}, ErrNilNode, "actual"},
		{"one ID, two endpoints", Input{Desired: []*enode.Node{std("a"), at("a", "10.1.1.1:1")}}, ErrConflict, "desired"},
		{"one ID, two endpoints before", Input{Previous: []*enode.Node{std("a"), at("a", "10.1.1.1:1")}}, ErrConflict, "previous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Plan(tt.in)
			if !errors.Is(err, tt.err) || plan != nil {
				t.Fatalf("Plan = %v, %v; want error %v", plan, err, tt.err)
			}
			var ie *InputError
			if !errors.As(err, &ie) || ie.List != tt.list {
				t.Errorf("error %v does not name list %q", err, tt.list)
			}
		})
	}
}

func TestActionString(t *testing.T) {
	a := Action{Kind: AddPeer, Node: std("a"), Reason: ReasonNew}
	if got := a.String(); !strings.HasPrefix(got, "add-peer enode://") || !strings.HasSuffix(got, "@10.0.0.1:30303 (new)") {
		t.Errorf("String = %q", got)
	}
	for k := RemoveTrusted; k <= AddTrusted; k++ {
		if strings.HasPrefix(k.String(), "kind(") {
			t.Errorf("Kind %d has no name", k)
		}
	}
}

// TestPlanOrderLarge checks the order on a plan big enough that the sort
// is not an insertion sort: by phase, then node ID, then kind.
func TestPlanOrderLarge(t *testing.T) {
	var in Input
	for i := range 60 {
		key, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		n := enode.NewV4(&key.PublicKey, net.IP{10, 0, 1, byte(i)}, 30303, 30303)
		switch i % 3 {
		case 0:
			in.Desired = append(in.Desired, n)
		case 1:
			in.Previous = append(in.Previous, n)
		case 2:
			in.Actual = append(in.Actual, Peer{Node: n, Trusted: true})
		}
	}
	plan, err := Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 120 {
		t.Fatalf("%d actions, want 120", len(plan))
	}
	for i := 1; i < len(plan); i++ {
		a, b := plan[i-1], plan[i]
		ida, idb := a.Node.ID(), b.Node.ID()
		ok := a.Kind.removal() && !b.Kind.removal() ||
			a.Kind.removal() == b.Kind.removal() && (bytes.Compare(ida[:], idb[:]) < 0 || ida == idb && a.Kind < b.Kind)
		if !ok {
			t.Fatalf("action %d %v before %d %v", i-1, a, i, b)
		}
	}
}
