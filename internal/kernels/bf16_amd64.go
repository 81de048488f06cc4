//go:build amd64 && !purego

package kernels

//go:noescape
func dotBF16AVX512(x *float32, w *byte, n int) float32

//go:noescape
func dotF16AVX512(x *float32, w *byte, n int) float32

// dotBF16 returns Σ x[i]·w[i] for the len(x) little-endian bfloat16s of w:
// dot's result on the widened values, bit for bit (16 at a time with
// AVX-512, the rest as dotGo).
func dotBF16(x []float32, w []byte) float32 {
	n := 0
	var s float32
	if hasAVX512 {
		n = len(x) &^ 15
		if n > 0 {
			_ = w[2*n-1]
			s = dotBF16AVX512(&x[0], &w[0], n)
		}
	}
	return s + dotBF16Go(x[n:], w[2*n:])
}

// dotF16 is dotBF16 for IEEE halves.
func dotF16(x []float32, w []byte) float32 {
	n := 0
	var s float32
	if hasAVX512 {
		n = len(x) &^ 15
		if n > 0 {
			_ = w[2*n-1]
			s = dotF16AVX512(&x[0], &w[0], n)
		}
	}
	return s + dotF16Go(x[n:], w[2*n:])
}
