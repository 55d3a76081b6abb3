// Package sqlite is the registrar's embedded store: one SQLite file in WAL
// mode through the pure-Go modernc.org/sqlite driver, so the registrar runs
// on a bare machine with no cgo and no database server.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/consortium/consortium/internal/store"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

const schema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (
  name TEXT PRIMARY KEY, hash TEXT NOT NULL, created INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0, revoked_at INTEGER NOT NULL DEFAULT 0,
  prev_hash TEXT NOT NULL DEFAULT '', prev_until INTEGER NOT NULL DEFAULT 0,
  chain_hash TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS nodes (
  id TEXT PRIMARY KEY, member TEXT NOT NULL, role TEXT NOT NULL, enr TEXT NOT NULL,
  public_enr TEXT NOT NULL DEFAULT '', registered INTEGER NOT NULL, updated INTEGER NOT NULL,
  expires INTEGER NOT NULL, status BLOB,
  public_seq INTEGER NOT NULL DEFAULT 0, admin_removed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS legacy (
  network TEXT NOT NULL, enode TEXT NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY (network, enode));
`

// columns are added to a database an earlier version made: name -> the
// ALTER TABLE that adds it.
var columns = []struct{ table, name, add string }{
	{"nodes", "public_seq", "ALTER TABLE nodes ADD COLUMN public_seq INTEGER NOT NULL DEFAULT 0"},
	{"nodes", "admin_removed", "ALTER TABLE nodes ADD COLUMN admin_removed INTEGER NOT NULL DEFAULT 0"},
	{"members", "prev_hash", "ALTER TABLE members ADD COLUMN prev_hash TEXT NOT NULL DEFAULT ''"},
	{"members", "prev_until", "ALTER TABLE members ADD COLUMN prev_until INTEGER NOT NULL DEFAULT 0"},
	{"members", "chain_hash", "ALTER TABLE members ADD COLUMN chain_hash TEXT NOT NULL DEFAULT ''"},
}

// FileName is the database file inside the data directory.
const FileName = "registrar.db"

// Store is a store.Store on one SQLite file.
type Store struct {
	db *sql.DB
	// The statements every registration, renewal batch and heartbeat runs,
	// prepared once (issue 19: each was parsed again on every call).
	putNode, renewStatus, renewPlain, setAlive *sql.Stmt
}

const (
	putNodeSQL = `INSERT INTO nodes(id, member, role, enr, public_enr, registered, updated, expires, status, public_seq, admin_removed) VALUES(?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT(id) DO UPDATE SET member=excluded.member, role=excluded.role, enr=excluded.enr, public_enr=excluded.public_enr,
 registered=excluded.registered, updated=excluded.updated, expires=excluded.expires, status=excluded.status,
 public_seq=excluded.public_seq, admin_removed=excluded.admin_removed`
	renewStatusSQL = "UPDATE nodes SET expires=?, status=? WHERE id=?"
	renewPlainSQL  = "UPDATE nodes SET expires=? WHERE id=?"
	setAliveSQL    = "INSERT INTO meta(key, value) VALUES('alive', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value"
)

// Open opens (creating if needed) the database in dir.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	// The directory holds the database and its WAL files: nobody else may
	// list or replace them, whatever mode it had.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: the store's directory %s cannot be made 0700: %v", store.ErrUnavailable, dir, err)
	}
	return OpenFile(ctx, filepath.Join(dir, FileName))
}

// OpenFile opens the database at path.
func OpenFile(ctx context.Context, path string) (*Store, error) {
	// synchronous=NORMAL in WAL mode keeps every committed transaction across a
	// process kill (the WAL is in the OS page cache); only an OS crash could
	// lose the last ones. busy_timeout covers a second process (migrate).
	// Create the file 0600 before SQLite does: it gives the -wal and -shm
	// files the database file's mode, and they hold the same data.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	} else {
		f.Close()
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	// One connection: SQLite has one writer anyway, and this keeps the
	// pragmas on the connection that does the work.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	for _, c := range columns {
		var have int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM pragma_table_info(?) WHERE name=?", c.table, c.name).Scan(&have); err != nil {
			db.Close()
			return nil, fmt.Errorf("%w: %v", store.ErrUnavailable, err)
		}
		if have == 0 {
			if _, err := db.ExecContext(ctx, c.add); err != nil {
				db.Close()
				return nil, fmt.Errorf("%w: adding column %s.%s: %v", store.ErrUnavailable, c.table, c.name, err)
			}
		}
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		db.Close()
		return nil, fmt.Errorf("%w: journal mode %q, want wal (%v)", store.ErrUnavailable, mode, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	st := &Store{db: db}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{{&st.putNode, putNodeSQL}, {&st.renewStatus, renewStatusSQL}, {&st.renewPlain, renewPlainSQL}, {&st.setAlive, setAliveSQL}} {
		if *p.stmt, err = db.PrepareContext(ctx, p.sql); err != nil {
			st.Close()
			return nil, fmt.Errorf("%w: preparing a statement: %v", store.ErrUnavailable, err)
		}
	}
	return st, nil
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
}

// Load reads the whole state.
func (s *Store) Load(ctx context.Context) (*State, error) {
	st := &store.State{}
	err := s.db.QueryRowContext(ctx, "SELECT value FROM meta WHERE key='admin_hash'").Scan(&st.AdminHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, wrap(err)
	}
	var alive int64
	err = s.db.QueryRowContext(ctx, "SELECT CAST(value AS INTEGER) FROM meta WHERE key='alive'").Scan(&alive)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, wrap(err)
	}
	if alive > 0 {
		st.Alive = store.FromMillis(alive)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT name, hash, created, revoked, revoked_at, prev_hash, prev_until, chain_hash FROM members ORDER BY name")
	if err != nil {
		return nil, wrap(err)
	}
	for rows.Next() {
		var m store.Member
		var created, revokedAt, prevUntil int64
		if err := rows.Scan(&m.Name, &m.Hash, &created, &m.Revoked, &revokedAt, &m.PrevHash, &prevUntil, &m.ChainHash); err != nil {
			rows.Close()
			return nil, wrap(err)
		}
		m.Created, m.RevokedAt, m.PrevUntil = store.FromMillis(created), store.FromMillis(revokedAt), store.FromMillis(prevUntil)
		st.Members = append(st.Members, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap(err)
	}
	rows, err = s.db.QueryContext(ctx, "SELECT id, member, role, enr, public_enr, registered, updated, expires, status, public_seq, admin_removed FROM nodes ORDER BY id")
	if err != nil {
		return nil, wrap(err)
	}
	for rows.Next() {
		var n store.Node
		var reg, upd, exp int64
		var pubSeq int64
		if err := rows.Scan(&n.ID, &n.Member, &n.Role, &n.ENR, &n.PublicENR, &reg, &upd, &exp, &n.Status, &pubSeq, &n.AdminRemoved); err != nil {
			rows.Close()
			return nil, wrap(err)
		}
		n.Registered, n.Updated, n.Expires = store.FromMillis(reg), store.FromMillis(upd), store.FromMillis(exp)
		n.PublicSeq = uint64(pubSeq)
		st.Nodes = append(st.Nodes, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap(err)
	}
	rows, err = s.db.QueryContext(ctx, "SELECT network, enode, expires FROM legacy ORDER BY network, enode")
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var l store.Legacy
		var exp int64
		if err := rows.Scan(&l.Network, &l.Enode, &exp); err != nil {
			return nil, wrap(err)
		}
		l.Expires = store.FromMillis(exp)
		st.Legacy = append(st.Legacy, l)
	}
	return st, wrap(rows.Err())
}

// State aliases store.State for brevity in this file.
type State = store.State

func (s *Store) SetAdminHash(ctx context.Context, hash string) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO meta(key, value) VALUES('admin_hash', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", hash)
	return wrap(err)
}

// SetAlive records t as the last time the registrar was up (store.Heartbeat).
func (s *Store) SetAlive(ctx context.Context, t time.Time) error {
	_, err := s.setAlive.ExecContext(ctx, strconv.FormatInt(store.Millis(t), 10))
	return wrap(err)
}

func (s *Store) PutMember(ctx context.Context, m store.Member) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO members(name, hash, created, revoked, revoked_at, prev_hash, prev_until, chain_hash) VALUES(?,?,?,?,?,?,?,?)
ON CONFLICT(name) DO UPDATE SET hash=excluded.hash, created=excluded.created, revoked=excluded.revoked, revoked_at=excluded.revoked_at,
 prev_hash=excluded.prev_hash, prev_until=excluded.prev_until, chain_hash=excluded.chain_hash`,
		m.Name, m.Hash, store.Millis(m.Created), m.Revoked, store.Millis(m.RevokedAt), m.PrevHash, store.Millis(m.PrevUntil), m.ChainHash)
	return wrap(err)
}

func (s *Store) PutNode(ctx context.Context, n store.Node) error {
	_, err := s.putNode.ExecContext(ctx, n.ID, n.Member, n.Role, n.ENR, n.PublicENR, store.Millis(n.Registered), store.Millis(n.Updated), store.Millis(n.Expires), n.Status,
		int64(n.PublicSeq), n.AdminRemoved)
	return wrap(err)
}

// PutNodes writes ns in one transaction (store.NodeBatcher).
func (s *Store) PutNodes(ctx context.Context, ns []store.Node) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap(err)
	}
	defer tx.Rollback()
	put := tx.StmtContext(ctx, s.putNode)
	defer put.Close()
	for _, n := range ns {
		if _, err := put.ExecContext(ctx, n.ID, n.Member, n.Role, n.ENR, n.PublicENR, store.Millis(n.Registered), store.Millis(n.Updated), store.Millis(n.Expires), n.Status,
			int64(n.PublicSeq), n.AdminRemoved); err != nil {
			return wrap(err)
		}
	}
	return wrap(tx.Commit())
}

