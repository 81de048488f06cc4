//go:build amd64 && !purego

package kernels

import "unsafe"

//go:noescape
func dotsI4AVX512(y *float32, ldy int, x *float32, ldx int, m int, q *byte, ldq int, blocks int, gblk int, scales *float32, lds int, offs *float32, ldo int, rows int)

//go:noescape
func dotsI4x128AVX512(y *float32, ldy int, x *float32, ldx int, m int, q *byte, ldq int, chunks int, gchunks int, scales *float32, lds int, offs *float32, ldo int, rows int)

//go:noescape
func widenI4AVX512(dst *float32, q *byte, n int, scale float32, off float32)

//go:noescape
func transpose16I4(dst *float32, ldd int, src *byte, lds int, blocks int, offs *float32, scales *float32)

//go:noescape
func dotsI4AVX2(out *float32, x *float32, ldx int, m int, q *byte, blocks int, gblk int, scales *float32, offs *float32)

//go:noescape
func widenI4AVX2(dst *float32, q *byte, n int, scale float32, off float32)

// widenInt4Blocks writes the values of the 16·n codes of one group starting
// at byte q[0] (an even input) to dst, (code - off)·scale with off = 8 +
// the zero point, with the assembly widener; it reports false, writing
// nothing, without AVX-512 or AVX2.
func widenInt4Blocks(dst []float32, q []byte, n int, scale, off float32) bool {
	if !hasAVX512 && !hasAVX2 {
		return false
	}
	if n > 0 {
		_ = dst[16*n-1]
		_ = q[8*n-1]
		if hasAVX512 {
			widenI4AVX512(&dst[0], &q[0], n, scale, off)
		} else {
			widenI4AVX2(&dst[0], &q[0], n, scale, off)
		}
	}
	return true
}

// rowsInt4Fast is rowsInt4 with the fused unpack-and-dot kernels, for
// weights with one scale per output or groups of a multiple of 32 inputs
// (then no block of 32 inputs straddles two groups) on AVX-512 or AVX2: the
// rows of x are reordered once per call the way the kernel reads them. With
// AVX-512, when In is a multiple of 128 and so are the groups (or there is
// one), the kernel of 128-input chunks runs (dotsI4x128AVX512, no byte
// shuffles); else that of 32-input blocks (dotsI4AVX512, looping over the
// outputs itself as the other does; dotsI4AVX2, one call per output), and
// the last In%32 inputs of each output are added in Go. It reports false,
// computing nothing, when no kernel applies.
func rowsInt4Fast(y, x []float32, m int, w *Int4, o0, o1 int, bias []float32) bool {
	groups, gs := w.Groups(), w.group()
	n, k := w.Out, w.In
	nb := k / 32
	if !hasAVX512 && !hasAVX2 || groups > 1 && gs%32 != 0 || nb == 0 {
		return false
	}
	wide := hasAVX512 && k%128 == 0 && gs%128 == 0
	ld := 32 * nb
	xpBuf := rowBufs.get(m*ld + groups)
	defer rowBufs.put(xpBuf)
	xp, offs := (*xpBuf)[:m*ld], (*xpBuf)[m*ld:]
	for t := 0; t < m; t++ {
		src, dst := x[t*k:t*k+ld], xp[t*ld:(t+1)*ld]
		if wide {
			for c := 0; c < ld; c += 128 {
				s, d := src[c:c+128:c+128], dst[c:c+128:c+128]
				for kk := 0; kk < 8; kk++ {
					for j := 0; j < 16; j++ {
						d[16*kk+j] = s[8*j+kk]
					}
				}
			}
			continue
		}
		for b := 0; b < ld; b += 32 {
			s, d := src[b:b+32:b+32], dst[b:b+32:b+32]
			for j := 0; j < 16; j++ {
				d[j], d[16+j] = s[2*j], s[2*j+1]
			}
		}
	}
	for g := range offs {
		offs[g] = 8
	}
	words := (k + 7) / 8
	if o1 <= o0 {
		return true
	}
	if wide || hasAVX512 {
		// One call per four rows of x for all the outputs; the offsets of
		// asymmetric weights are gathered first, a row of groups per output.
		ldo, op := 0, offs
		if w.Zeros != nil {
			ob := rowBufs.get((o1 - o0) * groups)
			defer rowBufs.put(ob)
			op, ldo = *ob, 4*groups
			for o := o0; o < o1; o++ {
				for g := 0; g < groups; g++ {
					op[(o-o0)*groups+g] = float32(8 + w.Zero(o, g))
				}
			}
		}
		_ = w.Packed[4*o1*words-1]
		_ = w.Scales[o1*groups-1]
		_ = y[(m-1)*n+o1-1]
		for t0 := 0; t0 < m; t0 += 4 {
			if wide {
				dotsI4x128AVX512(&y[t0*n+o0], n, &xp[t0*ld], ld, min(4, m-t0), &w.Packed[4*o0*words], 4*words,
					k/128, gs/128, &w.Scales[o0*groups], 4*groups, &op[0], ldo, o1-o0)
			} else {
				dotsI4AVX512(&y[t0*n+o0], n, &xp[t0*ld], ld, min(4, m-t0), &w.Packed[4*o0*words], 4*words,
					nb, gs/32, &w.Scales[o0*groups], groups, &op[0], ldo/4, o1-o0)
			}
		}
		if ld < k {
			// The last k%32 inputs of each output (the kernel takes
			// whole blocks of 32), in Go.
			for t := 0; t < m; t++ {
				for o := o0; o < o1; o++ {
					y[t*n+o] += dotInt4(x[t*k:(t+1)*k], w.Packed[4*o*words:4*(o+1)*words], w, o, ld, k)
				}
			}
		}
		if bias != nil {
			for t := 0; t < m; t++ {
				for o := o0; o < o1; o++ {
					y[t*n+o] += bias[o]
				}
			}
		}
		return true
	}
	var sums [4]float32
	for o := o0; o < o1; o++ {
		row := w.Packed[4*o*words : 4*(o+1)*words]
		sc := w.Scales[o*groups : (o+1)*groups]
		if w.Zeros != nil {
			for g := range offs {
				offs[g] = float32(8 + w.Zero(o, g))
			}
		}
		for t0 := 0; t0 < m; t0 += 4 {
			mt := min(4, m-t0)
			dotsI4AVX2(&sums[0], &xp[t0*ld], ld, mt, &row[0], nb, gs/32, &sc[0], &offs[0])
			for t := 0; t < mt; t++ {
				s := sums[t]
				if ld < k {
					s += dotInt4(x[(t0+t)*k:(t0+t+1)*k], row, w, o, ld, k)
				}
				if bias != nil {
					s += bias[o]
				}
				y[(t0+t)*n+o] = s
			}
		}
	}
	return true
}

