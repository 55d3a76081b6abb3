package devnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/consortium/consortium/internal/atomicfile"
	"github.com/consortium/consortium/internal/consortiuminit"
)

// Files the devnet keeps in its work directory, beside init's.
const (
	// StateFile is what a devnet publishes about itself while it runs:
	// the registrar's URL, every node's RPC and process ID, and the members
	// that joined after init. AddMember and tools read it.
	StateFile = "devnet.json"
	lockFile  = ".devnet.lock"
)

// State is the content of StateFile.
type State struct {
	// PID is the devnet's process while it runs, 0 once it stopped.
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
	Registrar string    `json:"registrar"`
	// AdminCredential is the file holding the registrar's administrator
	// credential (the file, never the credential).
	AdminCredential string      `json:"admin_credential_file"`
	Nodes           []NodeState `json:"nodes"`
	// Added are the members that joined after init, with the nodes made
	// for them, as consortium.json describes init's members.
	Added []consortiuminit.Member `json:"added_members,omitempty"`
}

// NodeState is one node in StateFile.
type NodeState struct {
	Member string `json:"member"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	ID     string `json:"id"`
	// Enode is the node's devp2p (or, for a bootnode, discovery) address.
	Enode  string `json:"enode"`
	RPC    string `json:"rpc,omitempty"`
	IPC    string `json:"ipc,omitempty"`
	Signer string `json:"signer,omitempty"`
	PID    int    `json:"pid,omitempty"`
	Log    string `json:"log,omitempty"`
}

// ReadState reads dir's StateFile; a missing file is an empty State.
func ReadState(dir string) (State, error) {
	var s State
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return s, nil
}

func writeState(dir string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, StateFile), append(b, '\n'), 0o644)
}

// lockDir takes dir's lock for the life of this process; the kernel drops
// it when the process dies, however it dies.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		who := ""
		if s, err := ReadState(dir); err == nil && s.PID != 0 {
			who = ", pid " + strconv.Itoa(s.PID)
		}
		return nil, fmt.Errorf("%w (%s%s)", ErrLocked, dir, who)
	}
	return f, nil
}

// checkPorts makes sure every port of specs is free now: the devp2p port
// for TCP and UDP (a bootnode: UDP only), HTTP and Engine API for TCP.
func checkPorts(e *env, specs []nodeSpec) error {
	for _, s := range specs {
		p2p, http, auth := e.ports(s)
		if e.mode == BFT && s.Role != consortiuminit.RoleBootnode {
			if err := probeTCP(e.cmtPort(s)); err != nil {
				return fmt.Errorf("%w (TCP 127.0.0.1:%d, CometBFT P2P of %s)", ErrPortTaken, e.cmtPort(s), s.Label())
			}
		}
		if e.mode == BFT && s.Role == consortiuminit.RoleValidator {
			if err := probeTCP(e.rpcPort(s)); err != nil {
				return fmt.Errorf("%w (TCP 127.0.0.1:%d, consensus RPC of %s)", ErrPortTaken, e.rpcPort(s), s.Label())
			}
		}
		if err := probeUDP(p2p); err != nil {
			return fmt.Errorf("%w (UDP 127.0.0.1:%d, discovery of %s)", ErrPortTaken, p2p, s.Label())
		}
		if s.Role == consortiuminit.RoleBootnode {
			continue
		}
		for _, p := range []struct {
			port int
			what string
		}{{p2p, "devp2p"}, {http, "HTTP RPC"}, {auth, "Engine API"}} {
			if err := probeTCP(p.port); err != nil {
				return fmt.Errorf("%w (TCP 127.0.0.1:%d, %s of %s)", ErrPortTaken, p.port, p.what, s.Label())
			}
		}
	}
	return nil
}

func probeTCP(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

func probeUDP(port int) error {
	c, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return c.Close()
}
