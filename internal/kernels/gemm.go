package kernels

import (
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/hubmirror/hubmirror/weights"
)

// The blocked product behind Linear and MatMul, in the layout of BLIS:
//
//	y[m×N] += A[m×K] · B[K×N], A = x, B = Wᵀ
//
// A is packed once per call into slivers of mr rows ([K block][sliver][p][mr]);
// the goroutines take chunks of nr-column panels of B in turn, pack a block
// of at most kcBlock×(ncPanels·nr) of them at a time (this is where f16, bf16
// and int8 are widened to f32, one block at a time) and run the micro-kernel
// on every mr×nr tile of y, which they first fill with the bias (or zeros).

// microKernel computes c[i*ldc+j] += Σ_p a[p*mr+i]·b[p*nr+j] for i < mr, j <
// nr, p < kc: one tile of y from an A sliver and a B panel.
type microKernel struct {
	name   string
	mr, nr int
	run    func(kc int, a, b, c *float32, ldc int)
}

const (
	kcBlock  = 256 // depth of a packed block (elements of K)
	ncPanels = 8   // panels in a packed B block per goroutine
)

// bufPool keeps scratch buffers between calls: packed A (size m·K, one per
// call), packed B blocks (one per goroutine) and gemv rows, in separate
// pools so that a small request does not take a large buffer.
type bufPool struct{ sync.Pool }

var (
	aBufs, bBufs, rowBufs bufPool
)

