//go:build !amd64 || purego

package kernels

// widenInt4Blocks would widen codes with assembly; there is none, so it
// reports false and the caller's loop does all.
func widenInt4Blocks(dst []float32, q []byte, n int, scale, off float32) bool { return false }

// rowsInt4Fast would run the fused int4 dot kernel; there is none, so it
// reports false and rowsInt4 runs its Go loop.
func rowsInt4Fast(y, x []float32, m int, w *Int4, o0, o1 int, bias []float32) bool { return false }
