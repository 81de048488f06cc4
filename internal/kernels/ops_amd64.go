//go:build amd64 && !purego

package kernels

//go:noescape
func siluAVX512(x *float32, n int)

//go:noescape
func geluAVX512(x *float32, n int)

//go:noescape
func geluTanhAVX512(x *float32, n int)

//go:noescape
func softmaxExpAVX512(x *float32, n int, max float32) float64

// vectorPrefix returns how many leading values of x the AVX-512 kernels
// take (a multiple of 16; 0 without AVX-512).
func vectorPrefix(x []float32) int {
	if !hasAVX512 {
		return 0
	}
	return len(x) &^ 15
}

func siluFast(x []float32) {
	n := vectorPrefix(x)
	if n > 0 {
		siluAVX512(&x[0], n)
	}
	siluRef(x[n:])
}

func geluFast(x []float32) {
	n := vectorPrefix(x)
	if n > 0 {
		geluAVX512(&x[0], n)
	}
	geluRef(x[n:])
}

func geluTanhFast(x []float32) {
	n := vectorPrefix(x)
	if n > 0 {
		geluTanhAVX512(&x[0], n)
	}
	geluTanhRef(x[n:])
}

// softmaxExp sets x[i] = exp(x[i]-mx) and returns the sum in f64.
func softmaxExp(x []float32, mx float32) float64 {
	n := vectorPrefix(x)
	var sum float64
	if n > 0 {
		sum = softmaxExpAVX512(&x[0], n, mx)
	}
	return sum + softmaxExpRef(x[n:], mx)
}

//go:noescape
func maxAVX512(x *float32, n int) float32

//go:noescape
func scaleAVX512(x *float32, n int, s float32)

//go:noescape
func sumSquaresF64AVX512(x *float32, n int, c float64) (sum, sumSquares float64)

// maxOf returns the largest value of x (len(x) > 0).
func maxOf(x []float32) float32 {
	n := vectorPrefix(x)
	mx := x[0]
	if n > 0 {
		mx = maxAVX512(&x[0], n)
	}
	return max32(mx, x[n:])
}

// scale computes x[i] *= s.
func scale(x []float32, s float32) {
	n := vectorPrefix(x)
	if n > 0 {
		scaleAVX512(&x[0], n, s)
	}
	scaleGo(x[n:], s)
}

// sumSquares64 returns Σx and Σ(x-c)² in f64.
func sumSquares64(x []float32, c float64) (sum, sumSquares float64) {
	n := vectorPrefix(x)
	if n > 0 {
		sum, sumSquares = sumSquaresF64AVX512(&x[0], n, c)
	}
	s, ss := sumSquares64Go(x[n:], c)
	return sum + s, sumSquares + ss
}
