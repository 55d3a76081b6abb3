package agent

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/consortium/consortium/internal/atomicfile"
	"github.com/consortium/consortium/internal/noderecord"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
)

// Endpoint is where a node can be reached.
type Endpoint struct {
	IP  net.IP
	TCP int
	UDP int
}

func (e Endpoint) String() string { return fmt.Sprintf("%s tcp=%d udp=%d", e.IP, e.TCP, e.UDP) }

// Equal compares endpoints.
func (e Endpoint) Equal(o Endpoint) bool { return e.IP.Equal(o.IP) && e.TCP == o.TCP && e.UDP == o.UDP }

// SignRecord builds and signs an ENR for key at ep with sequence seq.
func SignRecord(key *ecdsa.PrivateKey, seq uint64, ep Endpoint) (string, error) {
	return SignRecordWith(key, seq, ep, nil)
}

// SignRecordWith is SignRecord with the node's CometBFT endpoint, the "cmt"
// entry (its host is the record's IP), when cmt is not nil: one record
// signed with the node key names both of the node's peer layers.
func SignRecordWith(key *ecdsa.PrivateKey, seq uint64, ep Endpoint, cmt *noderecord.Consensus) (string, error) {
	var r enr.Record
	r.SetSeq(seq)
	if cmt != nil {
		r.Set(*cmt)
	}
	r.Set(enr.IP(ep.IP))
	if ep.TCP != 0 {
		r.Set(enr.TCP(ep.TCP))
	}
	if ep.UDP != 0 {
		r.Set(enr.UDP(ep.UDP))
	}
	if err := enode.SignV4(&r, key); err != nil {
		return "", err
	}
	n, err := enode.New(enode.ValidSchemes, &r)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// LoadOrCreateKey reads a geth-style node key file (hex), creating one with
// mode 0600 when it does not exist.
func LoadOrCreateKey(path string) (*ecdsa.PrivateKey, bool, error) {
	k, err := crypto.LoadECDSA(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("node key %s: %v", path, err)
	}
	k, err = crypto.GenerateKey()
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	hex := fmt.Sprintf("%x", crypto.FromECDSA(k))
	if err := atomicfile.Write(path, []byte(hex), 0o600); err != nil {
		return nil, false, fmt.Errorf("writing node key: %w", err)
	}
	return k, true, nil
}

// parseEnodes parses enode URLs, skipping (and reporting) bad ones.
func parseEnodes(list []string) ([]*enode.Node, error) {
	var out []*enode.Node
	var bad []string
	for _, s := range list {
		n, err := enode.ParseV4(s)
		if err != nil {
			bad = append(bad, s)
			continue
		}
		out = append(out, n)
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("ignored %d unparsable enode URLs: %s", len(bad), strings.Join(bad, ", "))
	}
	return out, nil
}
