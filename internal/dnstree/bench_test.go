package dnstree

import (
	"context"
	"fmt"
	"testing"

	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store/sqlite"
	"github.com/consortium/consortium/internal/testutil"
)

// BenchmarkUpdate measures one Update on a real registry of 10 members
// with 100 nodes each (10 of them public), after a change that moves one
// member's answer: what each change in the directory costs the registrar.
//
//	go test -run XXX -bench Update -benchtime 20x ./internal/dnstree
func BenchmarkUpdate(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := registry.Open(ctx, st, registry.Config{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	const members, perMember, public = 10, 100, 10
	for m := range members {
		name := fmt.Sprintf("m%d", m)
		if _, err := r.AddMember(ctx, registry.Principal{Admin: true}, name); err != nil {
			b.Fatal(err)
		}
		for j := range perMember {
			key := testutil.Key(b)
			reg := registry.Registration{Role: "tx", ENR: testutil.ENR(b, key, 1, fmt.Sprintf("10.%d.%d.%d", m+1, j/250, j%250+1), 30303, 30303)}
			if j < public {
				reg.Role = "public"
				reg.PublicENR = testutil.ENR(b, key, 1, fmt.Sprintf("198.51.%d.%d", m+1, j+1), 30303, 30303)
			}
			if _, _, err := r.Register(ctx, registry.Principal{Name: name}, reg); err != nil {
				b.Fatal(err)
			}
		}
	}
	tr := newTrees(b, NewRegistrySource(r))
	if err := tr.Update(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		key := testutil.Key(b)
		if _, _, err := r.Register(ctx, registry.Principal{Name: "m0"}, registry.Registration{Role: "tx", ENR: testutil.ENR(b, key, 1, fmt.Sprintf("10.1.9.%d", i%250+1), 30303, 30303)}); err != nil {
			b.Fatal(err)
		}
		signed := tr.Signed()
		b.StartTimer()
		if err := tr.Update(); err != nil {
			b.Fatal(err)
		}
		if tr.Signed() != signed+1 {
			b.Fatalf("%d trees signed for one member's change", tr.Signed()-signed)
		}
	}
}
