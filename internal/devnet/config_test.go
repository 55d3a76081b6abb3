package devnet

import (
	"errors"
	"reflect"
	"testing"

	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/ethereum/go-ethereum/common"
)

func TestParseNodes(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want Nodes
		err  error
	}{
		{nil, Nodes{}, nil},
		{[]string{"validator,tx,public"}, Nodes{Default: Roles{Validators: 1, Tx: 1, Public: 1}}, nil},
		{[]string{"bootnode=2, validator=1,tx=0,public"}, Nodes{Default: Roles{Bootnodes: 2, Validators: 1, Public: 1}}, nil},
		{[]string{"signer"}, Nodes{Default: Roles{Validators: 1}}, nil},
		{[]string{"a:validator,public"}, Nodes{PerMember: map[string]Roles{"a": {Validators: 1, Public: 1}}}, nil},
		{[]string{"validator,public; b:validator=2,public"}, Nodes{Default: Roles{Validators: 1, Public: 1}, PerMember: map[string]Roles{"b": {Validators: 2, Public: 1}}}, nil},
		{[]string{"validator", "c:validator,tx,public"}, Nodes{Default: Roles{Validators: 1}, PerMember: map[string]Roles{"c": {Validators: 1, Tx: 1, Public: 1}}}, nil},

		{[]string{"miner"}, Nodes{}, ErrBadNodes},
		{[]string{"validator=x"}, Nodes{}, ErrBadNodes},
		{[]string{"validator=17"}, Nodes{}, ErrBadNodes},
		{[]string{"validator=-1"}, Nodes{}, ErrBadNodes},
		{[]string{"validator,validator"}, Nodes{}, ErrBadNodes},
		{[]string{"Bad Name:validator"}, Nodes{}, ErrBadNodes},
		{[]string{"a:"}, Nodes{}, ErrBadNodes},
	} {
		got, err := ParseNodes(tc.in)
		if !errors.Is(err, tc.err) {
			t.Errorf("ParseNodes(%q) error %v, want %v", tc.in, err, tc.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseNodes(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestNodesFor(t *testing.T) {
	n := Nodes{PerMember: map[string]Roles{"a": {Validators: 2, Public: 1}}}
	if got := n.For("b"); got != consortiuminit.DefaultRoles {
		t.Errorf("For(b) = %+v, want the default roles", got)
	}
	if got := n.For("a"); got != (Roles{Validators: 2, Public: 1}) {
		t.Errorf("For(a) = %+v", got)
	}
}

func TestValidate(t *testing.T) {
	abc := []string{"a", "b", "c"}
	for _, tc := range []struct {
		name    string
		cfg     Config
		members []string
		err     error
	}{
		{"defaults", Config{}, abc, nil},
		{"one member needs no public node", Config{Nodes: Nodes{Default: Roles{Validators: 1}}}, []string{"solo"}, nil},
		{"unknown member in --nodes", Config{Nodes: Nodes{PerMember: map[string]Roles{"d": {Validators: 1, Public: 1}}}}, abc, ErrUnknownMember},
		{"no validator", Config{Nodes: Nodes{Default: Roles{Tx: 1, Public: 1}}}, abc, ErrNoSigner},
		{"no public node", Config{Nodes: Nodes{PerMember: map[string]Roles{"b": {Validators: 1}}}}, abc, ErrNoPublic},
		{"base port too low", Config{BasePort: 80}, abc, ErrBadBasePort},
		{"base port too high", Config{BasePort: 65000}, abc, ErrBadBasePort},
		{"BFT: two validators", Config{Nodes: Nodes{Default: Roles{Validators: 2, Public: 1}}}, abc, ErrOneValidator},
		{"Clique: two validators", Config{Consensus: Clique, Nodes: Nodes{Default: Roles{Validators: 2, Public: 1}}}, abc, nil},
		{"BFT needs a fourth port range", Config{BasePort: 63800}, abc, ErrBadBasePort},
		{"Clique needs three port ranges", Config{Consensus: Clique, BasePort: 63800}, abc, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.cfg.withDefaults().withConsensus("")
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.validate(tc.members); !errors.Is(err, tc.err) {
				t.Errorf("validate = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestCheckMembers(t *testing.T) {
	for _, tc := range []struct {
		in  []string
		err error
	}{
		{[]string{"a", "b"}, nil},
		{[]string{"a", "a"}, consortiuminit.ErrDuplicateMember},
		{[]string{"a", ""}, consortiuminit.ErrBadMember},
		{[]string{"A"}, consortiuminit.ErrBadMember},
		{[]string{"admin"}, consortiuminit.ErrBadMember},
	} {
		if err := checkMembers(tc.in); !errors.Is(err, tc.err) {
			t.Errorf("checkMembers(%q) = %v, want %v", tc.in, err, tc.err)
		}
	}
}

func TestRoster(t *testing.T) {
	node := func(name string, role consortiuminit.Role) consortiuminit.Node {
		n := consortiuminit.Node{Name: name, Role: role, ID: name}
		if role == consortiuminit.RoleValidator {
			n.Signer = &common.Address{1}
		}
		return n
	}
	full := func(m string) consortiuminit.Member {
		return consortiuminit.Member{Name: m, Nodes: []consortiuminit.Node{
			node("bootnode-1", consortiuminit.RoleBootnode), node("validator-1", consortiuminit.RoleValidator),
			node("tx-1", consortiuminit.RoleTx), node("public-1", consortiuminit.RolePublic),
		}}
	}
	m := consortiuminit.Manifest{Members: []consortiuminit.Member{full("a"), full("b")}}
	added := []consortiuminit.Member{full("d")}

	all, run, err := roster(m, added, Nodes{PerMember: map[string]Roles{"b": {Validators: 1, Public: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 12 {
		t.Fatalf("all has %d nodes, want 12", len(all))
	}
	for i, s := range all {
		if s.Index != i {
			t.Errorf("%s has index %d, want %d: ports follow consortium.json's order", s.Label(), s.Index, i)
		}
	}
	var labels []string
	for _, s := range run {
		labels = append(labels, s.Label())
	}
	want := []string{"a/bootnode-1", "a/validator-1", "a/tx-1", "a/public-1", "b/validator-1", "b/public-1",
		"d/bootnode-1", "d/validator-1", "d/tx-1", "d/public-1"}
	if !reflect.DeepEqual(labels, want) {
		t.Errorf("run %v, want %v", labels, want)
	}
	if _, _, err := roster(m, nil, Nodes{Default: Roles{Validators: 1, Tx: 2, Public: 1}}); !errors.Is(err, ErrDirMismatch) {
		t.Errorf("asking for more nodes than the directory has: %v, want ErrDirMismatch", err)
	}
}

func TestMaxRoles(t *testing.T) {
	n := Nodes{Default: Roles{Validators: 1, Public: 1}, PerMember: map[string]Roles{"b": {Bootnodes: 2, Validators: 1, Tx: 1, Public: 1}}}
	if got := maxRoles([]string{"a", "b"}, n); got != (Roles{Bootnodes: 2, Validators: 1, Tx: 1, Public: 1}) {
		t.Errorf("maxRoles = %+v", got)
	}
}

func TestPorts(t *testing.T) {
	e := &env{basePort: 30400}
	p2p, http, auth := e.ports(nodeSpec{Index: 7})
	if p2p != 30407 || http != 30907 || auth != 31407 {
		t.Errorf("ports of node 7: %d %d %d", p2p, http, auth)
	}
}

func TestPairs(t *testing.T) {
	if pairOf("b/x", "a/y") != pairOf("a/y", "b/x") {
		t.Error("pairOf is not symmetric")
	}
	v := nodeSpec{Member: "a", Node: consortiuminit.Node{Role: consortiuminit.RoleValidator}}
	pa := nodeSpec{Member: "a", Node: consortiuminit.Node{Role: consortiuminit.RolePublic}}
	pb := nodeSpec{Member: "b", Node: consortiuminit.Node{Role: consortiuminit.RolePublic}}
	tb := nodeSpec{Member: "b", Node: consortiuminit.Node{Role: consortiuminit.RoleTx}}
	for _, tc := range []struct {
		x, y nodeSpec
		want bool
	}{{v, pa, true}, {pa, pb, true}, {v, pb, false}, {pa, tb, false}, {pb, tb, true}} {
		if got := intended(tc.x, tc.y); got != tc.want {
			t.Errorf("intended(%s %s, %s %s) = %v", tc.x.Member, tc.x.Role, tc.y.Member, tc.y.Role, got)
		}
	}
}
