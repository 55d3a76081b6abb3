package httpapi

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/consortium/consortium/internal/registry"
)

// Gzip for large answers (issue 19): a full peer set of ~8,000 peers is
// over a megabyte and compresses to about half. Compressing it per request
// would cost more CPU than serving it, and every node's answer differs (its
// own entry is left out), so the group's rendering is compressed once, in
// chunks of gzChunk elements, each an independent DEFLATE segment that ends
// on a byte boundary (a sync flush). A node's answer is the cached segments
// before and after its own entry, the one or two chunks around it
// compressed afresh, and the small fixed texts as stored blocks; the CRC-32
// comes from the chunks' cached CRCs (crc32Combine), not from the bytes.
// The seed's endpoints, one body per group, are compressed whole once.

// gzipMin is the smallest body worth compressing; below it (deltas, small
// sets, errors) answers go as they are.
const gzipMin = 1024

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (a "gzip" or "*" coding whose q is not 0).
func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				} else {
					q = 0
				}
			}
		}
		if q > 0 {
			return true
		}
	}
	return false
}

// group is one of an answer's lists as its group rendered it: the whole
// rendering full, the range [cut0, cut1) left out of this node's answer,
// and the group's cache slot (registry.PeerAnswer.JoinedCut).
type group struct {
	full       []byte
	cut0, cut1 int
	aux        *atomic.Pointer[any]
}

// is reports whether head and tail are g's rendering with the cut left
// out, as render returns them (the same bytes, not a copy).
func (g *group) is(head, tail []byte) bool {
	return len(head) == g.cut0 && len(tail) == len(g.full)-g.cut1 &&
		(len(head) == 0 || &head[0] == &g.full[0]) && (len(tail) == 0 || &tail[0] == &g.full[g.cut1])
}

// groupsOf returns the group renderings render(ps, format) is made of.
func groupsOf(ps *registry.PeerAnswer, format string) []group {
	var ls []registry.List
	var encs []*registry.Encoding
	switch format {
	case "bootnodes":
		ls, encs = []registry.List{registry.BootnodeList}, []*registry.Encoding{bootLine}
	case "enr":
		ls, encs = []registry.List{registry.ENRList}, []*registry.Encoding{enrLines}
	case "toml":
		ls, encs = []registry.List{registry.StaticList, registry.BootnodeList}, []*registry.Encoding{tomlList, tomlList}
	default:
		ls, encs = []registry.List{registry.StaticList, registry.BootnodeList, registry.ConsensusList}, []*registry.Encoding{jsonList, jsonList, jsonList}
	}
	gs := make([]group, len(ls))
	for i := range ls {
		g := &gs[i]
		g.full, g.cut0, g.cut1, g.aux = ps.JoinedCut(ls[i], encs[i])
	}
	return gs
}

// gzChunks is a group rendering compressed in chunks: chunk i is
// full[off[i]:off[i+1]], compressed to comp[coff[i]:coff[i+1]]; pre[i] is
// the CRC-32 of full[:off[i]].
type gzChunks struct {
	off, coff []int
	comp      []byte
	pre       []uint32
}

var gzBuild sync.Mutex // one group's chunks are built by one request

// chunksOf returns the cached chunks of g's rendering, building them on
// first use.
func chunksOf(g *group) *gzChunks {
	if v := g.aux.Load(); v != nil {
		return (*v).(*gzChunks)
	}
	gzBuild.Lock()
	defer gzBuild.Unlock()
	if v := g.aux.Load(); v != nil {
		return (*v).(*gzChunks)
	}
	c := buildChunks(g.full)
	var a any = c
	g.aux.Store(&a)
	return c
}

// buildChunks cuts full every gzChunkBytes bytes (the boundaries need only
// be the same for every node of the group: a node's own entry falls into
// one chunk or two) and compresses each chunk on its own.
func buildChunks(full []byte) *gzChunks {
	c := &gzChunks{off: []int{0}, coff: []int{0}, pre: []uint32{0}}
	zw, _ := flate.NewWriter(nil, flate.DefaultCompression)
	var buf bytes.Buffer
	crc := uint32(0)
	for start := 0; start < len(full); {
		end := min(start+gzChunkBytes, len(full))
		buf.Reset()
		zw.Reset(&buf)
		zw.Write(full[start:end])
		zw.Flush()
		c.comp = append(c.comp, buf.Bytes()...)
		crc = crc32.Update(crc, crc32.IEEETable, full[start:end])
		c.off = append(c.off, end)
		c.coff = append(c.coff, len(c.comp))
		c.pre = append(c.pre, crc)
		start = end
	}
	return c
}

// gzChunkBytes is the size of a cached chunk, some 30 enode URLs: small
// enough that the chunk holding a node's own entry compresses in
// microseconds, large enough to compress well.
const gzChunkBytes = 4 << 10

var fastWriters = sync.Pool{New: func() any { w, _ := flate.NewWriter(nil, flate.BestSpeed); return w }}

// gzipBody is body (render's pieces) gzip-compressed, as slices to write
// one after the other (cached segments are shared, not copied), and its
// length. Two pieces that are one of groups with the cut left out are
// served from that group's cached chunks; the rest is literal text.
func gzipBody(body [][]byte, groups []group) ([][]byte, int) {
	g := gzipOut{out: [][]byte{{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}}} // gzip header: deflate, no name, no time, unknown OS
	for i := 0; i < len(body); i++ {
		var p *group
		if i+1 < len(body) {
			for k := range groups {
				if groups[k].is(body[i], body[i+1]) && len(groups[k].full) >= gzipMin {
					p = &groups[k]
					break
				}
			}
		}
		if p == nil {
			g.addLit(body[i])
			continue
		}
		i++ // the tail is part of the group
		g.flushLits()
		g.addGroup(p)
	}
	g.flushLits()
	tail := []byte{1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0} // the final (empty, stored) block, then CRC-32 and size
	binary.LittleEndian.PutUint32(tail[5:], g.crc)
	binary.LittleEndian.PutUint32(tail[9:], uint32(g.size))
	g.out = append(g.out, tail)
	total := 0
	for _, b := range g.out {
		total += len(b)
	}
	return g.out, total
}