func (s *Store) Renew(ctx context.Context, rs []store.Renewal) error {
	if len(rs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap(err)
	}
	defer tx.Rollback()
	withStatus := tx.StmtContext(ctx, s.renewStatus)
	defer withStatus.Close()
	plain := tx.StmtContext(ctx, s.renewPlain)
	defer plain.Close()
	for _, r := range rs {
		if r.Status != nil {
			_, err = withStatus.ExecContext(ctx, store.Millis(r.Expires), r.Status, r.ID)
		} else {
			_, err = plain.ExecContext(ctx, store.Millis(r.Expires), r.ID)
		}
		if err != nil {
			return wrap(err)
		}
	}
	return wrap(tx.Commit())
}

func (s *Store) DeleteNode(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM nodes WHERE id=?", id)
	return wrap(err)
}

func (s *Store) PutLegacy(ctx context.Context, l store.Legacy) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO legacy(network, enode, expires) VALUES(?,?,?)
ON CONFLICT(network, enode) DO UPDATE SET expires=excluded.expires`, l.Network, l.Enode, store.Millis(l.Expires))
	return wrap(err)
}

func (s *Store) DeleteLegacy(ctx context.Context, network, enode string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM legacy WHERE network=? AND enode=?", network, enode)
	return wrap(err)
}

func (s *Store) Ping(ctx context.Context) error {
	var one int
	return wrap(s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one))
}

func (s *Store) Close() error {
	for _, st := range []*sql.Stmt{s.putNode, s.renewStatus, s.renewPlain, s.setAlive} {
		if st != nil {
			st.Close()
		}
	}
	return s.db.Close()
}

var _ store.Store = (*Store)(nil)
