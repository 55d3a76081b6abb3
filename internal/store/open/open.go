// Package open turns a store URL into a store.Store, so the registrar and
// `registrar migrate` name their storage the same way:
//
//	sqlite:///var/lib/consortium        a data directory (registrar.db inside)
//	sqlite:///var/lib/x/registrar.db    a database file (ends in .db)
//	etcd://10.0.0.1:2379,10.0.0.2:2379  etcd endpoints (http); etcds:// for https
//
// A bare path (no scheme) is a SQLite data directory. etcd's TLS and
// authentication come from Options, named as etcd's own clients name them.
package open

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"log/slog"

	"github.com/consortium/consortium/internal/store"
	"github.com/consortium/consortium/internal/store/etcd"
	"github.com/consortium/consortium/internal/store/sqlite"
)

// Options are the etcd client settings a URL cannot carry.
type Options struct {
	// Prefix under which the registrar keeps its keys. Default /consortium/.
	Prefix string
	// Username and Password for etcd authentication; empty: none.
	Username, Password string
	// CAFile, CertFile, KeyFile: TLS to etcd (etcdctl's --cacert, --cert, --key).
	CAFile, CertFile, KeyFile string
	// DialTimeout bounds the first connection. Default 5 s.
	DialTimeout time.Duration
	Logger      *slog.Logger
}

// Kind is "sqlite" or "etcd".
type Kind string

const (
	SQLite Kind = "sqlite"
	Etcd   Kind = "etcd"
)

// Target is a parsed store URL.
type Target struct {
	Kind      Kind
	Path      string   // sqlite: directory or .db file
	Endpoints []string // etcd: http(s)://host:port
}

func (t Target) String() string {
	if t.Kind == SQLite {
		return "sqlite://" + t.Path
	}
	scheme, hosts := "etcd://", make([]string, len(t.Endpoints))
	for i, e := range t.Endpoints {
		if strings.HasPrefix(e, "https://") {
			scheme = "etcds://"
		}
		hosts[i] = e[strings.Index(e, "://")+3:]
	}
	return scheme + strings.Join(hosts, ",")
}

// ErrBadURL is returned for a URL Parse cannot read.
var ErrBadURL = errors.New("bad store URL")

// Parse reads a store URL.
func Parse(u string) (Target, error) {
	u = strings.TrimSpace(u)
	bad := func(format string, a ...any) (Target, error) {
		return Target{}, fmt.Errorf("%w %q: %s (want sqlite:///path or etcd://host:2379,host:2379)", ErrBadURL, u, fmt.Sprintf(format, a...))
	}
	switch {
	case u == "":
		return bad("empty")
	case strings.HasPrefix(u, "sqlite://"):
		p := strings.TrimPrefix(u, "sqlite://")
		if p == "" {
			return bad("no path")
		}
		return Target{Kind: SQLite, Path: p}, nil
	case strings.HasPrefix(u, "etcd://"), strings.HasPrefix(u, "etcds://"):
		scheme := "http://"
		rest := strings.TrimPrefix(u, "etcd://")
		if strings.HasPrefix(u, "etcds://") {
			scheme, rest = "https://", strings.TrimPrefix(u, "etcds://")
		}
		rest = strings.TrimSuffix(rest, "/")
		if rest == "" {
			return bad("no endpoints")
		}
		var eps []string
		for _, hp := range strings.Split(rest, ",") {
			host, port, err := net.SplitHostPort(hp)
			if err != nil || host == "" || port == "" || strings.ContainsAny(hp, "/?#@ ") {
				return bad("endpoint %q is not host:port", hp)
			}
			eps = append(eps, scheme+hp)
		}
		return Target{Kind: Etcd, Endpoints: eps}, nil
	case strings.Contains(u, "://"):
		return bad("unknown scheme")
	default:
		return Target{Kind: SQLite, Path: u}, nil
	}
}

// Open opens the store a URL names.
func Open(ctx context.Context, u string, o Options) (store.Store, Target, error) {
	t, err := Parse(u)
	if err != nil {
		return nil, t, err
	}
	switch t.Kind {
	case SQLite:
		var s *sqlite.Store
		if strings.HasSuffix(t.Path, ".db") {
			s, err = sqlite.OpenFile(ctx, t.Path)
		} else {
			s, err = sqlite.Open(ctx, t.Path)
		}
		if err != nil {
			return nil, t, err
		}
		return s, t, nil
	default:
		s, err := etcd.Open(ctx, etcd.Config{
			Endpoints: t.Endpoints, Prefix: o.Prefix, Username: o.Username, Password: o.Password,
			CAFile: o.CAFile, CertFile: o.CertFile, KeyFile: o.KeyFile, DialTimeout: o.DialTimeout, Logger: o.Logger,
		})
		if err != nil {
			return nil, t, err
		}
		return s, t, nil
	}
}
