package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// TestNodeKeyRotationWithGeth: an operator gives a public node's geth a new
// node key (the key file rewritten, geth restarted). Its agent, still
// running, takes the new key on: the new record is registered, the old one
// deleted, and every intended peer (its member's validator, the other
// member's public node) is connected to the new ID while the old one is in
// no answer, well within one lease.
func TestNodeKeyRotationWithGeth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real geth processes")
	}
	s := newSuite(t, gethtest.V117)
	a, b := s.addMember("alpha"), s.addMember("beta")
	var running []*tnode
	for _, spec := range []struct {
		m          *member
		name, role string
	}{{a, "alpha-validator", "validator"}, {a, "alpha-public", "public"}, {b, "beta-public", "public"}, {b, "beta-validator", "validator"}} {
		running = append(running, s.startNode(spec.m, spec.name, spec.role)) // KeyFile: geth's key file
	}
	aVal, aPub, bPub := running[0], running[1], running[2]
	s.waitMesh(running, 60*time.Second)

	oldID := aPub.geth.ID()
	oldKey := fmt.Sprintf("%x", crypto.FromECDSAPub(&aPub.geth.Key().PublicKey)[1:])
	key, _ := crypto.GenerateKey()
	newID := enode.PubkeyToIDV4(&key.PublicKey)
	start := time.Now()
	if err := aPub.geth.RestartWithKey(key); err != nil {
		t.Fatal(err)
	}
	up := time.Since(start)

	// The old ID leaves every answer that named it: alpha's validator's
	// (private endpoints) and beta's public node's (public ones).
	ctx := context.Background()
	inAnswers := func() (bool, error) {
		for _, q := range []struct {
			n    *tnode
			cred string
		}{{aVal, a.cred}, {bPub, b.cred}} {
			txt, err := s.reg.client(q.cred).PeersText(ctx, q.n.geth.ID().String(), "json")
			if err != nil {
				return false, err
			}
			if strings.Contains(txt, oldKey) {
				return true, nil
			}
		}
		return false, nil
	}
	gone := testutil.EventuallyTrue(t, testTTL+10*time.Second, "the old ID out of every answer", func() bool {
		in, err := inAnswers()
		return err == nil && !in
	})
	meshed := s.waitMesh(running, 60*time.Second)
	t.Logf("FIGURE public node's key rotated (lease %v): geth up with the new key %v after the stop; old ID out of every answer %v later; every intended peer connected to the new ID %v after that",
		testTTL, up.Round(time.Millisecond), gone.Round(time.Millisecond), meshed.Round(time.Millisecond))
	if gone > testTTL {
		t.Errorf("the old ID stayed in the answers %v after geth came back with the new key; the lease is %v", gone, testTTL)
	}
	select {
	case <-aPub.done:
		t.Fatal("the agent stopped when the client's key changed")
	default:
	}
	if aPub.agent.ID() != newID || aPub.agent.Health().NodeID != newID.String() {
		t.Errorf("agent ID %s, want the new %s", aPub.agent.ID(), newID)
	}
	for _, n := range s.reg.Registry.Nodes(registry.Principal{Name: "admin", Admin: true}) {
		if n.ID == oldID.String() && n.Live {
			t.Errorf("the old record is still live: %+v", n)
		}
	}
	// The renewals carry on under the new ID.
	lease := aPub.agent.Health().LeaseExpires
	testutil.EventuallyTrue(t, 2*testTTL, "a renewal of the new record", func() bool {
		return aPub.agent.Health().LeaseExpires.After(lease)
	})
}