// get returns a buffer of length n (contents undefined).
func (bp *bufPool) get(n int) *[]float32 {
	if p, ok := bp.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

func (bp *bufPool) put(p *[]float32) { bp.Put(p) }

// gemm computes y = x·Wᵀ + bias with the selected micro-kernel. Shapes are
// checked by the callers.
func gemm(y, x []float32, m int, w *Weight, bias []float32, threads int) {
	if m <= gemvMaxM {
		gemv(y, x, m, w, bias, threads)
		return
	}
	gemmWith(activeKernel, y, x, m, w, bias, threads)
}

func gemmWith(mk *microKernel, y, x []float32, m int, w *Weight, bias []float32, threads int) {
	mr, nr := mk.mr, mk.nr
	n, k := w.Out, w.In
	slivers := (m + mr - 1) / mr
	ap := aBufs.get(slivers * mr * k)
	defer aBufs.put(ap)
	panels := (n + nr - 1) / nr
	threads = max(1, min(threads, panels))
	packAParallel(*ap, x, m, k, mr, threads)

	src := newBSource(w)
	if threads == 1 {
		gemmPanels(mk, y, *ap, m, w, src, bias, 0, panels)
		return
	}
	// The goroutines take chunks of panels from a shared counter rather
	// than a fixed half each: on a machine shared with other work, a core
	// that gets less time then simply does fewer chunks. Chunks are small
	// enough for about four per goroutine and at most one packed B block.
	chunk := min(ncPanels, max(1, (panels+4*threads-1)/(4*threads)))
	var next atomic.Int64
	work := func() {
		for {
			p0 := int(next.Add(int64(chunk))) - chunk
			if p0 >= panels {
				return
			}
			gemmPanels(mk, y, *ap, m, w, src, bias, p0, min(p0+chunk, panels))
		}
	}
	var wg sync.WaitGroup
	for t := 1; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}

// packAParallel is packA on up to threads goroutines, each packing a
// range of slivers: a copy of x that is a tenth of the serial part of a
// small model's layer at two threads. Small products pack on one.
func packAParallel(ap, x []float32, m, k, mr, threads int) {
	slivers := (m + mr - 1) / mr
	// Ranges of an even number of slivers (packA pairs them), at least
	// 16 Ki elements each.
	per := (slivers + threads - 1) / threads
	per += per % 2
	if threads < 2 || per*mr*k < 1<<14 || per >= slivers {
		packA(ap, x, m, k, mr)
		return
	}
	var wg sync.WaitGroup
	for s0 := per; s0 < slivers; s0 += per {
		wg.Add(1)
		go func(s0 int) {
			defer wg.Done()
			packASlivers(ap, x, m, k, mr, s0, min(s0+per, slivers))
		}(s0)
	}
	packASlivers(ap, x, m, k, mr, 0, per)
	wg.Wait()
}

// packA packs x[m×k] into ap: for each block of kcBlock columns starting at
// pc (length kc), for each sliver s of mr rows, kc groups of mr values
// x[s*mr+i][pc+p] (0 for rows ≥ m). The block starts at pc*slivers*mr.
func packA(ap, x []float32, m, k, mr int) {
	packASlivers(ap, x, m, k, mr, 0, (m+mr-1)/mr)
}

// packASlivers is packA for slivers [s0, s1) only; s0 is even.
func packASlivers(ap, x []float32, m, k, mr, s0, s1 int) {
	slivers := (m + mr - 1) / mr
	for pc := 0; pc < k; pc += kcBlock {
		kc := min(kcBlock, k-pc)
		blk := ap[pc*slivers*mr:]
		for s := s0; s < s1; s++ {
			dst := blk[s*kc*mr : (s+1)*kc*mr]
			if mr == 8 && s+1 < s1 && (s+2)*mr <= m {
				// Two full slivers at once with the assembly transposer.
				if done := packA16(blk[s*kc*mr:(s+2)*kc*mr], x[s*mr*k+pc:], k, kc); done > 0 {
					packARows(blk[s*kc*mr:(s+1)*kc*mr], x, s*mr, m, k, pc, kc, mr, done)
					packARows(blk[(s+1)*kc*mr:(s+2)*kc*mr], x, (s+1)*mr, m, k, pc, kc, mr, done)
					s++
					continue
				}
			}
			packARows(dst, x, s*mr, m, k, pc, kc, mr, 0)
		}
	}
}

// packARows packs columns [pc+from, pc+kc) of rows r0..r0+mr-1 of x into the
// sliver dst (kc groups of mr values), zeros for rows ≥ m.
func packARows(dst, x []float32, r0, m, k, pc, kc, mr, from int) {
	for i := 0; i < mr; i++ {
		r := r0 + i
		if r >= m {
			for p := from; p < kc; p++ {
				dst[p*mr+i] = 0
			}
			continue
		}
		row := x[r*k+pc+from : r*k+pc+kc]
		for p, v := range row {
			dst[(from+p)*mr+i] = v
		}
	}
}

// gemmPanels computes the columns of panels [p0, p1) of y.
func gemmPanels(mk *microKernel, y, ap []float32, m int, w *Weight, src bSource, bias []float32, p0, p1 int) {
	mr, nr := mk.mr, mk.nr
	n, k := w.Out, w.In
	slivers := (m + mr - 1) / mr
	c0, c1 := p0*nr, min(p1*nr, n)
	for r := 0; r < m; r++ {
		row := y[r*n+c0 : r*n+c1]
		if bias != nil {
			copy(row, bias[c0:c1])
		} else {
			clear(row)
		}
	}
	// The packed block, then the scratch tile of the edge tiles: from the
	// pool rather than on the stack, where a tile would grow the stacks of
	// the goroutines gemmWith starts on every call.
	bp := bBufs.get(kcBlock*ncPanels*nr + mr*nr)
	defer bBufs.put(bp)
	tile := (*bp)[kcBlock*ncPanels*nr:]
	for jc := p0; jc < p1; jc += ncPanels {
		je := min(jc+ncPanels, p1)
		for pc := 0; pc < k; pc += kcBlock {
			kc := min(kcBlock, k-pc)
			src.pack(*bp, pc, kc, jc*nr, min(je*nr, n), nr)
			ablk := ap[pc*slivers*mr:]
			for jr := jc; jr < je; jr++ {
				bpanel := (*bp)[(jr-jc)*kc*nr:]
				col := jr * nr
				ncols := min(nr, n-col)
				for s := 0; s < slivers; s++ {
					asl := ablk[s*kc*mr:]
					row := s * mr
					nrows := min(mr, m-row)
					if nrows == mr && ncols == nr {
						mk.run(kc, &asl[0], &bpanel[0], &y[row*n+col], n)
						continue
					}
					t := tile[:mr*nr]
					clear(t)
					mk.run(kc, &asl[0], &bpanel[0], &t[0], nr)
					for i := 0; i < nrows; i++ {
						dst := y[(row+i)*n+col : (row+i)*n+col+ncols]
						for j := range dst {
							dst[j] += t[i*nr+j]
						}
					}
				}
			}
		}
	}
}

// bSource packs blocks of B = Wᵀ from a Weight.
type bSource struct {
	w   *Weight
	f32 []float32 // Data viewed as f32 when it is F32, aligned and the machine little-endian
}

func newBSource(w *Weight) bSource {
	s := bSource{w: w}
	if w.DType == weights.F32 {
		s.f32 = float32View(w.Data)
	}
	return s
}

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// float32View returns b as []float32 without copying, or nil when b is not
// 4-byte aligned or the machine is big-endian.
func float32View(b []byte) []float32 {
	if len(b) == 0 || !littleEndian || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

// f32Bytes returns the bytes of f as a little-endian f32 byte slice: a view
// on little-endian machines, a copy elsewhere.
func f32Bytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
	}
	b := make([]byte, 4*len(f))
	for i, v := range f {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// pack writes the panels of B[pc:pc+kc][c0:c1] (B[p][o] = W[o][p]) to bp:
// panel j holds columns c0+j*nr ..., as kc rows of nr values, zero beyond c1.
func (s bSource) pack(bp []float32, pc, kc, c0, c1, nr int) {
	w := s.w
	if w.GGML != nil {
		s.packGGML(bp, pc, kc, c0, c1, nr)
		return
	}
	np := (c1 - c0 + nr - 1) / nr
	if w.InMajor {
		for j := s.blockInMajor(bp, pc, kc, c0, c1, nr); j < np; j++ {
			o0 := c0 + j*nr
			no := min(nr, c1-o0)
			panel := bp[j*kc*nr : (j+1)*kc*nr]
			done := s.stripsInMajor(panel, nr, pc, kc, o0, no)
			for p := 0; p < kc; p++ {
				dst := panel[p*nr : p*nr+nr]
				s.widenInMajor(dst[done:no], pc+p, o0+done)
				clear(dst[no:])
			}
		}
		return
	}
	var rowBuf [kcBlock]float32
	for j := 0; j < np; j++ {
		o0 := c0 + j*nr
		no := min(nr, c1-o0)
		panel := bp[j*kc*nr : (j+1)*kc*nr]
		jj := 0
		for ; jj+16 <= no; jj += 16 {
			done := s.transpose16(panel[jj:], nr, o0+jj, pc, kc)
			if done == kc {
				continue
			}
			for r := 0; r < 16; r++ {
				row := rowBuf[:kc-done]
				s.widenRow(row, o0+jj+r, pc+done)
				for p, v := range row {
					panel[(done+p)*nr+jj+r] = v
				}
			}
		}
		for ; jj < nr; jj++ {
			if jj >= no {
				for p := 0; p < kc; p++ {
					panel[p*nr+jj] = 0
				}
				continue
			}
			row := rowBuf[:kc]
			s.widenRow(row, o0+jj, pc)
			for p, v := range row {
				panel[p*nr+jj] = v
			}
		}
	}
}

// widenRow writes W[o][pc:pc+len(dst)] (stored [Out][In]) to dst as f32.
func (s bSource) widenRow(dst []float32, o, pc int) {
	w := s.w
	base := o*w.In + pc
	switch w.DType {
	case weights.F32:
		if s.f32 != nil {
			copy(dst, s.f32[base:base+len(dst)])
			return
		}
		widenF32Bytes(dst, w.Data[4*base:4*(base+len(dst))])
	case weights.F16:
		widenF16(dst, w.Data[2*base:2*(base+len(dst))])
	case weights.BF16:
		widenBF16(dst, w.Data[2*base:2*(base+len(dst))])
	case weights.I32:
		w.Int4.widenRange(dst, o, pc)
	case weights.U8:
		w.GGML.widenRange(dst, o, pc)
	case weights.I8:
		q := w.Data[base : base+len(dst)]
		if w.GroupSize == 0 {
			widenI8(dst, q, w.Scales[o])
			return
		}
		g := w.GroupSize
		for i := 0; i < len(dst); {
			n := min(len(dst)-i, g-(pc+i)%g)
			widenI8(dst[i:i+n], q[i:i+n], w.scale(o, pc+i))
			i += n
		}
	}
}

// widenInMajor writes W[o0:o0+len(dst)][p] (stored [In][Out]) to dst as f32.
func (s bSource) widenInMajor(dst []float32, p, o0 int) {
	w := s.w
	base := p*w.Out + o0
	switch w.DType {
	case weights.F32:
		if s.f32 != nil {
			copy(dst, s.f32[base:base+len(dst)])
			return
		}
		widenF32Bytes(dst, w.Data[4*base:4*(base+len(dst))])
	case weights.F16:
		widenF16(dst, w.Data[2*base:2*(base+len(dst))])
	case weights.BF16:
		widenBF16(dst, w.Data[2*base:2*(base+len(dst))])
	case weights.I8:
		q := w.Data[base : base+len(dst)]
		if w.GroupSize == 0 {
			widenI8Scales(dst, q, w.Scales[o0:o0+len(dst)])
			return
		}
		// The scales of input p are strided (one per output, In/GroupSize
		// apart): gather them a chunk at a time, then widen as per channel.
		var sc [64]float32
		groups, gi := w.In/w.GroupSize, p/w.GroupSize
		for j0 := 0; j0 < len(dst); j0 += len(sc) {
			n := min(len(sc), len(dst)-j0)
			for j := 0; j < n; j++ {
				sc[j] = w.Scales[(o0+j0+j)*groups+gi]
			}
			widenI8Scales(dst[j0:j0+n], q[j0:j0+n], sc[:n])
		}
	}
}

func widenF32Bytes(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func widenBF16Go(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

func widenF16Go(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = f16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// f16ToF32 widens an IEEE half exactly.
func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f && man == 0: // Inf
		return math.Float32frombits(sign | 0x7f800000)
	case exp == 0x1f: // NaN: payload kept, quieted as F16C's VCVTPH2PS does
		return math.Float32frombits(sign | 0x7fc00000 | man<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: value = man·2⁻²⁴, exact in f32.
	v := float32(man) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

func widenI8Go(dst []float32, q []byte, scale float32) {
	q = q[:len(dst)]
	for i := range dst {
		dst[i] = float32(int8(q[i])) * scale
	}
}

func widenI8ScalesGo(dst []float32, q []byte, scales []float32) {
	q = q[:len(dst)]
	scales = scales[:len(dst)]
	for i := range dst {
		dst[i] = float32(int8(q[i])) * scales[i]
	}
}

// goKernel is the portable micro-kernel: a 4×4 register tile.
var goKernel = microKernel{name: "go4x4", mr: 4, nr: 4, run: kernel4x4Go}

func kernel4x4Go(kc int, a, b, c *float32, ldc int) {
	as := unsafe.Slice(a, kc*4)
	bs := unsafe.Slice(b, kc*4)
	cs := unsafe.Slice(c, 3*ldc+4)
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	for p := 0; p < kc; p++ {
		av := as[p*4 : p*4+4 : p*4+4]
		bv := bs[p*4 : p*4+4 : p*4+4]
		a0, a1, a2, a3 := av[0], av[1], av[2], av[3]
		b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	r := cs[0:4:4]
	r[0] += c00
	r[1] += c01
	r[2] += c02
	r[3] += c03
	r = cs[ldc : ldc+4 : ldc+4]
	r[0] += c10
	r[1] += c11
	r[2] += c12
	r[3] += c13
	r = cs[2*ldc : 2*ldc+4 : 2*ldc+4]
	r[0] += c20
	r[1] += c21
	r[2] += c22
	r[3] += c23
	r = cs[3*ldc : 3*ldc+4 : 3*ldc+4]
	r[0] += c30
	r[1] += c31
	r[2] += c32
	r[3] += c33
}
