package reconcile

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

var (
	// ErrNilNode means a list held a nil node.
	ErrNilNode = errors.New("nil node")
	// ErrConflict means one list named the same node ID with two
	// endpoints; the registrar never sends that, so Plan will not guess.
	ErrConflict = errors.New("same node ID with two endpoints")
)

// InputError points at the bad element of an Input.
type InputError struct {
	List  string // "desired", "previous" or "actual"
	Index int
	ID    enode.ID // set for ErrConflict
	Err   error    // ErrNilNode or ErrConflict
}

func (e *InputError) Error() string {
	if e.Err == ErrConflict {
		return fmt.Sprintf("reconcile: %s[%d]: %v: %s", e.List, e.Index, e.Err, e.ID)
	}
	return fmt.Sprintf("reconcile: %s[%d]: %v", e.List, e.Index, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }
