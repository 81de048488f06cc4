//go:build amd64 && !purego

package kernels

import "unsafe"

//go:noescape
func decodeQ4KAVX512(dst *float32, src *byte, blocks int)

//go:noescape
func dotQ4KAVX512(x *float32, src *byte, blocks int) float32

//go:noescape
func decodeQ5KAVX512(dst *float32, src *byte, blocks int)

//go:noescape
func dotQ5KAVX512(x *float32, src *byte, blocks int) float32

//go:noescape
func decodeQ6KAVX512(dst *float32, src *byte, blocks int)

//go:noescape
func dotQ6KAVX512(x *float32, src *byte, blocks int) float32

//go:noescape
func decodeQ8_0AVX512(dst *float32, src *byte, blocks int)

//go:noescape
func dotQ8_0AVX512(x *float32, src *byte, blocks int) float32

//go:noescape
func decodeQ4_0AVX512(dst *float32, src *byte, blocks int)

//go:noescape
func dotQ4_0AVX512(x *float32, src *byte, blocks int) float32

// ggmlSIMD is an assembly decoder and dot product of one ggml block type,
// used in place of the plain loops of ggml.go when the CPU has AVX-512
// (ggml_simd_amd64.s documents the numerics: decoding is bit-exact, the
// dot differs from the plain loop only in the order of its f32 sum).
type ggmlSIMD struct {
	name                 string
	ggmlType             int // ggml's type id (GGUF's tensor type)
	blockLen, blockBytes int
	decode               func(dst *float32, src *byte, blocks int)
	dot                  func(x *float32, src *byte, blocks int) float32
}

// ggmlSIMDKernels are the block types with AVX-512 kernels.
var ggmlSIMDKernels = []*ggmlSIMD{
	{"Q4_0", 2, 32, 18, decodeQ4_0AVX512, dotQ4_0AVX512},
	{"Q8_0", 8, 32, 34, decodeQ8_0AVX512, dotQ8_0AVX512},
	{"Q4_K", 12, 256, 144, decodeQ4KAVX512, dotQ4KAVX512},
	{"Q5_K", 13, 256, 176, decodeQ5KAVX512, dotQ5KAVX512},
	{"Q6_K", 14, 256, 210, decodeQ6KAVX512, dotQ6KAVX512},
}

// The assembly replaces the plain entries of ggmlDecodeRow and ggmlDotRow
// for its types; each entry runs the plain loop instead while AVX-512 is
// off (setAVX512, setAssembly), so tests can compare the two.
func init() {
	for _, k := range ggmlSIMDKernels {
		t := GGMLType(k.ggmlType)
		plainDecode, plainDot := ggmlDecodeRow[t], ggmlDotRow[t]
		ggmlDecodeRow[t] = func(dst []float32, src []byte) {
			if hasAVX512 {
				k.decodeRow(dst, src)
				return
			}
			plainDecode(dst, src)
		}
		ggmlDotRow[t] = func(x []float32, src []byte) float32 {
			if hasAVX512 {
				return k.dotRow(x, src)
			}
			return plainDot(x, src)
		}
	}
}

// decodeRow decodes the len(src)/blockBytes whole blocks of src into dst.
func (k *ggmlSIMD) decodeRow(dst []float32, src []byte) {
	n := len(src) / k.blockBytes
	if n == 0 {
		return
	}
	_ = dst[n*k.blockLen-1]
	k.decode(&dst[0], &src[0], n)
}

// dotRow returns Σ x[i]·w[i] over the len(src)/blockBytes whole blocks of
// src.
func (k *ggmlSIMD) dotRow(x []float32, src []byte) float32 {
	n := len(src) / k.blockBytes
	if n == 0 {
		return 0
	}
	_ = x[n*k.blockLen-1]
	return k.dot(&x[0], &src[0], n)
}

// packGGMLSIMD is packGGML with AVX-512: it decodes the stretch [pc,
// pc+kc) of 16 rows at a time into a buffer and transposes them into the
// panel with transpose16F32, instead of writing each decoded value down its
// panel column in Go. It packs nothing and returns false when AVX-512 is
// off or the stretch does not start and end on whole blocks.
func (s bSource) packGGMLSIMD(bp []float32, pc, kc, c0, c1, nr int) bool {
	w := s.w.GGML
	elems, bytes, _ := w.Type.Block()
	if !hasAVX512 || pc%elems != 0 || kc%elems != 0 || kc%16 != 0 || nr%16 != 0 {
		return false
	}
	decode := ggmlDecodeRow[w.Type]
	buf := rowBufs.get(16 * kc)
	defer rowBufs.put(buf)
	rows := *buf
	b0, b1 := pc/elems*bytes, (pc+kc)/elems*bytes
	np := (c1 - c0 + nr - 1) / nr
	for j := 0; j < np; j++ {
		o0 := c0 + j*nr
		no := min(nr, c1-o0)
		panel := bp[j*kc*nr : (j+1)*kc*nr]
		jj := 0
		for ; jj+16 <= no; jj += 16 {
			for r := 0; r < 16; r++ {
				decode(rows[r*kc:(r+1)*kc], w.Row(o0 + jj + r)[b0:b1])
			}
			_ = panel[(kc-1)*nr+jj+15]
			transpose16F32(&panel[jj], nr, (*byte)(unsafe.Pointer(&rows[0])), kc, kc/16)
		}
		for ; jj < nr; jj++ {
			if jj >= no {
				for p := 0; p < kc; p++ {
					panel[p*nr+jj] = 0
				}
				continue
			}
			row := rows[:kc]
			decode(row, w.Row(o0 + jj)[b0:b1])
			for p, v := range row {
				panel[p*nr+jj] = v
			}
		}
	}
	return true
}
