package noderecord

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
)

// sign signs a record for key (testutil.ENR).
var sign = testutil.ENR

func TestVerify(t *testing.T) {
	k1, _ := crypto.GenerateKey()
	k2, _ := crypto.GenerateKey()
	priv := sign(t, k1, 5, "10.0.0.1", 30303, 30303)
	pub := sign(t, k1, 5, "203.0.113.7", 30303, 30303)
	other := sign(t, k2, 1, "203.0.113.8", 30303, 30303)
	noEP := sign(t, k1, 1, "", 0, 0)
	udpOnly := sign(t, k1, 1, "10.0.0.2", 0, 30301)
	pubUDPOnly := sign(t, k1, 5, "203.0.113.7", 0, 30303)
	multicast := sign(t, k1, 1, "224.0.0.1", 30303, 30303)
	broadcast := sign(t, k1, 1, "255.255.255.255", 30303, 30303)
	multicast6 := sign(t, k1, 1, "ff02::1", 30303, 30303)
	tampered := []byte(priv)
	tampered[len(tampered)-3] ^= 1 // flips a bit of the payload after the signature
	for _, tc := range []struct {
		name, role, enr, pub string
		err                  error
	}{
		{"validator", "validator", priv, "", nil},
		{"public with pub record", "public", priv, pub, nil},
		{"bootnode udp only", "bootnode", udpOnly, "", nil},
		{"bad role", "miner", priv, "", ErrBadRole},
		{"odd case role", "Validator", priv, "", ErrBadRole},
		{"public without pub", "public", priv, "", ErrPublicENR},
		{"pub on non-public", "tx", priv, pub, ErrPublicENR},
		{"pub signed by other key", "public", priv, other, ErrIDMismatch},
		{"no endpoint", "tx", noEP, "", ErrNoEndpoint},
		{"tx without tcp", "tx", udpOnly, "", ErrNoEndpoint},
		{"public record without tcp", "public", priv, pubUDPOnly, ErrNoEndpoint},
		{"multicast", "tx", multicast, "", ErrNoEndpoint}, // go-ethereum drops it from the record
		{"broadcast", "bootnode", broadcast, "", ErrAddress},
		{"multicast v6", "tx", multicast6, "", ErrNoEndpoint},
		{"public broadcast", "public", priv, broadcast, ErrAddress},
		{"not enr", "tx", "enode://abc@1.2.3.4:1", "", ErrMalformedENR},
		{"garbage", "tx", "enr:!!!!", "", ErrMalformedENR},
		{"tampered", "tx", string(tampered), "", ErrMalformedENR},
		{"huge", "tx", "enr:" + strings.Repeat("A", 1000), "", ErrMalformedENR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Verify(tc.role, tc.enr, tc.pub)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && p.Node.ID != enode.PubkeyToIDV4(&k1.PublicKey) {
				t.Fatalf("derived ID %v is not the signer's", p.Node.ID)
			}
		})
	}
}

func TestCheckPublic(t *testing.T) {
	for _, tc := range []struct {
		ip             string
		ok, loopbackOK bool // without and with the test network's flag
	}{
		{"203.0.113.7", true, true},
		{"10.1.2.3", true, true},          // RFC 1918
		{"172.16.0.9", true, true},        // RFC 1918
		{"192.168.1.1", true, true},       // RFC 1918
		{"fd00::1", true, true},           // RFC 4193 (ULA)
		{"2001:db8::7", true, true},       // global unicast
		{"127.0.0.1", false, true},        // loopback
		{"127.9.9.9", false, true},        // loopback
		{"::1", false, true},              // loopback
		{"169.254.169.254", false, false}, // link-local: cloud metadata
		{"fe80::1", false, false},         // link-local
		{"0.0.0.0", false, false},         // unspecified
		{"::", false, false},              // unspecified
		{"224.0.0.1", false, false},       // multicast
		{"ff02::1", false, false},         // multicast
		{"255.255.255.255", false, false},
	} {
		ip := net.ParseIP(tc.ip)
		if err := CheckPublic(ip, false); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrAddress)) {
			t.Errorf("CheckPublic(%s) = %v, want ok=%v", tc.ip, err, tc.ok)
		}
		if err := CheckPublic(ip, true); (err == nil) != tc.loopbackOK {
			t.Errorf("CheckPublic(%s, allow loopback) = %v, want ok=%v", tc.ip, err, tc.loopbackOK)
		}
	}
}

func TestParseID(t *testing.T) {
	good := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{good, true}, {strings.ToUpper(good), false}, {good[:63], false}, {good + "a", false},
		{strings.Repeat("zz", 32), false}, {good[:62] + ",a", false}, {good[:62] + "\na", false},
	} {
		_, err := ParseID(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseID(%q) err=%v want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	k, _ := crypto.GenerateKey()
	f.Add(sign(f, k, 1, "127.0.0.1", 30303, 30303))
	f.Add("enr:")
	f.Add("enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlkgnY0")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if strings.Contains(err.Error(), s) && len(s) > 8 {
				t.Fatalf("error echoes the input")
			}
			return
		}
		// A record that verifies must round-trip to the same ID.
		again, err := Parse(r.ENR)
		if err != nil || again.ID != r.ID {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

func TestConsensusEntry(t *testing.T) {
	key, _ := crypto.GenerateKey()
	id := bytes.Repeat([]byte{0xab}, ConsensusIDLen)
	sign := func(e enr.Entry) string {
		var r enr.Record
		r.Set(enr.IPv4(net.IPv4(10, 0, 0, 5)))
		r.Set(enr.TCP(30303))
		if e != nil {
			r.Set(e)
		}
		if err := enode.SignV4(&r, key); err != nil {
			t.Fatal(err)
		}
		n, err := enode.New(enode.ValidSchemes, &r)
		if err != nil {
			t.Fatal(err)
		}
		return n.String()
	}
	rec, err := Parse(sign(Consensus{ID: id, Port: 26656}))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("ab", 20) + "@10.0.0.5:26656"; rec.ConsensusAddr() != want {
		t.Fatalf("ConsensusAddr = %q, want %q", rec.ConsensusAddr(), want)
	}
	rec, err = Parse(sign(nil))
	if err != nil || rec.ConsensusAddr() != "" {
		t.Fatalf("no cmt entry: %v %q", err, rec.ConsensusAddr())
	}
	for name, e := range map[string]enr.Entry{
		"short id":  Consensus{ID: id[:19], Port: 26656},
		"zero port": Consensus{ID: id, Port: 0},
		"not list":  enr.WithEntry("cmt", uint64(7)),
	} {
		if _, err := Parse(sign(e)); !errors.Is(err, ErrBadConsensus) {
			t.Errorf("%s: err = %v, want ErrBadConsensus", name, err)
		}
	}
	if _, err := ParseConsensusID("zz"); !errors.Is(err, ErrBadConsensus) {
		t.Errorf("ParseConsensusID: %v", err)
	}
}
