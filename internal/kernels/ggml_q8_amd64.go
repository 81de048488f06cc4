//go:build amd64 && !purego

package kernels

//go:noescape
func dotQ4KQ8KAVX512(src *byte, xq *int8, d *float32, bsums *int16, blocks int) float32

//go:noescape
func dotQ6KQ8KAVX512(src *byte, xq *int8, d *float32, bsums *int16, blocks int) float32

// The assembly replaces the plain loops of ggmlQ8Dot while AVX-512 (F and
// BW, with VL) is on; it computes the same integer sums and f32 operations
// in the same order, so the results are identical.
func init() {
	for _, k := range []struct {
		t          GGMLType
		blockBytes int
		asm        func(src *byte, xq *int8, d *float32, bsums *int16, blocks int) float32
	}{
		{GGMLQ4_K, 144, dotQ4KQ8KAVX512},
		{GGMLQ6_K, 210, dotQ6KQ8KAVX512},
	} {
		plain := ggmlQ8Dot[k.t]
		ggmlQ8Dot[k.t] = func(src []byte, q *q8K) float32 {
			n := len(src) / k.blockBytes
			if !hasAVX512 || n == 0 {
				return plain(src, q)
			}
			_, _, _ = q.qs[n*256-1], q.d[n-1], q.bsums[n*16-1]
			return k.asm(&src[0], &q.qs[0], &q.d[0], &q.bsums[0], n)
		}
	}
}
