//go:build amd64 && !purego

package kernels

import (
	"math/bits"
	"unsafe"

	"github.com/hubmirror/hubmirror/weights"
)

//go:noescape
func transpose16I8(dst *float32, ldd int, src *byte, lds int, blocks int, scales *float32)

//go:noescape
func stripsInMajorI8(dst *float32, ldd int, src *byte, lds int, kc int, vecs int, scales *float32)

//go:noescape
func blockInMajor48I8(dst *float32, panelStride int, src *byte, lds int, kc int, panels int, scales *float32)

//go:noescape
func dotsI8AVX512(out *float32, x *float32, ldx int, m int, q *byte, n int, scales *float32, shift int)

// transpose16I8 is transpose16 for an int8 weight: it packs the first
// 16·blocks values of p of dst[p*ldd+r] = W[o0+r][pc+p] with the fused
// widening transposer, one call per run of blocks that share their scales
// (all of them per channel; a group's blocks with groups of a multiple of
// 16). Other group sizes widen the rows first and transpose them as f32.
func (s bSource) transpose16I8(dst []float32, ldd, o0, pc, blocks int) {
	w := s.w
	base := o0*w.In + pc
	g := w.GroupSize
	switch {
	case g == 0:
		_ = w.Scales[o0+15]
		transpose16I8(&dst[0], ldd, &w.Data[base], w.In, blocks, &w.Scales[o0])
	case g%16 == 0 && pc%16 == 0:
		// Every block starts at a multiple of 16, so it lies in one
		// group; sv holds the 16 outputs' scales of a group.
		groups := w.In / g
		_ = w.Scales[(o0+15)*groups+(pc+16*blocks-1)/g]
		var sv [16]float32
		for b := 0; b < blocks; {
			gi := (pc + 16*b) / g
			e := min(blocks, ((gi+1)*g-pc)/16)
			for r := range sv {
				sv[r] = w.Scales[(o0+r)*groups+gi]
			}
			transpose16I8(&dst[16*b*ldd], ldd, &w.Data[base+16*b], w.In, e-b, &sv[0])
			b = e
		}
	default:
		n := 16 * blocks
		rp := rowBufs.get(16 * n)
		rows := *rp
		for r := 0; r < 16; r++ {
			s.widenRow(rows[r*n:(r+1)*n], o0+r, pc)
		}
		transpose16F32(&dst[0], ldd, (*byte)(unsafe.Pointer(&rows[0])), n, blocks)
		rowBufs.put(rp)
	}
}

// stripsInMajorI8 is stripsInMajor for an int8 weight: it packs columns
// [o0, o0+16·vecs) of B[pc:pc+kc] into dst at stride ldd, one call per
// run of rows that share their scales (all rows per channel, the rows of a
// group with groups).
func (s bSource) stripsInMajorI8(dst []float32, ldd, pc, kc, o0, vecs int) {
	w := s.w
	base := pc*w.Out + o0
	g := w.GroupSize
	if g == 0 {
		_ = w.Scales[o0+16*vecs-1]
		stripsInMajorI8(&dst[0], ldd, &w.Data[base], w.Out, kc, vecs, &w.Scales[o0])
		return
	}
	groups := w.In / g
	var sv [48]float32
	for p := 0; p < kc; {
		gi := (pc + p) / g
		e := min(kc, (gi+1)*g-pc)
		for j := 0; j < 16*vecs; j++ {
			sv[j] = w.Scales[(o0+j)*groups+gi]
		}
		stripsInMajorI8(&dst[p*ldd], ldd, &w.Data[base+p*w.Out], w.Out, e-p, vecs, &sv[0])
		p = e
	}
}

// blockInMajorI8 is blockInMajor for an int8 weight (panels of 48 columns
// starting at c0), one call per run of rows that share their scales.
func (s bSource) blockInMajorI8(bp []float32, pc, kc, c0, panels int) {
	w := s.w
	base := pc*w.Out + c0
	g := w.GroupSize
	if g == 0 {
		_ = w.Scales[c0+48*panels-1]
		blockInMajor48I8(&bp[0], kc*48, &w.Data[base], w.Out, kc, panels, &w.Scales[c0])
		return
	}
	groups := w.In / g
	var sv [ncPanels * 48]float32
	for j0 := 0; j0 < panels; j0 += ncPanels {
		np := min(ncPanels, panels-j0)
		for p := 0; p < kc; {
			gi := (pc + p) / g
			e := min(kc, (gi+1)*g-pc)
			for j := 0; j < 48*np; j++ {
				sv[j] = w.Scales[(c0+48*j0+j)*groups+gi]
			}
			blockInMajor48I8(&bp[j0*kc*48+p*48], kc*48, &w.Data[base+p*w.Out+48*j0], w.Out, e-p, np, &sv[0])
			p = e
		}
	}
}

// hasRowI8 reports whether rowI8 runs for this weight: an int8 weight
// stored [Out][In], AVX-512, and per-channel scales or groups whose length
// is a power of two times 16.
func (s bSource) hasRowI8() bool {
	w := s.w
	g := w.GroupSize
	return hasAVX512 && w.DType == weights.I8 && !w.InMajor && (g == 0 || g%16 == 0 && g&(g-1) == 0)
}

// rowsI8 calls rowI8 for every output o0 ≤ o < o1.
func (s bSource) rowsI8(y, x []float32, m, o0, o1 int, bias []float32) {
	for o := o0; o < o1; o++ {
		s.rowI8(y, x, m, o, bias)
	}
}

// rowI8 computes output o of every row of y, y[t][o] = Σ_i x[t][i]·W[o][i]
// (+ bias[o]), for a weight hasRowI8 accepts, with the fused widen-and-dot
// kernel: each weight is widened once per 4 rows of x.
func (s bSource) rowI8(y, x []float32, m, o int, bias []float32) {
	w := s.w
	g := w.GroupSize
	k := w.In
	n := k &^ 15
	q := w.Data[o*k : (o+1)*k]
	var scales []float32
	shift := 63 // i>>63 is 0: one scale
	if g == 0 {
		scales = w.Scales[o : o+1]
	} else {
		scales = w.Scales[o*(k/g) : (o+1)*(k/g)]
		shift = bits.TrailingZeros(uint(g))
	}
	_ = x[m*k-1]
	_ = y[(m-1)*w.Out+o]
	var sums [4]float32
	for t0 := 0; t0 < m; t0 += 4 {
		mt := min(4, m-t0)
		xt := x[t0*k:]
		if n > 0 {
			dotsI8AVX512(&sums[0], &xt[0], k, mt, &q[0], n, &scales[0], shift)
		} else {
			sums = [4]float32{}
		}
		for i := n; i < k; i++ {
			wi := float32(int8(q[i])) * scales[i>>shift]
			for t := 0; t < mt; t++ {
				sums[t] += xt[t*k+i] * wi
			}
		}
		for t := 0; t < mt; t++ {
			v := sums[t]
			if bias != nil {
				v += bias[o]
			}
			y[(t0+t)*w.Out+o] = v
		}
	}
}
