package ethclient

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; every error this package returns is an *Error that
// matches exactly one of them with errors.Is.
var (
	// ErrUnavailable means the client could not be reached or did not
	// answer in time: not started yet, restarting, a wrong endpoint, an
	// HTTP error status. Retrying later is the right response.
	ErrUnavailable = errors.New("ethereum client unavailable")
	// ErrMethodNotFound means the client does not serve the method,
	// usually because the admin API is not enabled on this endpoint
	// (geth: --http.api admin, or use the IPC socket).
	ErrMethodNotFound = errors.New("method not available on the ethereum client")
	// ErrInvalidEnode means a node record was refused, by this package
	// (no endpoint to dial) or by the client.
	ErrInvalidEnode = errors.New("invalid enode")
	// ErrRemote means the client answered the call with an error.
	ErrRemote = errors.New("ethereum client returned an error")
	// ErrBadResponse means the client's answer could not be understood.
	ErrBadResponse = errors.New("malformed response from the ethereum client")
)

// Error is a failed call. It carries text from the RPC library but none of
// its types, so callers depend on this package only.
type Error struct {
	// Method is the JSON-RPC method, or "dial".
	Method string
	// Kind is one of the sentinel errors above.
	Kind error
	// Code is the JSON-RPC error code when the client answered with one.
	Code int
	// Message is the detail: the client's error message or the library's.
	Message string
	// ctxErr is context.Canceled or context.DeadlineExceeded when the
	// caller's context ended the call.
	ctxErr error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("ethclient: %s: %v", e.Method, e.Kind)
	if e.Code != 0 {
		msg += fmt.Sprintf(" (code %d)", e.Code)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Unwrap lets errors.Is match the Kind and, for calls ended by the caller's
// context, context.Canceled or context.DeadlineExceeded.
func (e *Error) Unwrap() []error {
	if e.ctxErr != nil {
		return []error{e.Kind, e.ctxErr}
	}
	return []error{e.Kind}
}

// JSON-RPC error codes with a meaning of their own.
const codeMethodNotFound = -32601

// remoteKind classifies an error answer from the client. geth answers a bad
// enode with the default code and a message, so the message is looked at.
func remoteKind(code int, msg string) error {
	switch {
	case code == codeMethodNotFound:
		return ErrMethodNotFound
	case strings.HasPrefix(msg, "invalid enode"):
		return ErrInvalidEnode
	default:
		return ErrRemote
	}
}
