package forward

import "github.com/hubmirror/hubmirror/internal/kernels"

// releaseSliceBytes bounds the weight bytes one Linear product reads
// between two calls of the model's BeforeLayer (which validation points at
// weights.Graph.Release, handing the mapped pages back): a larger weight
// is multiplied in slices of output rows of about this size. So a large
// head (the f32 lm_head of a 32k vocabulary at hidden size 2048 is 262 MB,
// more than a layer) is not resident whole: validating a 1.93 GB f32
// Llama's Q4_K_M GGUF peaked at 408 MB with it read whole. The slices'
// outputs equal the whole product's bit for bit (each output is computed
// the same way wherever its row is).
var releaseSliceBytes = 64 << 20

// linearReleasing is kernels.Linear, in slices of rows with release
// called between them when w holds more than releaseSliceBytes and
// release is not nil.
func linearReleasing(y, x []float32, m int, w *kernels.Weight, b []float32, threads int, release func()) {
	if release == nil || w.InMajor || m == 0 || len(w.Data) <= releaseSliceBytes {
		kernels.Linear(y, x, m, w, b, threads)
		return
	}
	per := max(16, releaseSliceBytes/max(1, len(w.Data)/w.Out)) &^ 15
	n := w.Out
	buf := make([]float32, m*min(per, n))
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		if lo > 0 {
			release()
		}
		part := linearRows(linear{w: w, b: b}, lo, hi)
		out := buf[:m*(hi-lo)]
		kernels.Linear(out, x, m, part.w, part.b, threads)
		for t := 0; t < m; t++ {
			copy(y[t*n+lo:t*n+hi], out[t*(hi-lo):(t+1)*(hi-lo)])
		}
	}
}
