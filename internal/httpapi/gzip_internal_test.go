package httpapi

import (
	"bytes"
	"compress/gzip"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
)

// crc32Combine gives the CRC-32 of a concatenation from its parts'.
func TestCRC32Combine(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		a, b := make([]byte, rnd.IntN(20000)), make([]byte, rnd.IntN(20000))
		for i := range a {
			a[i] = byte(rnd.Uint32())
		}
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		want := crc32.ChecksumIEEE(append(append([]byte{}, a...), b...))
		if got := crc32Combine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), len(b)); got != want {
			t.Fatalf("len %d+%d: %08x, want %08x", len(a), len(b), got, want)
		}
	}
}

// spliced checks that gzipBody of lit, full without [cut0, cut1), lit
// gunzips to exactly those bytes, twice (the second from the cache).
func spliced(t *testing.T, full []byte, cut0, cut1 int, lit []byte) {
	t.Helper()
	g := group{full: full, cut0: cut0, cut1: cut1, aux: new(atomic.Pointer[any])}
	body := [][]byte{lit, full[:cut0], full[cut1:], lit}
	want := bytes.Join(body, nil)
	for range 2 {
		out, n := gzipBody(body, []group{g})
		z := bytes.Join(out, nil)
		if n != len(z) {
			t.Fatalf("length %d for %d bytes", n, len(z))
		}
		zr, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("full %d bytes, cut [%d, %d): %v; %d bytes back, want %d", len(full), cut0, cut1, err, len(got), len(want))
		}
	}
}

// FuzzGzipSplice: any rendering with any range cut out, between literal
// texts, compresses to a gzip member that gunzips (CRC and size checked)
// to exactly the plain body.
func FuzzGzipSplice(f *testing.F) {
	f.Add([]byte("enode://abc@10.0.0.1:30303,"), uint16(300), uint16(0), uint16(27), []byte(`{"static":[`))
	f.Add([]byte("x"), uint16(9000), uint16(4096), uint16(4097), []byte{})
	f.Add([]byte("0123456789abcdef"), uint16(5000), uint16(8191), uint16(12289), []byte("]}\n"))
	f.Fuzz(func(t *testing.T, unit []byte, reps, c0, c1 uint16, lit []byte) {
		if len(unit) == 0 || len(unit)*int(reps) > 1<<17 {
			return
		}
		full := bytes.Repeat(unit, int(reps))
		for i := range full {
			full[i] ^= byte(i * 7) // vary it so chunks differ
		}
		cut0, cut1 := int(c0)%(len(full)+1), int(c1)%(len(full)+1)
		if cut0 > cut1 {
			cut0, cut1 = cut1, cut0
		}
		spliced(t, full, cut0, cut1, lit)
	})
}

// FuzzAcceptsGzip: any header parses without panicking, and only one that
// names gzip (or *) accepts it.
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"gzip", "br, gzip;q=0.5", "*;q=0", "identity", "gzip;q=x", "x-gzip ; Q=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if acceptsGzip(h) && !strings.Contains(strings.ToLower(h), "gzip") && !strings.Contains(h, "*") {
			t.Fatalf("%q accepted gzip", h)
		}
	})
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "deflate, gzip": true, "br, gzip;q=0.8": true,
		"gzip;q=0": false, "gzip; q=0.0": false, "*": true, "*;q=0": false, "identity": false,
		"gzip;q=abc": false, "x-gzip": true, "gzipx": false,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("%q: %v, want %v", h, got, want)
		}
	}
}
