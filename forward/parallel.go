package forward

import (
	"sync"

	"github.com/hubmirror/hubmirror/internal/kernels"
)

// minParallel is the least number of elements an element-wise step splits
// over goroutines: below it, starting them costs more than it saves. (A
// variable for the tests, which run the fixtures' small layers split.)
var minParallel = 1 << 15

// parallelRows calls f on contiguous ranges [lo, hi) covering rows [0, n)
// of width elements each, on up to threads goroutines (the caller's among
// them). The element-wise steps of a layer (norms, rotary, activation,
// residual) are a few percent of it at one thread but, left serial, a
// fifth of a small model's layer at two.
func parallelRows(n, width, threads int, f func(lo, hi int)) {
	if threads > n {
		threads = n
	}
	if threads < 2 || n*width < minParallel {
		f(0, n)
		return
	}
	per := (n + threads - 1) / threads
	var wg sync.WaitGroup
	for lo := per; lo < n; lo += per {
		wg.Add(1)
		go func(lo int) {
			defer wg.Done()
			f(lo, min(lo+per, n))
		}(lo)
	}
	f(0, min(per, n))
	wg.Wait()
}

// rmsNormRows is rmsNorm over the rows of x split among threads.
func (nm *norm) rmsNormRows(dst, x []float32, rows, threads int) {
	d := len(nm.w)
	parallelRows(rows, d, threads, func(lo, hi int) {
		nm.rmsNorm(dst[lo*d:hi*d], x[lo*d:hi*d], hi-lo)
	})
}

// addPar computes dst[i] += x[i] over rows of width elements split
// among threads.
func addPar(dst, x []float32, rows, width, threads int) {
	parallelRows(rows, width, threads, func(lo, hi int) {
		add(dst[lo*width:hi*width], x[lo*width:hi*width])
	})
}

// rotateRows is rotateRange over all n rows, split among threads.
func rotateRows(rope *kernels.RoPETable, q, k []float32, n, heads, kvHeads, headDim, threads int) {
	parallelRows(n, (heads+kvHeads)*headDim, threads, func(lo, hi int) {
		rotateRange(rope, q, k, lo, hi, heads, kvHeads, headDim)
	})
}
