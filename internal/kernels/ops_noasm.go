//go:build !amd64 || purego

package kernels

func siluFast(x []float32)     { siluRef(x) }
func geluFast(x []float32)     { geluRef(x) }
func geluTanhFast(x []float32) { geluTanhRef(x) }

// softmaxExp sets x[i] = exp(x[i]-mx) and returns the sum in f64.
func softmaxExp(x []float32, mx float32) float64 { return softmaxExpRef(x, mx) }

// maxOf returns the largest value of x (len(x) > 0).
func maxOf(x []float32) float32 { return max32(x[0], x[1:]) }

// scale computes x[i] *= s.
func scale(x []float32, s float32) { scaleGo(x, s) }

// sumSquares64 returns Σx and Σ(x-c)² in f64.
func sumSquares64(x []float32, c float64) (sum, sumSquares float64) { return sumSquares64Go(x, c) }
