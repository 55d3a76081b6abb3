package api

import (
	"strings"
	"unicode/utf8"
)

// GethConfig is geth's config.toml as the consortium writes it: the peer
// lists of [Node.P2P] (geth >= 1.11 ignores static-nodes.json and
// trusted-nodes.json), and the listen address when given. The registrar's
// format=toml answer and the agent's cold-start file are both written by
// P2PSection, so they cannot disagree.
type GethConfig struct {
	// ListenAddr is written as ListenAddr when not empty (geth's --port
	// binds every interface; this keeps a node on one address).
	ListenAddr string
	// Static, Trusted and Bootnodes are enode URLs. Bootnodes is written
	// for discv4 and discv5 alike. Every list is written even when empty:
	// an absent BootstrapNodesV5 makes discv5 fall back to the mainnet
	// bootnodes.
	Static    []string
	Trusted   []string
	Bootnodes []string
	// Extra is appended verbatim after the [Node.P2P] keys (the operator's
	// own settings for that section).
	Extra string
}

// PeerConfig is the config of a consortium node holding a peer set: its
// static peers are trusted too, so they get a slot even when --maxpeers is
// reached.
func PeerConfig(listenAddr string, static, bootnodes []string) GethConfig {
	return GethConfig{ListenAddr: listenAddr, Static: static, Trusted: static, Bootnodes: bootnodes}
}

// Render returns the TOML text.
func (c GethConfig) Render() string {
	var b strings.Builder
	for _, p := range P2PSection(tomlArray(c.Static), tomlArray(c.Trusted), tomlArray(c.Bootnodes)) {
		b.Write(p)
	}
	if c.ListenAddr != "" {
		b.WriteString("ListenAddr = ")
		b.Write(AppendTOMLString(nil, c.ListenAddr))
		b.WriteString("\n")
	}
	if c.Extra != "" {
		b.WriteString(c.Extra)
		if !strings.HasSuffix(c.Extra, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// TOMLSep separates two elements of a TOML array in P2PSection's lists.
const TOMLSep = ", "

// P2PSection lays out geth's [Node.P2P] peer keys: the table header, then
// StaticNodes, TrustedNodes, BootstrapNodes and BootstrapNodesV5, one line
// each. Each list is given as the inside of its TOML array (elements made by
// AppendTOMLString, separated by TOMLSep), in pieces to be written one after
// the other; the result is such pieces too. The registrar splices answers
// out of lists rendered once per group, so no list is copied here.
func P2PSection(static, trusted, bootnodes [][]byte) [][]byte {
	out := make([][]byte, 0, 6+len(static)+len(trusted)+2*len(bootnodes))
	out = append(out, []byte("[Node.P2P]\nStaticNodes = ["))
	out = append(out, static...)
	out = append(out, []byte("]\nTrustedNodes = ["))
	out = append(out, trusted...)
	out = append(out, []byte("]\nBootstrapNodes = ["))
	out = append(out, bootnodes...)
	out = append(out, []byte("]\nBootstrapNodesV5 = ["))
	out = append(out, bootnodes...)
	return append(out, []byte("]\n"))
}

func tomlArray(v []string) [][]byte {
	var b []byte
	for i, s := range v {
		if i > 0 {
			b = append(b, TOMLSep...)
		}
		b = AppendTOMLString(b, s)
	}
	return [][]byte{b}
}

// AppendTOMLString appends s as a TOML basic string. Quotes, backslashes
// and control characters are escaped, and bytes that are not UTF-8 become
// U+FFFD, so any s gives valid TOML; an enode URL comes out as strconv.Quote
// writes it.
func AppendTOMLString(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\n':
			dst = append(dst, `\n`...)
		case r == '\t':
			dst = append(dst, `\t`...)
		case r == '\r':
			dst = append(dst, `\r`...)
		case r < 0x20 || r == 0x7f:
			dst = append(dst, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			// An invalid byte is ranged over as utf8.RuneError (U+FFFD).
			dst = utf8.AppendRune(dst, r)
		}
	}
	return append(dst, '"')
}
