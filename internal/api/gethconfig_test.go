package api

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

const (
	enodeA = "enode://aa@10.0.0.1:30303"
	enodeB = "enode://bb@10.0.0.2:30303?discport=30301"
)

func TestGethConfigRender(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   GethConfig
		want string
	}{
		{"empty: every list written, discv5 included", GethConfig{},
			"[Node.P2P]\nStaticNodes = []\nTrustedNodes = []\nBootstrapNodes = []\nBootstrapNodesV5 = []\n"},
		{"peer config: static peers trusted, bootnodes for both discovery versions",
			PeerConfig("127.0.0.1:30303", []string{enodeA, enodeB}, []string{enodeB}),
			"[Node.P2P]\n" +
				`StaticNodes = ["` + enodeA + `", "` + enodeB + `"]` + "\n" +
				`TrustedNodes = ["` + enodeA + `", "` + enodeB + `"]` + "\n" +
				`BootstrapNodes = ["` + enodeB + `"]` + "\n" +
				`BootstrapNodesV5 = ["` + enodeB + `"]` + "\n" +
				`ListenAddr = "127.0.0.1:30303"` + "\n"},
		{"trusted apart from static, extra without a newline",
			GethConfig{Trusted: []string{enodeA}, Extra: "MaxPeers = 10"},
			"[Node.P2P]\nStaticNodes = []\nTrustedNodes = [\"" + enodeA + "\"]\nBootstrapNodes = []\nBootstrapNodesV5 = []\nMaxPeers = 10\n"},
		{"extra with its newline kept as is",
			GethConfig{Extra: "MaxPeers = 10\nNoDial = false\n"},
			"[Node.P2P]\nStaticNodes = []\nTrustedNodes = []\nBootstrapNodes = []\nBootstrapNodesV5 = []\nMaxPeers = 10\nNoDial = false\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.Render(); got != tc.want {
				t.Errorf("Render:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// gethTOML is the part of geth's config.toml the writer fills in.
type gethTOML struct {
	Node struct {
		P2P struct {
			StaticNodes, TrustedNodes, BootstrapNodes, BootstrapNodesV5 []string
			ListenAddr                                                  string
		}
	}
}

// decodeBack renders c and decodes it as a TOML reader does.
func decodeBack(t *testing.T, c GethConfig) gethTOML {
	t.Helper()
	var got gethTOML
	text := c.Render()
	if _, err := toml.Decode(text, &got); err != nil {
		t.Fatalf("rendered config is not TOML: %v\n%s", err, text)
	}
	return got
}

// What is written is what a TOML reader reads back, whatever the strings
// hold (an operator's listen address is not checked like an enode URL).
func TestGethConfigDecodesBack(t *testing.T) {
	odd := []string{`quote " and backslash \`, "tab\tnewline\ncr\r", "nul\x00 del\x7f bell\a", "ünïcödé ✓", "\xff\xfe invalid"}
	c := GethConfig{ListenAddr: odd[0], Static: odd, Trusted: odd[1:], Bootnodes: odd[2:]}
	got := decodeBack(t, c).Node.P2P
	valid := func(v []string) []string {
		out := make([]string, len(v))
		for i, s := range v {
			out[i] = validUTF8(s)
		}
		return out
	}
	if got.ListenAddr != odd[0] || !slices.Equal(got.StaticNodes, valid(odd)) ||
		!slices.Equal(got.TrustedNodes, valid(odd[1:])) || !slices.Equal(got.BootstrapNodes, valid(odd[2:])) ||
		!slices.Equal(got.BootstrapNodesV5, valid(odd[2:])) {
		t.Errorf("decoded %+v", got)
	}
}

// An enode URL is written as strconv.Quote writes it: the registrar's
// answers keep their bytes.
func TestAppendTOMLStringOfEnodeIsQuote(t *testing.T) {
	for _, s := range []string{enodeA, enodeB, "", "enode://" + strings.Repeat("ab", 64) + "@[::1]:30303"} {
		if got, want := string(AppendTOMLString(nil, s)), strconv.Quote(s); got != want {
			t.Errorf("AppendTOMLString(%q) = %s, want %s", s, got, want)
		}
	}
}

// P2PSection takes its lists in pieces (the registrar's answers are a
// group's list with one element cut out): the pieces, written in order,
// are the text Render writes for the whole lists.
func TestP2PSectionPieces(t *testing.T) {
	static := []string{enodeA, enodeB, "enode://cc@10.0.0.3:30303"}
	// The static list in two pieces around a cut element, as the registrar
	// holds it: "A, " and "C" with B cut out.
	s0 := append(AppendTOMLString(nil, static[0]), TOMLSep...)
	s1 := AppendTOMLString(nil, static[2])
	b0 := AppendTOMLString(nil, enodeB)
	got := bytes.Join(P2PSection([][]byte{s0, s1}, [][]byte{s0, s1}, [][]byte{b0, nil}), nil)
	want := PeerConfig("", []string{static[0], static[2]}, []string{enodeB}).Render()
	if string(got) != want {
		t.Errorf("pieces:\n%s\nwant:\n%s", got, want)
	}
}

// validUTF8 is s with each byte that is not UTF-8 replaced by U+FFFD.
func validUTF8(s string) string { return string([]rune(s)) }

func FuzzGethConfig(f *testing.F) {
	f.Add("127.0.0.1:30303", enodeA, enodeB, "")
	f.Add(`"\`, "\x00\n", "\xff", "a\u2028b")
	f.Fuzz(func(t *testing.T, listen, static, boot, trusted string) {
		c := GethConfig{ListenAddr: listen, Static: []string{static, boot}, Trusted: []string{trusted}, Bootnodes: []string{boot}}
		got := decodeBack(t, c).Node.P2P
		v := validUTF8
		wantStatic := []string{v(static), v(boot)}
		if !slices.Equal(got.StaticNodes, wantStatic) || !slices.Equal(got.TrustedNodes, []string{v(trusted)}) ||
			!slices.Equal(got.BootstrapNodes, []string{v(boot)}) || !slices.Equal(got.BootstrapNodesV5, []string{v(boot)}) {
			t.Fatalf("decoded %+v from %+v", got, c)
		}
		if listen != "" && got.ListenAddr != v(listen) {
			t.Fatalf("ListenAddr %q, want %q", got.ListenAddr, v(listen))
		}
	})
}
