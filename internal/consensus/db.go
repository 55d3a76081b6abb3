package consensus

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble"
	dbm "github.com/cometbft/cometbft-db"
	cmtcfg "github.com/cometbft/cometbft/config"
)

// dbProvider opens CometBFT's databases (block store, state, evidence) as
// CometBFT's default does, with pebble, but with pebble's log routed to the
// node's logger: by default pebble prints its recovery notes ("WAL file ...
// replayed") straight to stderr on every restart.
func dbProvider(log *slog.Logger) cmtcfg.DBProvider {
	return func(ctx *cmtcfg.DBContext) (dbm.DB, error) {
		opts := &pebble.Options{Logger: pebbleLogger{log.With("db", ctx.ID)}}
		return dbm.NewPebbleDBWithOpts(ctx.ID, ctx.Config.DBDir(), opts)
	}
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
