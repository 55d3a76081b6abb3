package governance

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzApplySequence drives random sequences of proposals, votes, expiries
// and heights through Apply and checks, after every step, what the rest of
// the system relies on: a refusal changes nothing; a success yields a
// state that round-trips through Marshal, its updates are the Diff, no
// pending proposal sits over the threshold (it would have passed) and
// every pending change could still apply.
func FuzzApplySequence(f *testing.F) {
	f.Add([]byte{0, 0, 4, 1, 1, 0, 1, 2, 0})
	f.Add([]byte{0, 1, 1, 1, 2, 0, 1, 3, 0, 0, 2, 8, 3, 0, 7, 2, 0, 0})
	f.Add([]byte{0, 0, 9, 0, 1, 5, 1, 2, 0, 1, 3, 1, 1, 2, 1})
	pool := []string{"a", "b", "c", "d", "e", "f"}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 300 {
			return
		}
		s := members(t, "a", "b", "c", "d")
		s.ProposalTTL = 20
		height := uint64(1)
		for i := 0; i+2 < len(data); i += 3 {
			op, x, y := data[i]%4, int(data[i+1]), int(data[i+2])
			var tx []byte
			switch op {
			case 0:
				name := pool[y%len(pool)]
				var a Action
				switch (y / len(pool)) % 3 {
				case 0:
					a = Action{Kind: ActionAdd, Member: name, PubKey: pub(pool[x%len(pool)]), Power: int64(1 + y%3)}
				case 1:
					a = remove(name)
				default:
					a = rotate(name, pool[x%len(pool)]+"2")
				}
				tx = proposeTx(t, pool[x%len(pool)], prop(a, height-uint64(y%3)%height))
			case 1:
				if len(s.Pending) == 0 {
					continue
				}
				tx = voteTx(t, pool[x%len(pool)], s.Pending[y%len(s.Pending)].ID)
			case 2:
				s, _ = Expire(s, height)
				continue
			default:
				height += uint64(y % 8)
				continue
			}
			before := s.Marshal()
			n, _, up, err := Apply(s, tx, height)
			if err != nil {
				if n != s || !bytes.Equal(s.Marshal(), before) {
					t.Fatalf("refusal %v changed the state", err)
				}
				continue
			}
			if !sameUpdates(up, Diff(s, n)) {
				t.Fatalf("updates %v, Diff %v", up, Diff(s, n))
			}
			back, err := Unmarshal(n.Marshal())
			if err != nil || back.Hash() != n.Hash() {
				t.Fatalf("state does not round-trip: %v", err)
			}
			need := Needed(n.TotalPower())
			for _, p := range n.Pending {
				if n.Tally(p.Votes) >= need {
					t.Fatalf("proposal %s has %d of %d and did not pass", p.ID.Short(), n.Tally(p.Votes), need)
				}
				if err := n.checkAction(p.Proposal.Action); err != nil {
					t.Fatalf("pending %s can no longer apply: %v", p.Proposal.Action, err)
				}
			}
			s = n
		}
	})
}

// FuzzUnmarshalJournal: the journal decoder never panics on any file, and
// what it accepts encodes back to the same bytes and answers At for its
// last height.
func FuzzUnmarshalJournal(f *testing.F) {
	s := members(f, "a", "b", "c", "d")
	j := NewJournal(s, 5)
	good := j.Marshal()
	f.Add(good)
	f.Add(good[:len(good)-32]) // the payload alone
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	j.Record(3, s)
	f.Add(j.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		// b as a whole file, and b as a payload given a valid checksum so
		// that the fuzzer reaches the decoder behind it.
		sum := journalSum(b)
		for _, file := range [][]byte{b, append(bytes.Clone(b), sum[:]...)} {
			j, err := UnmarshalJournal(file)
			if err != nil {
				if !errors.Is(err, ErrState) {
					t.Fatalf("error %v is not ErrState", err)
				}
				continue
			}
			if !bytes.Equal(j.Marshal(), file) {
				t.Fatal("accepted journal does not encode back to its bytes")
			}
			if _, err := j.At(j.Last()); err != nil {
				t.Fatalf("At(Last): %v", err)
			}
		}
	})
}
