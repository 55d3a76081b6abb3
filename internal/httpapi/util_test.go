package httpapi_test

import (
	"bytes"
	"crypto/ecdsa"
	"net"
	"testing"

	"github.com/consortium/consortium/internal/noderecord"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
)

// cmtENR signs a record like testutil.ENR that also names a CometBFT
// endpoint: the "cmt" entry, with an ID made of the node key's first byte.
func cmtENR(t *testing.T, key *ecdsa.PrivateKey, seq uint64, ip string, tcp, udp int, cmtPort uint16) string {
	t.Helper()
	var r enr.Record
	r.SetSeq(seq)
	r.Set(enr.IP(net.ParseIP(ip)))
	if tcp != 0 {
		r.Set(enr.TCP(tcp))
	}
	if udp != 0 {
		r.Set(enr.UDP(udp))
	}
	id := bytes.Repeat(pubBytesKey(key)[:1], noderecord.ConsensusIDLen)
	r.Set(noderecord.Consensus{ID: id, Port: cmtPort})
	if err := enode.SignV4(&r, key); err != nil {
		t.Fatal(err)
	}
	n, err := enode.New(enode.ValidSchemes, &r)
	if err != nil {
		t.Fatal(err)
	}
	return n.String()
}

func pubBytes(n *testNode) []byte { return crypto.FromECDSAPub(&n.key.PublicKey)[1:] }

func enrIP(t *testing.T, s string) string {
	n, err := enode.Parse(enode.ValidSchemes, s)
	if err != nil {
		t.Fatalf("answer holds a bad ENR: %v", err)
	}
	return n.IP().String()
}

func pubBytesKey(k *ecdsa.PrivateKey) []byte { return crypto.FromECDSAPub(&k.PublicKey)[1:] }
