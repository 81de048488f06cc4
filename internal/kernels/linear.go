package kernels

import (
	"fmt"

	"github.com/hubmirror/hubmirror/weights"
)

// Linear computes y[m×Out] = x[m×In]·Wᵀ (+ bias[Out] when bias != nil), as
// torch.nn.functional.linear, using up to threads goroutines (threads < 1
// means 1); y must not overlap x. x and y are row-major and contiguous.
//
// Each output is an f32 sum of In products x·w, w widened exactly from the
// stored dtype; the additions are in another order than linearRef's
// (blocked and vectorized), so the two agree to rounding: within
// 1e-5·Σ|x·w| in the tests. Each call reads W once per goroutine; for m ≤ 4
// it takes dot products without packing. A weight with W8A8 set runs as
// w8a8.go says instead: each row of x quantized to int8, int32 sums.
func Linear(y, x []float32, m int, w *Weight, bias []float32, threads int) {
	w.mustValidate()
	if m < 0 {
		panic(fmt.Sprintf("kernels: Linear with m = %d", m))
	}
	checkLen("Linear x", len(x), m*w.In)
	checkLen("Linear y", len(y), m*w.Out)
	if bias != nil {
		checkLen("Linear bias", len(bias), w.Out)
	}
	if m == 0 {
		return
	}
	if w.W8A8 != nil {
		linearW8A8(y, x, m, w, bias, max(threads, 1))
		return
	}
	gemm(y, x, m, w, bias, threads)
}

// MatMul computes c[m×n] = a[m×k]·b, all f32 row-major and contiguous, where
// b is [k×n] (transB false) or [n×k] (transB true); it is the product
// attention needs (scores = Q·Kᵀ, context = P·V) and runs on the same blocked
// kernel as Linear. c must not overlap a or b.
func MatMul(c, a, b []float32, m, n, k int, transB bool, threads int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: MatMul with m, n, k = %d, %d, %d", m, n, k))
	}
	checkLen("MatMul a", len(a), m*k)
	checkLen("MatMul b", len(b), k*n)
	checkLen("MatMul c", len(c), m*n)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:m*n])
		return
	}
	w := Weight{Out: n, In: k, InMajor: !transB, DType: weights.F32, Data: f32Bytes(b[:k*n])}
	gemm(c, a, m, &w, nil, threads)
}
