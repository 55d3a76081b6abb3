package ethclient

import (
	"context"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

// PeerEvent is one admin_peerEvents notification.
type PeerEvent struct {
	Type string   `json:"type"` // "add", "drop", "msgsend", "msgrecv"
	Peer enode.ID `json:"peer"`
}

// Subscription is a live subscription; Err delivers its end (for example
// when the client restarts) and Unsubscribe ends it.
type Subscription interface {
	Err() <-chan error
	Unsubscribe()
}

// SubscribePeerEvents streams peer connections and disconnections. It needs
// a connection that carries notifications (IPC or WebSocket); over HTTP it
// fails with ErrMethodNotFound-like errors and callers fall back to checking
// admin_peers on their own schedule.
func (g *Geth) SubscribePeerEvents(ctx context.Context, ch chan<- PeerEvent) (Subscription, error) {
	sub, err := g.c.Subscribe(ctx, "admin", ch, "peerEvents")
	if err != nil {
		return nil, wrap(ctx, "admin_peerEvents", err)
	}
	return sub, nil
}
