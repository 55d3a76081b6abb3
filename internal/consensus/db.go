package consensus

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble"
	dbm "github.com/cometbft/cometbft-db"
	cmtcfg "github.com/cometbft/cometbft/config"
)

// dbProvider opens CometBFT's databases (block store, state, evidence) as
// CometBFT's default does, with pebble, with two changes:
//   - pebble's log goes to the node's logger: by default pebble prints its
//     recovery notes ("WAL file ... replayed") to stderr on every restart;
//   - a read after Close finds nothing instead of panicking. CometBFT v1.0.1
//     closes its stores while per-peer consensus goroutines may still wake
//     from a sleep and read a commit (Reactor.queryMaj23Routine), and
//     pebble panics on a closed database ("pebble: closed"): that took the
//     whole test process down on a Node's Stop, and would take down the
//     process that embeds the Node.
func dbProvider(log *slog.Logger) cmtcfg.DBProvider {
	return func(ctx *cmtcfg.DBContext) (dbm.DB, error) {
		opts := &pebble.Options{Logger: pebbleLogger{log.With("db", ctx.ID)}}
		db, err := dbm.NewPebbleDBWithOpts(ctx.ID, ctx.Config.DBDir(), opts)
		if err != nil {
			return nil, err
		}
		return &closeSafeDB{DB: db}, nil
	}
}

var errDBClosed = errors.New("consensus: CometBFT database closed")

// closeSafeDB turns reads after Close into "not found" and writes after
// Close into errors; Close waits for reads in flight.
type closeSafeDB struct {
	dbm.DB
	mu     sync.RWMutex
	closed bool
}

func (d *closeSafeDB) Get(key []byte) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, nil
	}
	return d.DB.Get(key)
}

func (d *closeSafeDB) Has(key []byte) (bool, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return false, nil
	}
	return d.DB.Has(key)
}

func (d *closeSafeDB) write(f func() error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return errDBClosed
	}
	return f()
}

func (d *closeSafeDB) Set(k, v []byte) error { return d.write(func() error { return d.DB.Set(k, v) }) }
func (d *closeSafeDB) SetSync(k, v []byte) error {
	return d.write(func() error { return d.DB.SetSync(k, v) })
}
func (d *closeSafeDB) Delete(k []byte) error { return d.write(func() error { return d.DB.Delete(k) }) }
func (d *closeSafeDB) DeleteSync(k []byte) error {
	return d.write(func() error { return d.DB.DeleteSync(k) })
}

func (d *closeSafeDB) Iterator(start, end []byte) (dbm.Iterator, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, errDBClosed
	}
	return d.DB.Iterator(start, end)
}

func (d *closeSafeDB) ReverseIterator(start, end []byte) (dbm.Iterator, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, errDBClosed
	}
	return d.DB.ReverseIterator(start, end)
}

func (d *closeSafeDB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.DB.Close()
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) { p.l.Debug(fmt.Sprintf(format, args...)) }

// Fatalf is pebble's "the store is corrupt and cannot go on". Pebble's own
// logger exits the process; a library must not, so this panics instead.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("consensus: CometBFT database failure", "err", msg)
	panic("consensus: CometBFT database: " + msg)
}