// gzipOut is a gzip stream being pieced together: its parts so far, the
// CRC-32 and size of what they hold, and literal bytes waiting to go out
// as stored blocks.
type gzipOut struct {
	out  [][]byte
	crc  uint32
	size int
	lits []byte
}

// addLit queues b to go out uncompressed.
func (g *gzipOut) addLit(b []byte) {
	if len(b) == 0 {
		return
	}
	g.crc = crc32.Update(g.crc, crc32.IEEETable, b)
	g.size += len(b)
	g.lits = append(g.lits, b...)
}

// flushLits writes the queued literal bytes as non-final stored blocks.
func (g *gzipOut) flushLits() {
	for len(g.lits) > 0 {
		n := min(len(g.lits), 0xffff)
		hdr := []byte{0, byte(n), byte(n >> 8), ^byte(n), ^byte(n >> 8)} // a non-final stored block
		g.out = append(g.out, hdr, g.lits[:n])
		g.lits = g.lits[n:]
	}
	g.lits = nil
}

// addGroup appends a group's rendering without the cut: chunks [0, a) and
// [b, n) are served from the cache; the bytes of chunks [a, b) around the
// cut are compressed afresh.
func (g *gzipOut) addGroup(p *group) {
	c := chunksOf(p)
	n := len(c.off) - 1
	a, b := n, n
	if p.cut1 > p.cut0 {
		a = chunkAt(c.off, p.cut0)
		b = chunkAt(c.off, p.cut1-1) + 1
	}
	// cached run [0, a)
	if a > 0 {
		g.out = append(g.out, c.comp[:c.coff[a]])
		g.crc = crc32Combine(g.crc, c.pre[a], c.off[a])
		g.size += c.off[a]
	}
	if a < b {
		fresh := make([]byte, 0, c.off[b]-c.off[a]-(p.cut1-p.cut0))
		fresh = append(fresh, p.full[c.off[a]:p.cut0]...)
		fresh = append(fresh, p.full[p.cut1:c.off[b]]...)
		g.crc = crc32.Update(g.crc, crc32.IEEETable, fresh)
		g.size += len(fresh)
		if len(fresh) > 0 {
			var buf bytes.Buffer
			zw := fastWriters.Get().(*flate.Writer)
			zw.Reset(&buf)
			zw.Write(fresh) // a bytes.Buffer takes every write
			zw.Flush()
			fastWriters.Put(zw)
			g.out = append(g.out, buf.Bytes())
		}
	}
	// cached run [b, n): its CRC from the prefix CRCs
	if b < n {
		g.out = append(g.out, c.comp[c.coff[b]:])
		runLen := c.off[n] - c.off[b]
		runCRC := c.pre[n] ^ crc32Shift(c.pre[b], runLen)
		g.crc = crc32Combine(g.crc, runCRC, runLen)
		g.size += runLen
	}
}

// chunkAt is the chunk holding byte x: the i with off[i] <= x < off[i+1].
func chunkAt(off []int, x int) int {
	lo, hi := 0, len(off)-2
	for lo < hi {
		m := (lo + hi + 1) / 2
		if off[m] <= x {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return lo
}

// gzipOnce is out's body compressed, made by the first reader that asks
// (the seed's bodies: one per change and kind of caller).
func gzipOnce(out *registry.Rendered) []byte {
	if v := out.Aux.Load(); v != nil {
		return (*v).([]byte)
	}
	gzBuild.Lock()
	defer gzBuild.Unlock()
	if v := out.Aux.Load(); v != nil {
		return (*v).([]byte)
	}
	var a any = gzipWhole(out.Body)
	out.Aux.Store(&a)
	return (*out.Aux.Load()).([]byte)
}

func gzipWhole(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// CRC-32 (IEEE) arithmetic, after zlib's crc32_combine: crc(A||B) is
// crc32Shift(crc(A), len(B)) ^ crc(B), where crc32Shift multiplies by x^(8n)
// modulo the polynomial.

const crcPoly = 0xedb88320 // reflected

// x2n[k] is x^(2^k) mod p, reflected.
var x2n = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for k := 1; k < 32; k++ {
		p = multModP(p, p)
		t[k] = p
	}
	return t
}()

// multModP is a*b modulo the CRC polynomial (reflected bit order).
func multModP(a, b uint32) uint32 {
	m := uint32(1) << 31
	p := uint32(0)
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = (b >> 1) ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// crc32Shift is crc multiplied by x^(8n): the CRC register after n zero
// bytes, without the pre- and post-conditioning.
func crc32Shift(crc uint32, n int) uint32 {
	p := uint32(1) << 31 // x^0
	k := 3               // x^(2^3) = x^8: one byte
	for n > 0 {
		if n&1 != 0 {
			p = multModP(x2n[k&31], p)
		}
		n >>= 1
		k++
	}
	return multModP(p, crc)
}

// crc32Combine is the CRC-32 of A||B from crc(A), crc(B) and len(B).
func crc32Combine(crcA, crcB uint32, lenB int) uint32 {
	return crc32Shift(crcA, lenB) ^ crcB
}
