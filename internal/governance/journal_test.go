package governance

import (
	"bytes"
	"errors"
	"testing"
)

// journalRun applies a fixed change sequence to a journal: e is proposed
// at 3, voted at 5 and 8 (added at 8), and expiry does nothing until 103.
func journalRun(t *testing.T, j *Journal, s *State, from, to uint64) *State {
	t.Helper()
	p := prop(add("e"), 3)
	txs := map[uint64][]byte{3: proposeTx(t, "a", p), 5: voteTx(t, "b", p.ID()), 8: voteTx(t, "c", p.ID())}
	for h := from; h <= to; h++ {
		s, _ = Expire(s, h)
		if tx, ok := txs[h]; ok {
			s, _, _ = mustApply(t, s, tx, h)
		}
		j.Record(h, s)
	}
	return s
}

func TestJournal(t *testing.T) {
	genesis := members(t, "a", "b", "c", "d")
	j := NewJournal(genesis, 0)
	end := journalRun(t, j, genesis, 1, 20)
	if j.Last() != 20 || len(j.entries) != 4 { // genesis, 3, 5, 8
		t.Fatalf("last %d, %d entries", j.Last(), len(j.entries))
	}
	for h, want := range map[uint64]int{0: 0, 2: 0, 3: 1, 4: 1, 7: 1, 8: 0, 20: 0} {
		s, err := j.At(h)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Pending) != want {
			t.Errorf("At(%d): %d pending, want %d", h, len(s.Pending), want)
		}
	}
	if s, _ := j.At(20); s.Hash() != end.Hash() {
		t.Fatal("At(Last) is not the last state")
	}
	if _, err := j.At(21); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("At(21): %v", err)
	}

	// A restart: geth came back at 6; the app reports 6, truncates, and
	// CometBFT replays 7..20: the journal ends byte for byte the same.
	again, err := UnmarshalJournal(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	at6, _ := again.At(6)
	again.Truncate(6)
	if again.Last() != 6 {
		t.Fatal("Truncate did not move Last")
	}
	journalRun(t, again, at6, 7, 20)
	if !bytes.Equal(again.Marshal(), j.Marshal()) {
		t.Fatal("replay gave another journal")
	}
	// Recording a height again rewrites from there.
	again.Record(4, at6)
	if again.Last() != 4 {
		t.Fatal("re-recording did not truncate")
	}
}

func TestJournalPrune(t *testing.T) {
	genesis := members(t, "a", "b", "c", "d")
	j := NewJournal(genesis, 5)
	journalRun(t, j, genesis, 1, 20)
	// Heights 15..20 must be answerable, and the state as of 15 is the
	// one recorded at 8.
	for h := uint64(15); h <= 20; h++ {
		if _, err := j.At(h); err != nil {
			t.Fatalf("At(%d): %v", h, err)
		}
	}
	if _, err := j.At(7); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("At(7) after pruning: %v", err)
	}
	if len(j.entries) != 1 {
		t.Fatalf("%d entries kept, want 1", len(j.entries))
	}
}

func TestUnmarshalJournalRefuses(t *testing.T) {
	j := NewJournal(members(t, "a"), 0)
	good := j.Marshal()
	for name, b := range map[string][]byte{
		"empty":    nil,
		"garbage":  {1, 2, 3},
		"trailing": append(bytes.Clone(good), 0),
	} {
		if _, err := UnmarshalJournal(b); !errors.Is(err, ErrState) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestUnmarshalJournalTorn: a write cut short at any byte, or one byte
// damaged anywhere, is told apart as ErrJournalDamaged, never read as an
// older or different journal.
func TestUnmarshalJournalTorn(t *testing.T) {
	genesis := members(t, "a", "b", "c", "d")
	j := NewJournal(genesis, 0)
	journalRun(t, j, genesis, 1, 20)
	good := j.Marshal()
	if _, err := UnmarshalJournal(good); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(good); n++ {
		if _, err := UnmarshalJournal(good[:n]); !errors.Is(err, ErrJournalDamaged) {
			t.Fatalf("cut at %d of %d bytes: %v, want ErrJournalDamaged", n, len(good), err)
		}
	}
	for i := 0; i < len(good); i++ {
		bad := bytes.Clone(good)
		bad[i] ^= 0x10
		if _, err := UnmarshalJournal(bad); !errors.Is(err, ErrJournalDamaged) {
			t.Fatalf("byte %d flipped: %v, want ErrJournalDamaged", i, err)
		}
	}
}
