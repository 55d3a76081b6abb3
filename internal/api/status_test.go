package api

import (
	"errors"
	"testing"
)

func TestParseStatus(t *testing.T) {
	id := "0000000000000000000000000000000000000000000000000000000000000001"
	val := "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678"
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"client":"Geth/v1.17.10","head":10,"peers":2,"syncing":false}`, true},
		{`{"peer_ids":["` + id + `"]}`, true},
		{`{"head":-1}`, false},
		{`{"peers":-1}`, false},
		{`{"unknown":1}`, false},
		{`{"head":1}{}`, false},
		{`{"peer_ids":["abc"]}`, false},
		{`[]`, false},
		{`{"consensus":{"height":7,"round":0,"proposer":"` + val + `","validators":[{"address":"` + val + `","name":"a","power":10,"signed":true}],"block_ms":1000}}`, true},
		{`{"consensus":{"height":-1}}`, false},
		{`{"consensus":{"proposer":"xyz"}}`, false},
		{`{"consensus":{"validators":[{"address":"` + val + `0","power":1}]}}`, false},
		{`{"consensus":{"validators":[{"power":1}]}}`, false},
		{`{"consensus":{"validators":[{"address":"` + val + `","power":-1}]}}`, false},
		{`{"consensus":{"extra":1}}`, false},
	} {
		_, err := ParseStatus([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("ParseStatus(%s) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("error %v is not ErrInvalid", err)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(`{"client":"x","head":1,"peers":1,"syncing":true}`))
	f.Add([]byte(`{"consensus":{"height":7,"round":1,"validators":[{"address":"A1B2C3D4E5F60718293A4B5C6D7E8F9012345678","power":1,"signed":true}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStatus(b)
		if err == nil && (s.Peers < 0 || len(s.Client) > 200 || len(s.PeerIDs) > MaxPeerIDs ||
			(s.Consensus != nil && (s.Consensus.Height < 0 || len(s.Consensus.Validators) > MaxValidators))) {
			t.Fatalf("accepted out-of-bounds status %+v", s)
		}
	})
}
