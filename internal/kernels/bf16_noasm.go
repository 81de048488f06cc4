//go:build !amd64 || purego

package kernels

func dotBF16(x []float32, w []byte) float32 { return dotBF16Go(x, w) }

func dotF16(x []float32, w []byte) float32 { return dotF16Go(x, w) }
