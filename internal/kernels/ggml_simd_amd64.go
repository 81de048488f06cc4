//go:build amd64 && !purego

package kernels

//go:noescape
func decodeQ4KAVX512(dst *float32, src *byte, blocks int)

//go:noescape
func dotQ4KAVX512(x *float32, src *byte, blocks int) float32

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