// transpose16I4 is transpose16 for an int4 weight: it packs the first
// 16·blocks values of p of dst[p*ldd+r] = W[o0+r][pc+p] with the fused
// widening transposer, one call per run of blocks in one group (every block
// of 16 inputs lies in one group when pc and the group size are multiples
// of 16, or there is one group). Otherwise the 16 rows are widened
// (widenRange) into a scratch block, which the f32 transposer packs.
func (s bSource) transpose16I4(dst []float32, ldd, o0, pc, blocks int) int {
	w := s.w.Int4
	groups, gs := w.Groups(), w.group()
	n := 16 * blocks
	_ = dst[(n-1)*ldd+15]
	if pc%16 != 0 || groups > 1 && gs%16 != 0 {
		rp := rowBufs.get(16 * n)
		rows := *rp
		for r := 0; r < 16; r++ {
			w.widenRange(rows[r*n:(r+1)*n], o0+r, pc)
		}
		transpose16F32(&dst[0], ldd, (*byte)(unsafe.Pointer(&rows[0])), n, blocks)
		rowBufs.put(rp)
		return n
	}
	lds := 4 * ((w.In + 7) / 8)
	var sv, ov [16]float32
	for b := 0; b < blocks; {
		gi := (pc + 16*b) / gs
		e := min(blocks, ((gi+1)*gs-pc)/16)
		for r := range sv {
			sv[r] = w.Scales[(o0+r)*groups+gi]
			ov[r] = float32(8 + w.Zero(o0+r, gi))
		}
		_ = w.Packed[(o0+15)*lds+(pc+16*e)/2-1]
		transpose16I4(&dst[16*b*ldd], ldd, &w.Packed[o0*lds+(pc+16*b)/2], lds, e-b, &ov[0], &sv[0])
		b = e
	}
	return n
}
