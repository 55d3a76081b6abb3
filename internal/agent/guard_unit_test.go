package agent

import (
	"context"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

func TestAdmit(t *testing.T) {
	member := peerAt(t, bytesOf(1), 30301)
	leaving := peerAt(t, bytesOf(2), 30302) // left the set, still static
	stranger := peerAt(t, bytesOf(3), 30303)
	set := []*enode.Node{member}
	applied := []*enode.Node{member, leaving}
	for _, tc := range []struct {
		name    string
		id      enode.ID
		haveSet bool
		want    bool
	}{
		{"a peer of the set", member.ID(), true, true},
		{"a peer within its departure grace", leaving.ID(), true, true},
		{"a stranger", stranger.ID(), true, false},
		{"no set known yet: nothing decided", stranger.ID(), false, true},
	} {
		if got := admit(tc.id, tc.haveSet, set, applied); got != tc.want {
			t.Errorf("%s: admit = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A stranger that dialled us is disconnected by the guard at once; a peer
// of the set is left alone.
func TestGuardDropsStrangerAtOnce(t *testing.T) {
	member := peerAt(t, bytesOf(1), 30301)
	stranger := peerAt(t, bytesOf(3), 30303)
	fc := &fakeClient{connected: map[enode.ID]*enode.Node{member.ID(): member, stranger.ID(): stranger},
		inbound: map[enode.ID]bool{member.ID(): true, stranger.ID(): true}}
	a := newUnitAgent(t, fc, Config{})
	a.desired, a.applied, a.haveSet = []*enode.Node{member}, []*enode.Node{member}, true
	ctx := context.Background()
	if a.guard(ctx, member.ID()) {
		t.Fatal("a peer of the set was dropped")
	}
	if !a.guard(ctx, stranger.ID()) {
		t.Fatal("the stranger was not dropped")
	}
	if calls := fc.took(); len(calls) != 1 || !contains(calls, "remove", stranger) {
		t.Fatalf("calls %v, want one remove of the stranger", calls)
	}
	if _, ok := a.dropped[stranger.ID()]; !ok {
		t.Fatal("the drop is not remembered")
	}
}

// A node the guard dropped that turns out to be in the set (a newcomer
// whose registration had not reached us) is dialled at once, even from the
// higher ID: its own dial history keeps it from dialling us again.
func TestDroppedNewcomerDialledWithoutStagger(t *testing.T) {
	fc := &fakeClient{connected: map[enode.ID]*enode.Node{}}
	a := newUnitAgent(t, fc, Config{DialStagger: time.Hour})
	self := a.nodeID()
	var lower, higher *enode.Node
	for b := byte(1); lower == nil || higher == nil; b++ {
		n := peerAt(t, bytesOf(b), 30300+int(b))
		id := n.ID()
		if string(id[:]) > string(self[:]) {
			higher = n
		} else {
			lower = n
		}
	}
	a.haveSet = true
	a.desired = []*enode.Node{higher}
	a.reconcile(context.Background())
	if calls := fc.took(); contains(calls, "add", higher) {
		t.Fatalf("a new higher-ID peer was dialled within the stagger: %v", calls)
	}
	var newcomer *enode.Node
	for b := byte(100); newcomer == nil; b++ {
		n := peerAt(t, bytesOf(b), 30300+int(b))
		if id := n.ID(); string(id[:]) > string(self[:]) {
			newcomer = n
		}
	}
	a.dropped = map[enode.ID]time.Time{newcomer.ID(): a.now()}
	a.desired = []*enode.Node{higher, newcomer}
	a.reconcile(context.Background())
	calls := fc.took()
	if !contains(calls, "add", newcomer) {
		t.Fatalf("the dropped newcomer was not dialled at once: %v", calls)
	}
	if contains(calls, "add", higher) {
		t.Fatalf("the stagger was skipped for a peer the guard never dropped: %v", calls)
	}
}

// A node outside the set that our own client dialled (found through the
// member's bootnodes: most likely a node whose registration is on its way)
// keeps ForeignGrace; dropping it would block our own redial for 35 s.
func TestDialledStrangerKeepsGrace(t *testing.T) {
	member := peerAt(t, bytesOf(1), 30301)
	found := peerAt(t, bytesOf(4), 30304)
	fc := &fakeClient{connected: map[enode.ID]*enode.Node{member.ID(): member, found.ID(): found}}
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	a := newUnitAgent(t, fc, Config{ForeignGrace: 200 * time.Millisecond, Now: clock.now})
	a.desired, a.applied, a.haveSet = []*enode.Node{member}, []*enode.Node{member}, true
	ctx := context.Background()
	if a.guard(ctx, found.ID()) {
		t.Fatal("the guard dropped a node our client dialled")
	}
	_, recheck := a.reconcile(ctx)
	if calls := fc.took(); contains(calls, "remove", found) {
		t.Fatalf("dropped within its grace: %v", calls)
	}
	if recheck <= 0 || recheck > 200*time.Millisecond {
		t.Fatalf("recheck %v, want within the grace", recheck)
	}
	clock.t = clock.t.Add(200 * time.Millisecond)
	a.reconcile(ctx)
	if calls := fc.took(); !contains(calls, "remove", found) {
		t.Fatalf("still connected after its grace: %v", calls)
	}
}

// A client without peer events (geth over HTTP) gets the guard from a poll:
// a stranger that dialled in is gone within GuardPoll, a node our client
// dialled and the set's peers stay.
func TestGuardPollWithoutEvents(t *testing.T) {
	member := peerAt(t, bytesOf(1), 30301)
	stranger := peerAt(t, bytesOf(3), 30303)
	found := peerAt(t, bytesOf(4), 30304)
	fc := &fakeClient{connected: map[enode.ID]*enode.Node{member.ID(): member, stranger.ID(): stranger, found.ID(): found},
		inbound: map[enode.ID]bool{member.ID(): true, stranger.ID(): true}}
	a := newUnitAgent(t, fc, Config{GuardPoll: 20 * time.Millisecond})
	a.desired, a.applied, a.haveSet = []*enode.Node{member}, []*enode.Node{member}, true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.peerEventLoop(ctx) }()
	deadline := time.Now().Add(2 * time.Second)
	for {
		fc.mu.Lock()
		_, still := fc.connected[stranger.ID()]
		fc.mu.Unlock()
		if !still {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stranger is still connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	testutil.Wait(t, time.Minute, "the peer event loop to return after cancel", done)
	if calls := fc.took(); len(calls) != 1 || !contains(calls, "remove", stranger) {
		t.Fatalf("calls %v, want only the stranger removed", calls)
	}
}
