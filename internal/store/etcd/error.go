package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/consortium/consortium/internal/ctxtime"
	"github.com/consortium/consortium/internal/store"
)

// ErrConfig is wrapped by Open's errors about its configuration: these do
// not go away by retrying.
var ErrConfig = errors.New("etcd store: bad configuration")

// ErrClosed is wrapped (with store.ErrUnavailable) by calls on a closed
// store.
var ErrClosed = errors.New("etcd store closed")

// retryPause is the wait between attempts of one call; an election on a
// loopback or LAN cluster takes about a second.
const retryPause = 100 * time.Millisecond

// do runs f within the request timeout, retrying while etcd answers with a
// transient error (no leader, an election under way, a member stopping) and
// time remains. idempotent says f may be repeated after an error that leaves
// unknown whether it was applied; otherwise only errors that mean "not
// applied" are retried. Errors wrap store.ErrUnavailable.
//
// The first attempt of an idempotent f gets only a third of the time (at
// least a second): a write proposed just as its leader died is lost without
// an answer, and would otherwise hold the call until the deadline although
// the next leader is elected in about a second. Later attempts get all the
// time left, so that an overloaded cluster sees at most one repeat of a slow
// request, not a storm of them.
func (s *Store) do(ctx context.Context, op string, idempotent bool, f func(context.Context) error) error {
	if s.isClosed() {
		return fmt.Errorf("%w: etcd %s: %w", store.ErrUnavailable, op, ErrClosed)
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	// A member that lost its leader answers at once instead of holding the
	// request until the deadline, and the retry goes to another member.
	rctx := clientv3.WithRequireLeader(cctx)
	attempt := s.cfg.RequestTimeout
	if idempotent {
		attempt = max(s.cfg.RequestTimeout/3, min(s.cfg.RequestTimeout, time.Second))
	}
	for {
		actx, acancel := context.WithTimeout(rctx, attempt)
		err := f(actx)
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
		acancel()
		attempt = s.cfg.RequestTimeout // the rest, bounded by cctx
		switch {
		case err == nil:
			return nil
		case cctx.Err() != nil:
			return s.wrap(cctx, ctx, op, err)
		case timedOut && idempotent:
			continue
		case !retriable(err, idempotent) || !ctxtime.Sleep(cctx, retryPause):
			return s.wrap(cctx, ctx, op, err)
		}
	}
}

// wrap words an etcd failure for an operator and wraps store.ErrUnavailable.
// The etcd error's text is kept, but not the error itself: callers branch on
// store errors only.
func (s *Store) wrap(cctx, parent context.Context, op string, err error) error {
	var why string
	switch {
	case parent.Err() != nil:
		why = "interrupted: " + parent.Err().Error()
	case cctx.Err() != nil || isDeadline(err) || isNoLeader(err):
		why = fmt.Sprintf("not done within %s by etcd at %s (is a majority of its members up and reachable?): %v",
			s.cfg.RequestTimeout, strings.Join(s.cfg.Endpoints, ","), err)
	default:
		why = err.Error()
	}
	return fmt.Errorf("%w: etcd %s: %s", store.ErrUnavailable, op, why)
}

// retriable: errors after which the request was certainly not applied are
// always retried; the other transient ones only for idempotent requests.
func retriable(err error, idempotent bool) bool {
	if isCanceled(err) || isDeadline(err) {
		return false
	}
	if isNoLeader(err) || strings.Contains(err.Error(), "proposal dropped") {
		return true
	}
	return idempotent && code(err) == codes.Unavailable
}

func code(err error) codes.Code {
	var ee rpctypes.EtcdError
	if errors.As(rpctypes.Error(err), &ee) {
		return ee.Code()
	}
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	return codes.Unknown
}

func isNoLeader(err error) bool {
	return errors.Is(rpctypes.Error(err), rpctypes.ErrNoLeader) || strings.Contains(err.Error(), "etcdserver: no leader")
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || code(err) == codes.Canceled
}

func isDeadline(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || code(err) == codes.DeadlineExceeded
}
