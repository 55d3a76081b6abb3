package bootnode

import "errors"

// Errors returned by New and Start. Errors from go-ethereum and the operating
// system are wrapped behind these, so callers branch with errors.Is and never
// on a library's error text.
var (
	// ErrBadListenAddr is returned for a ListenAddr that is not host:port.
	ErrBadListenAddr = errors.New("bootnode: bad listen address")
	// ErrBadNetRestrict is returned for a NetRestrict that is not a comma-separated CIDR list.
	ErrBadNetRestrict = errors.New("bootnode: bad netrestrict list")
	// ErrBadExternalIP is returned for an ExternalIP that cannot be advertised.
	ErrBadExternalIP = errors.New("bootnode: bad external IP")
	// ErrBadBootnode is returned for a nil or incomplete entry in Bootnodes.
	ErrBadBootnode = errors.New("bootnode: bad bootstrap node")
	// ErrKeyFile is returned when the node key can be neither read nor created.
	ErrKeyFile = errors.New("bootnode: node key file")
	// ErrNodeDB is returned when the node database in DataDir cannot be opened
	// (typically another process holds its lock).
	ErrNodeDB = errors.New("bootnode: node database")
	// ErrListen is returned by Start when the UDP socket cannot be bound.
	ErrListen = errors.New("bootnode: listen")
	// ErrStarted is returned by a second call to Start.
	ErrStarted = errors.New("bootnode: already started")
	// ErrClosed is returned by Start after Close.
	ErrClosed = errors.New("bootnode: closed")
)

// errRestricted is what the socket returns for a write to an address outside
// NetRestrict; go-ethereum only logs it.
var errRestricted = errors.New("bootnode: destination outside netrestrict")
