package registrarclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Resolver looks up a registrar URL's host name. *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// LookupTimeout bounds how long one attempt waits for its URL's host name
// (less when the attempt's share of the caller's deadline is smaller), so
// that a name whose DNS server does not answer (Docker's DNS forwarding it
// to resolvers it cannot reach) costs half a second before the next URL is
// tried, not the resolver's own retries of 5 s and more.
const LookupTimeout = 500 * time.Millisecond

const (
	// lookupLife bounds one lookup. Attempts stop waiting for it after
	// LookupTimeout, but it runs on, so that a slow resolver's answer still
	// serves the attempts after it.
	lookupLife = 2 * time.Second
	// freshFor is how long an answer is used without asking again: dials
	// come in bursts (a renewal and a watch), one lookup serves them.
	freshFor = 5 * time.Second
	// staleFor is how long the last answer is used while lookups of the
	// name fail or hang (never after the resolver said the name does not
	// exist): a DNS outage then does not cut the client off from a
	// registrar whose address has not changed. A replica that did move
	// fails to connect, which the client fails over from as from any dead
	// replica, and https checks the name on the certificate.
	staleFor = 10 * time.Minute
)

// systemResolver is the default Resolver: the system's, through a new
// net.Resolver for each lookup. One net.Resolver makes a second lookup of a
// name join the first one still running, without the second's deadline
// (Go's singleflight); a lookup hung on a query that will never be answered
// would then hold back the one that would succeed now.
type systemResolver struct{}

func (systemResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return new(net.Resolver).LookupNetIP(ctx, network, host)
}

// names resolves the registrar URLs' host names with a bound on every wait,
// and keeps the last answer for each name.
type names struct {
	res   Resolver
	log   *slog.Logger
	now   func() time.Time
	fresh time.Duration // freshFor; tests shorten it
	stale time.Duration // staleFor

	mu    sync.Mutex
	hosts map[string]*name
}

func newNames(res Resolver, log *slog.Logger) *names {
	if res == nil {
		res = systemResolver{}
	}
	return &names{res: res, log: log, now: time.Now, fresh: freshFor, stale: staleFor, hosts: map[string]*name{}}
}

// name is what is known of one host name.
type name struct {
	addrs   []netip.Addr // the last answer; nil when none, or the name does not exist
	at      time.Time    // when addrs were answered
	failing bool         // the last lookup failed, or an attempt gave up waiting for it: DNS does not answer for the name now
	from    time.Time    // start of the lookup whose result addrs and failing hold
	cur     *lookup      // the newest lookup still running, nil when none
}

// lookup is one run of the Resolver for a name. Its result is read only
// once done is closed.
type lookup struct {
	start time.Time
	done  chan struct{}
	addrs []netip.Addr
	err   error
}

// resolve returns host's addresses, waiting at most wait for a lookup. An
// answer younger than fresh is used as it is. Otherwise the running lookup
// is joined, unless it has run longer than LookupTimeout (it is then
// probably waiting on a query that will never be answered: a new one is
// started beside it). While the name's lookups fail or go unanswered, the
// last answer (if younger than stale) is used at once, and a lookup runs
// behind it.
func (n *names) resolve(ctx context.Context, host string, wait time.Duration) ([]netip.Addr, error) {
	n.mu.Lock()
	e := n.hosts[host]
	if e == nil {
		e = &name{}
		n.hosts[host] = e
	}
	now := n.now()
	if e.addrs != nil && now.Sub(e.at) < n.fresh {
		defer n.mu.Unlock()
		return e.addrs, nil
	}
	var stale []netip.Addr
	if e.addrs != nil && now.Sub(e.at) < n.stale {
		stale = e.addrs
	}
	l := e.cur
	if l == nil || now.Sub(l.start) >= LookupTimeout {
		l = n.start(host, e, now)
	}
	failing := e.failing
	n.mu.Unlock()
	if stale != nil && failing {
		return stale, nil
	}

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-l.done:
		if l.err == nil {
			return l.addrs, nil
		}
		if stale != nil && !isNotFound(l.err) {
			return stale, nil
		}
		return nil, l.err
	case <-t.C:
		// The attempts after this one need not wait for the lookup that
		// is running, or for its successors, to learn that DNS does not
		// answer.
		n.mu.Lock()
		if !l.start.Before(e.from) {
			n.failing(host, e, fmt.Errorf("no answer within %v", wait))
		}
		n.mu.Unlock()
	case <-ctx.Done():
	}
	err := &net.DNSError{Err: fmt.Sprintf("no answer within %v", wait), Name: host, IsTimeout: true}
	if stale != nil {
		return stale, nil
	}
	return nil, err
}

