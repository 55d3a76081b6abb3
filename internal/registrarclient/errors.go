package registrarclient

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrUnreachable wraps transport failures: the registrar did not answer.
var ErrUnreachable = errors.New("registrar unreachable")

// ErrBadURL is wrapped by every error about the configured URL list.
var ErrBadURL = errors.New("bad registrar URL")

// APIError is an error answered by the registrar.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("registrar: %s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

// IsStatus reports whether err is an APIError with that status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// unreachable is a transport failure at one URL. It matches ErrUnreachable
// and nothing else: the HTTP client's error stays inside this package.
type unreachable struct {
	cause error // names the method and the URL when it is a *url.Error
}

func (e *unreachable) Error() string { return ErrUnreachable.Error() + ": " + e.cause.Error() }

func (e *unreachable) Is(target error) bool { return target == ErrUnreachable }

// Attempt is one URL tried for a request, and how it failed.
type Attempt struct {
	URL string
	Err error
}

// FailoverError is returned when a request was sent to several URLs and none
// gave an answer: each failed to connect, broke off, timed out or answered
// 502, 503 or 504. With a single URL (or a single attempt) the client returns
// that attempt's error alone, as before failover existed.
//
// It matches ErrUnreachable when any attempt was a transport failure, an
// *APIError (errors.As) when any URL answered 502/503/504, and the context's
// error when the caller's context ended during the last attempt.
type FailoverError struct {
	Tried []Attempt // in the order tried
}

func (e *FailoverError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "registrar: no answer from the %d URLs tried: ", len(e.Tried))
	for i, a := range e.Tried {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.URL + ": " + reason(a.Err))
	}
	return b.String()
}

func (e *FailoverError) Unwrap() []error {
	errs := make([]error, len(e.Tried))
	for i, a := range e.Tried {
		errs[i] = a.Err
	}
	return errs
}

// reason is an attempt's failure without the URL, which FailoverError
// already prints.
func reason(err error) string {
	var ue *unreachable
	var uerr *url.Error
	if errors.As(err, &ue) && errors.As(ue.cause, &uerr) {
		return ErrUnreachable.Error() + ": " + uerr.Err.Error()
	}
	return err.Error()
}
