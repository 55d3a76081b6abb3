package agent

import (
	"context"
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/registrarclient"
)

func (a *Agent) isRegistered() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.registered
}

func (a *Agent) renewInterval() time.Duration {
	if a.cfg.RenewInterval > 0 {
		return a.cfg.RenewInterval
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if ttl := a.health.LeaseExpires.Sub(a.now()); ttl > 3*time.Second {
		return ttl / 3
	}
	return time.Second
}

// privateEndpoint is where this node is reached inside its member.
func (a *Agent) privateEndpoint(info ethclient.NodeInfo) Endpoint {
	ip := a.cfg.AdvertiseIP
	if ip == nil {
		ip = net.ParseIP(info.IP)
	}
	ep := Endpoint{IP: ip, TCP: info.ListenerPort, UDP: info.DiscoveryPort}
	if a.cfg.Role == "bootnode" {
		ep.TCP = 0
	}
	return ep
}

func (a *Agent) needsRegistration(info ethclient.NodeInfo) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.registered || !a.endpoint.Equal(a.privateEndpoint(info))
}

func (a *Agent) register(ctx context.Context, info ethclient.NodeInfo) error {
	ep := a.privateEndpoint(info)
	if ep.IP == nil || ep.IP.IsUnspecified() {
		return fmt.Errorf("the client reports no usable IP (%q): set the advertised IP", info.IP)
	}
	a.mu.Lock()
	if a.seq == 0 || !a.endpoint.Equal(ep) {
		// A time-based seq grows across agent restarts without a file.
		a.seq = max(a.seq+1, uint64(time.Now().UnixMilli()))
	}
	seq := a.seq
	a.mu.Unlock()
	key, id := a.nodeKey(), a.nodeID()
	rec, err := SignRecordWith(key, seq, ep, a.consensusEntry(a.cfg.ConsensusPort))
	if err != nil {
		return err
	}
	req := api.RegisterRequest{Role: a.cfg.Role, ENR: rec}
	if a.cfg.Role == "public" {
		port := a.cfg.PublicPort
		if port == 0 {
			port = info.ListenerPort
		}
		pub, err := SignRecordWith(key, seq, Endpoint{IP: a.cfg.PublicIP, TCP: port, UDP: port}, a.consensusEntry(a.cfg.PublicConsensusPort))
		if err != nil {
			return err
		}
		req.PublicENR = pub
	}
	var resp api.RegisterResponse
	err = a.withoutProofs(a.status(ctx, info), func(st *api.Status) error {
		req.Status = st
		cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
		defer cancel()
		var err error
		resp, err = a.cfg.Registrar.Register(cctx, req)
		a.registrarResult(err)
		return err
	})
	if err != nil {
		a.m.registrations.WithLabelValues("error").Inc()
		return err
	}
	a.m.registrations.WithLabelValues("ok").Inc()
	a.mu.Lock()
	a.registered, a.endpoint = true, ep
	a.lease = time.Duration(resp.TTLSeconds * float64(time.Second))
	a.health.LeaseExpires = a.now().Add(a.lease)
	a.mu.Unlock()
	a.m.leaseExpires.Set(float64(a.health.LeaseExpires.Unix()))
	a.log.Info("registered", "node", id, "role", a.cfg.Role, "endpoint", ep.String(), "seq", seq, "ttl", resp.TTLSeconds)
	a.wakeWatch()
	return nil
}

func (a *Agent) renew(ctx context.Context) error {
	info, _ := a.cfg.Client.NodeInfo(ctx)
	var resp api.RenewResponse
	err := a.withoutProofs(a.status(ctx, info), func(st *api.Status) error {
		cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
		defer cancel()
		var err error
		resp, err = a.cfg.Registrar.Renew(cctx, a.nodeID().String(), st)
		a.registrarResult(err)
		return err
	})
	if registrarclient.IsStatus(err, 404) {
		a.m.renewals.WithLabelValues("lapsed").Inc()
		a.mu.Lock()
		a.registered = false
		a.mu.Unlock()
		a.log.Warn("lease lapsed at the registrar; registering again")
		if info.ID == a.nodeID() {
			return a.register(ctx, info)
		}
		return err
	}
	if err != nil {
		a.m.renewals.WithLabelValues("error").Inc()
		return err
	}
	a.m.renewals.WithLabelValues("ok").Inc()
	a.mu.Lock()
	a.health.LeaseExpires = resp.Expires
	if resp.TTLSeconds > 0 {
		a.lease = time.Duration(resp.TTLSeconds * float64(time.Second))
	}
	a.mu.Unlock()
	a.m.leaseExpires.Set(float64(resp.Expires.Unix()))
	return nil
}

// status gathers what the agent reports with each renewal.
func (a *Agent) status(ctx context.Context, info ethclient.NodeInfo) *api.Status {
	st := &api.Status{Client: info.Name}
	if len(st.Client) > 200 {
		st.Client = st.Client[:200]
	}
	if h, err := a.cfg.Client.HeadBlock(ctx); err == nil {
		st.Head = h
	}
	if s, err := a.cfg.Client.Syncing(ctx); err == nil {
		st.Syncing = s
	}
	if ci, ok := a.cfg.Client.(ethclient.ChainInfo); ok {
		if s, err := ci.HeadSigner(ctx, st.Head); err == nil && len(s) == 42 {
			st.HeadSigner = s
		}
		a.mu.Lock()
		ask := !a.noCoinbase
		a.mu.Unlock()
		if ask {
			c, err := ci.Coinbase(ctx)
			if err == nil && len(c) == 42 && c != "0x0000000000000000000000000000000000000000" {
				st.Coinbase = c
			} else {
				// Not a signer: asking again each renewal only fills geth's log.
				a.mu.Lock()
				a.noCoinbase = true
				a.mu.Unlock()
			}
		}
	}
	a.addProofs(ctx, st)
	if r, ok := a.cfg.Consensus.(ConsensusReporter); ok {
		st.Consensus = r.Report()
	}
	if peers, err := a.cfg.Client.Peers(ctx); err == nil {
		st.Peers = len(peers)
		for _, p := range peers {
			if len(st.PeerIDs) < api.MaxPeerIDs {
				st.PeerIDs = append(st.PeerIDs, p.ID.String())
			}
		}
		sort.Strings(st.PeerIDs)
	}
	return st
}