// start runs a lookup of host in a goroutine that ends within lookupLife.
// Called with n.mu held.
func (n *names) start(host string, e *name, now time.Time) *lookup {
	l := &lookup{start: now, done: make(chan struct{})}
	e.cur = l
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), lookupLife)
		addrs, err := n.res.LookupNetIP(ctx, "ip", host)
		cancel()
		if err == nil && len(addrs) == 0 {
			err = &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
		for i, a := range addrs {
			addrs[i] = a.Unmap()
		}
		l.addrs, l.err = addrs, err
		n.record(host, e, l)
		close(l.done)
	}()
	return l
}

// record keeps l's result unless a lookup started later already ended.
func (n *names) record(host string, e *name, l *lookup) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e.cur == l {
		e.cur = nil
	}
	if l.start.Before(e.from) {
		return
	}
	e.from = l.start
	switch {
	case l.err == nil:
		e.addrs, e.at, e.failing = l.addrs, n.now(), false
	case isNotFound(l.err):
		e.addrs, e.failing = nil, false
	default:
		n.failing(host, e, l.err)
	}
}

// failing notes that DNS does not answer for host now. Called with n.mu
// held.
func (n *names) failing(host string, e *name, err error) {
	if !e.failing && e.addrs != nil && n.now().Sub(e.at) < n.stale {
		n.log.Warn("registrar host name does not resolve; using its last known addresses", "host", host, "addrs", e.addrs, "err", err)
	}
	e.failing = true
}

// isNotFound reports whether the resolver answered that the name does not
// exist, as opposed to not answering.
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// lookupWaitKey carries an attempt's bound on waiting for its host name
// from send to dialer.DialContext, through the transport, which keeps the
// request's context values but not its deadline when it dials.
type lookupWaitKey struct{}

// lookupWait is an attempt's bound on waiting for its URL's host name:
// LookupTimeout, or half of its share of what is left of ctx's deadline
// when left URLs may still be tried, whichever is less. So when the first
// names hang, the URL after them still has time to answer.
func lookupWait(ctx context.Context, left int) time.Duration {
	w := LookupTimeout
	if dl, ok := ctx.Deadline(); ok {
		if share := time.Until(dl) / time.Duration(2*max(left, 1)); share < w {
			w = max(share, 0)
		}
	}
	return w
}

// dialer connects to a registrar URL's host: it resolves the name through
// names, within the attempt's lookup bound, then tries each address in turn
// within DialTimeout.
type dialer struct {
	names *names
	net   *net.Dialer // connects to one address; its Timeout bounds all of them
}

func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return d.net.DialContext(ctx, network, address)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return d.net.DialContext(ctx, network, address)
	}
	wait, ok := ctx.Value(lookupWaitKey{}).(time.Duration)
	if !ok {
		wait = LookupTimeout
	}
	addrs, err := d.names.resolve(ctx, host, wait)
	if err != nil {
		// What net.Dialer returns when resolving fails: neverSent knows it.
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, d.net.Timeout)
	defer cancel()
	dl, _ := ctx.Deadline()
	var first error
	for i, a := range addrs {
		// Each address gets its share of what is left, as net.Dialer
		// spreads a timeout over a name's addresses.
		actx, acancel := context.WithTimeout(ctx, time.Until(dl)/time.Duration(len(addrs)-i))
		c, err := d.net.DialContext(actx, network, net.JoinHostPort(a.String(), port))
		acancel()
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}
