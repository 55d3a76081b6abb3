package httpapi_test

import (
	"crypto/ecdsa"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

func pubBytes(n *testNode) []byte { return crypto.FromECDSAPub(&n.key.PublicKey)[1:] }

func enrIP(t *testing.T, s string) string {
	n, err := enode.Parse(enode.ValidSchemes, s)
	if err != nil {
		t.Fatalf("answer holds a bad ENR: %v", err)
	}
	return n.IP().String()
}

func pubBytesKey(k *ecdsa.PrivateKey) []byte { return crypto.FromECDSAPub(&k.PublicKey)[1:] }
