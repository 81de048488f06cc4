//go:build !amd64 || purego

package kernels

import "github.com/hubmirror/hubmirror/weights"

func dotBF16(x []float32, w []byte) float32 { return dotBF16Go(x, w) }

func dotF16(x []float32, w []byte) float32 { return dotF16Go(x, w) }

// halfDots4 returns nil: without assembly, rowsHalf takes one row at a time.
func halfDots4(d weights.DType) func(s *[4]float32, x []float32, w []byte) { return nil }
