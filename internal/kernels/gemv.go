package kernels

import "sync"

// gemvMaxM is the largest m for which Linear skips packing: with so few
// rows, widening each weight row once and taking dot products (or, for
// InMajor weights, axpys) beats packing B for a micro-kernel that would run
// mostly on padding.
const gemvMaxM = 4

// gemv computes y = x·Wᵀ + bias for small m, splitting the outputs among
// threads.
func gemv(y, x []float32, m int, w *Weight, bias []float32, threads int) {
	n := w.Out
	src := newBSource(w)
	threads = max(1, min(threads, n/64))
	if threads == 1 {
		gemvRange(y, x, m, src, bias, 0, n)
		return
	}
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		// Split on multiples of 16 so that each range vectorizes.
		o0 := n * t / threads &^ 15
		o1 := n * (t + 1) / threads &^ 15
		if t == threads-1 {
			gemvRange(y, x, m, src, bias, o0, n)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			gemvRange(y, x, m, src, bias, o0, o1)
		}()
	}
	wg.Wait()
}

// gemvRange computes outputs [o0, o1) of every row.
func gemvRange(y, x []float32, m int, src bSource, bias []float32, o0, o1 int) {
	w := src.w
	n, k := w.Out, w.In
	if w.InMajor {
		// y[t][o0:o1] = bias + Σ_p x[t][p]·W[p][o0:o1], row p of the stored matrix at a time.
		for t := 0; t < m; t++ {
			row := y[t*n+o0 : t*n+o1]
			if bias != nil {
				copy(row, bias[o0:o1])
			} else {
				clear(row)
			}
		}
		buf := rowBufs.get(o1 - o0)
		defer rowBufs.put(buf)
		for p := 0; p < k; p++ {
			wp := *buf
			src.widenInMajor(wp, p, o0)
			for t := 0; t < m; t++ {
				axpy(x[t*k+p], wp, y[t*n+o0:t*n+o1])
			}
		}
		return
	}
	if src.hasRowI8() {
		src.rowsI8(y, x, m, o0, o1, bias)
		return
	}
	if w.Int4 != nil {
		rowsInt4(y, x, m, w.Int4, o0, o1, bias)
		return
	}
	if w.GGML != nil {
		rowsGGML(y, x, m, w.GGML, o0, o1, bias)
		return
	}
	if rowsHalf(y, x, m, w, o0, o1, bias) {
		return
	}
	var buf *[]float32
	if src.f32 == nil {
		buf = rowBufs.get(k)
		defer rowBufs.put(buf)
	}
	for o := o0; o < o1; o++ {
		var wo []float32
		if src.f32 != nil {
			wo = src.f32[o*k : (o+1)*k]
		} else {
			wo = *buf
			src.widenRow(wo, o, 0)
		}
		for t := 0; t < m; t++ {
			s := dot(x[t*k:(t+1)*k], wo)
			if bias != nil {
				s += bias[o]
			}
			y[t*n+o] = s
		}
	}
}

// dotGo returns Σ x[i]·y[i] in four partial sums.
func dotGo(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyGo computes y[i] += a·x[i].
func axpyGo(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}
