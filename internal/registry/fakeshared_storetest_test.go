package registry

import (
	"testing"

	"github.com/consortium/consortium/internal/store"
	"github.com/consortium/consortium/internal/store/storetest"
)

// TestFakeSharedStoreContract holds the fake shared store to the contract
// the SQLite and etcd stores pass, so registry tests on the fake see what a
// real store would give them. Reopening is a new replica's handle on the
// same shared state, as a restarted registrar would get from etcd.
func TestFakeSharedStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		s := newSharedStore()
		return func() store.Store { return s.replica() }
	})
}
