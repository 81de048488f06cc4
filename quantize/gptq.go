package quantize

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers", 2022) chooses the int4 codes of a
// Linear weight W [out][in] column by column, compensating the error of
// each quantized column on the columns not yet quantized so that W·X stays
// close on the layer's calibration inputs X:
//
//	H = 2·XᵀX/n over the n input rows (accumulated in float64)
//	dead columns (H[i][i] = 0): H[i][i] = 1 and W[:, i] = 0
//	H += 0.01·mean(diag H)·I (dampening)
//	U = the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU)
//	for each column i: q = Q(W[:, i]); e = (W[:, i] − q)/U[i][i];
//	    W[:, j] −= e·U[i][j] for the columns j > i
//
// where Q is the W4A16 quantizer of int4.go (the same scales, zero points
// and rounding as round to nearest): a group's scales (and zero points) are
// chosen from the group's current columns, error compensation included,
// when its first column is reached. The updates to the columns beyond a
// block of 128 are applied once per block (the paper's lazy batch updates;
// the same result up to rounding). Columns are in their order (act-order
// off). The weights, the errors and H's sums are float64; the quantizer
// computes in float32 (scales, codes, dequantized values), as do the two
// large products, H over chunks of 256 rows and the once-per-block
// updates, which run on the kernels' f32 matrix product (their results
// added to the float64 values). The result matches a float64 PyTorch
// GPTQ code for code on the test layers (quantize/testdata/gen_gptq.py).
//
// The calibration (Calibrator, forward.Model.RunCapture) runs the
// calibration inputs through the source model in one batch, and each
// Linear is quantized when its product is reached, with the inputs of all
// the sequences at once; the product is then computed with the quantized
// weight, so each layer's inputs are those of the already quantized
// earlier layers, also inside a layer (o_proj sees the output of the
// quantized q/k/v, down_proj that of gate/up: GPTQ's sequential mode).
// Memory holds one Hessian (and the copy of the input it was computed
// from: q/k/v, and gate/up, share one input and so one H) besides the
// activations of the calibration set. The row slices of a fused tensor
// the network splits (Phi-3's qkv_proj, gate_up_proj) are quantized one by
// one: GPTQ treats each row on its own, so that is the whole tensor's
// result. A Linear no calibration row reaches (an expert no token goes
// to) is rounded to nearest; the report lists it.

// Method is how w4a16 chooses its codes.
type Method string

// The methods of `hubmirror quantize --method`.
const (
	// RTN rounds each weight to the nearest code.
	RTN Method = "rtn"
	// GPTQ rounds column by column with error compensation (see above).
	GPTQ Method = "gptq"
)

// ParseMethod checks a method name.
func ParseMethod(s string) (Method, error) {
	switch Method(s) {
	case RTN, GPTQ:
		return Method(s), nil
	}
	return "", fmt.Errorf("quantize: unknown method %q (rtn, gptq)", s)
}

// LinearHook is what a Calibrator calls before each Linear product
// (forward.LinearHook): the weight's tensor name, the first of the
// tensor's rows the product computes (not 0 for the slices of a fused
// tensor), the weight, the input rows [rows×w.In] of every calibration
// sequence; it returns the weight to compute the product with (nil: w).
type LinearHook = func(name string, first int, w *kernels.Weight, x []float32, rows int) *kernels.Weight

// Calibrator runs the calibration inputs through the model of g (config
// cfg) in one batch, calling hook before each Linear product: in hubmirror,
// forward.Load and Model.RunCapture over the calibration text.
type Calibrator func(g *weights.Graph, cfg *arch.Config, hook LinearHook) error

// Defaults of GPTQOptions.
const (
	DefaultGPTQBlockSize = 128
	DefaultGPTQDamp      = 0.01
)

// GPTQOptions configure Method GPTQ.
type GPTQOptions struct {
	// Calibrate runs the calibration (required).
	Calibrate Calibrator
	// BlockSize is the number of columns between lazy batch updates; 0
	// means DefaultGPTQBlockSize.
	BlockSize int
	// Damp is the dampening, a fraction of the mean of H's diagonal added
	// to it; 0 means DefaultGPTQDamp.
	Damp float64
	// Threads is the number of goroutines of the Hessians and updates; 0
	// means Options.Threads, else runtime.GOMAXPROCS(0).
	Threads int
}

// GPTQReport says what GPTQ did.
type GPTQReport struct {
	// Calibrated counts the weights quantized with GPTQ.
	Calibrated int `json:"calibrated"`
	// Rows is the number of calibration rows (tokens) each layer saw.
	Rows int `json:"rows"`
	// Hessians counts the Hessians computed (fewer than Calibrated: q/k/v
	// share one, gate/up share one).
	Hessians int `json:"hessians"`
	// RTN lists the weights rounded to nearest because no calibration
	// input reached them.
	RTN []string `json:"rtn,omitempty"`
	// Unstable lists the weights whose dampened Hessian was not positive
	// definite: rounded to nearest.
	Unstable []string `json:"unstable,omitempty"`
	// BlockSize and Damp are the settings used.
	BlockSize int     `json:"block_size"`
	Damp      float64 `json:"damp"`
}

// checkMethod refuses a method the scheme does not take.
func checkMethod(opts Options) error {
	switch opts.Method {
	case "", RTN:
		return nil
	case GPTQ:
		if opts.Scheme != W4A16 {
			return fmt.Errorf("quantize: the gptq method is for the w4a16 scheme only, not %s", opts.Scheme)
		}
		if opts.GPTQ.Calibrate == nil {
			return fmt.Errorf("quantize: the gptq method needs a calibration (GPTQOptions.Calibrate)")
		}
		if opts.GPTQ.BlockSize < 0 || opts.GPTQ.Damp < 0 || math.IsNaN(opts.GPTQ.Damp) || math.IsInf(opts.GPTQ.Damp, 0) {
			return fmt.Errorf("quantize: gptq block size %d and dampening %v: want positive values (0 for the defaults)", opts.GPTQ.BlockSize, opts.GPTQ.Damp)
		}
		return nil
	}
	_, err := ParseMethod(string(opts.Method))
	return err
}

// int4Result is a weight's int4 codes [out][in] and its parameters.
type int4Result struct {
	codes  []int8
	scales []float32
	zeros  []int8
}

// gptqLayer is one weight to quantize.
type gptqLayer struct {
	t       *weights.Tensor
	out, in int
	inMajor bool
	// part holds the rows quantized so far (all of them at once, or the
	// row slices of a fused tensor one by one), done their first rows and
	// filled their number; res is part once every row is.
	part   *int4Result
	done   map[int]bool
	filled int
	res    *int4Result
}

// gptqRun is the state of a calibration.
type gptqRun struct {
	layers    map[string]*gptqLayer
	gs        int // requested group size (0: per channel)
	asym      bool
	blockSize int
	damp      float64
	threads   int
	err       error
	rows      int
	hessians  int
	unstable  []string
	// The last input and its Hessian, for the products that share it.
	lastX []float32
	lastF *hessianFactor
}

// runGPTQ runs the calibration and GPTQ on every weight p quantizes; nil
// when the method is not GPTQ.
func runGPTQ(g *weights.Graph, cfg *arch.Config, p *planner, opts Options) (*gptqRun, error) {
	if opts.Method != GPTQ {
		return nil, nil
	}
	r := &gptqRun{layers: map[string]*gptqLayer{}, gs: opts.GroupSize, asym: opts.Asym,
		blockSize: opts.GPTQ.BlockSize, damp: opts.GPTQ.Damp, threads: opts.GPTQ.Threads}
	if r.blockSize == 0 {
		r.blockSize = DefaultGPTQBlockSize
	}
	if r.damp == 0 {
		r.damp = DefaultGPTQDamp
	}
	if r.threads <= 0 {
		r.threads = opts.Threads
	}
	if r.threads <= 0 {
		r.threads = runtime.GOMAXPROCS(0)
	}
	for _, t := range g.Tensors() {
		if !p.quantized(t) {
			continue
		}
		out, in, err := linearDims(t, cfg)
		if err != nil {
			return nil, err
		}
		r.layers[t.Name] = &gptqLayer{t: t, out: out, in: in, inMajor: arch.IsConv1D(cfg, t.Name)}
	}
	if err := opts.GPTQ.Calibrate(g, cfg, r.hook); err != nil {
		return nil, fmt.Errorf("quantize: gptq calibration: %w", err)
	}
	if r.err != nil {
		return nil, r.err
	}
	r.lastX, r.lastF = nil, nil
	return r, nil
}

// result is the GPTQ result of the weight name, nil for none (round to
// nearest).
func (r *gptqRun) result(name string) *int4Result {
	if r == nil {
		return nil
	}
	if l := r.layers[name]; l != nil {
		return l.res
	}
	return nil
}

// report returns the method and the GPTQ report.
func (r *gptqRun) report(opts Options) (Method, *GPTQReport) {
	if opts.Scheme != W4A16 {
		return "", nil
	}
	if r == nil {
		return RTN, nil
	}
	rep := &GPTQReport{Rows: r.rows, Hessians: r.hessians, Unstable: r.unstable, BlockSize: r.blockSize, Damp: r.damp}
	for name, l := range r.layers {
		if l.res == nil {
			rep.RTN = append(rep.RTN, name)
		} else {
			rep.Calibrated++
		}
	}
	sort.Strings(rep.RTN)
	sort.Strings(rep.Unstable)
	return GPTQ, rep
}

// hook quantizes the rows [first, first+w.Out) of the weight name when
// their product is reached and returns their dequantized version for the
// product.
func (r *gptqRun) hook(name string, first int, w *kernels.Weight, x []float32, rows int) *kernels.Weight {
	l := r.layers[name]
	if l == nil || r.err != nil || rows == 0 {
		return nil
	}
	n := w.Out
	if w.In != l.in || first < 0 || first+n > l.out || len(x) < rows*l.in {
		r.err = fmt.Errorf("quantize: gptq: %s: a product of rows %d..%d of %d inputs with %d rows of %d values, the weight is %d×%d",
			name, first, first+n, w.In, rows, len(x)/rows, l.out, l.in)
		return nil
	}
	groups := (l.in + l.groupSize(r.gs) - 1) / l.groupSize(r.gs)
	if !l.done[first] {
		res, err := r.quantize(l, first, n, x[:rows*l.in], rows)
		if err != nil {
			r.err = fmt.Errorf("quantize %s: %w", name, err)
			return nil
		}
		if l.part == nil {
			l.part = &int4Result{codes: make([]int8, l.out*l.in), scales: make([]float32, l.out*groups)}
			if r.asym {
				l.part.zeros = make([]int8, l.out*groups)
			}
			l.done = map[int]bool{}
		}
		copy(l.part.codes[first*l.in:], res.codes)
		copy(l.part.scales[first*groups:], res.scales)
		if r.asym {
			copy(l.part.zeros[first*groups:], res.zeros)
		}
		l.done[first] = true
		if l.filled += n; l.filled == l.out {
			l.res = l.part
		}
		r.rows = max(r.rows, rows)
	}
	view := &int4Result{codes: l.part.codes[first*l.in : (first+n)*l.in], scales: l.part.scales[first*groups : (first+n)*groups]}
	if r.asym {
		view.zeros = l.part.zeros[first*groups : (first+n)*groups]
	}
	dq := dequantizeInt4(view, n, l.in, l.groupSize(r.gs))
	b := make([]byte, 4*len(dq))
	if err := weights.EncodeFloat32(b, dq, weights.F32); err != nil {
		r.err = err
		return nil
	}
	return &kernels.Weight{Out: n, In: l.in, DType: weights.F32, Data: b}
}

// groupSize is the effective group size of l (its input size when per
// channel or larger).
func (l *gptqLayer) groupSize(gs int) int {
	if gs <= 0 || gs > l.in {
		return l.in
	}
	return gs
}

// quantize runs GPTQ on the rows [first, first+n) of l with their inputs
// x [rows×in] (GPTQ treats each row on its own: the rows of a fused
// tensor quantized slice by slice with the same inputs are what the whole
// tensor would give).
func (r *gptqRun) quantize(l *gptqLayer, first, n int, x []float32, rows int) (*int4Result, error) {
	b, err := l.t.Bytes()
	if err != nil {
		return nil, err
	}
	w, err := newMatrix(l.out, l.in, l.inMajor, l.t.DType, b).logicalRows()
	if err != nil {
		return nil, err
	}
	w = w[first*l.in : (first+n)*l.in]
	if !slices.Equal(x, r.lastX) {
		r.lastF = nil // drop the old one first
		r.lastF = factorHessian(hessian(x, rows, l.in, r.threads), l.in, r.damp, r.threads)
		r.lastX = append(r.lastX[:0], x...)
		r.hessians++
	}
	res, stable, err := gptqWeight(w, r.lastF, n, l.in, l.groupSize(r.gs), r.asym, l.t.DType, r.blockSize, r.threads)
	if err != nil {
		return nil, err
	}
	if !stable && !slices.Contains(r.unstable, l.t.Name) {
		r.unstable = append(r.unstable, l.t.Name)
	}
	return res, nil
}

// dequantizeInt4 returns (code − zero)·scale [out][in] in f32, as the
// int4 kernels widen the codes.
func dequantizeInt4(res *int4Result, out, in, gs int) []float32 {
	groups := (in + gs - 1) / gs
	dq := make([]float32, out*in)
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			k := o*groups + i/gs
			var z float32
			if res.zeros != nil {
				z = float32(res.zeros[k])
			}
			dq[o*in+i] = (float32(res.codes[o*in+i]) - z) * res.scales[k]
		}
	}
	return dq
}

// hessianChunk is the number of input rows whose XᵀX is one f32 product.
const hessianChunk = 256

// hessian returns H = 2·XᵀX/rows [in][in] in float64 for x [rows×in]: the
// sums over chunks of hessianChunk rows are f32 products (the kernels'
// matrix product), accumulated in float64.
func hessian(x []float32, rows, in, threads int) []float64 {
	h := make([]float64, in*in)
	xt := make([]float32, in*hessianChunk) // a chunk's columns: xt[c*n+r]
	part := make([]float32, in*in)
	for r0 := 0; r0 < rows; r0 += hessianChunk {
		n := min(hessianChunk, rows-r0)
		for r := 0; r < n; r++ {
			for c, v := range x[(r0+r)*in : (r0+r+1)*in] {
				xt[c*n+r] = v
			}
		}
		kernels.MatMul(part, xt[:in*n], xt[:in*n], in, in, n, true, threads)
		for i, v := range part {
			h[i] += float64(v)
		}
	}
	f := 2 / float64(max(rows, 1))
	for i := 0; i < in; i++ {
		for j := i; j < in; j++ {
			v := (h[i*in+j] + h[j*in+i]) / 2 * f
			h[i*in+j], h[j*in+i] = v, v
		}
	}
	return h
}

// parallelFor calls f(i) for i in [0, n), the indices dealt round robin to
// up to threads goroutines (the triangular loops stay balanced).
func parallelFor(n, threads int, f func(i int)) {
	threads = min(threads, n)
	if threads <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	done := make(chan struct{}, threads)
	for t := 0; t < threads; t++ {
		go func(t int) {
			for i := t; i < n; i += threads {
				f(i)
			}
			done <- struct{}{}
		}(t)
	}
	for t := 0; t < threads; t++ {
		<-done
	}
}

// choleskyLower factors the symmetric a [n][n] in place as L·Lᵀ (L in the
// lower triangle, the upper one zeroed); false when a is not positive
// definite.
func choleskyLower(a []float64, n, threads int) bool {
	for j := 0; j < n; j++ {
		rj := a[j*n : j*n+j]
		d := a[j*n+j]
		for _, v := range rj {
			d -= v * v
		}
		if !(d > 0) || math.IsInf(d, 0) {
			return false
		}
		d = math.Sqrt(d)
		a[j*n+j] = d
		rows := func(i int) {
			ri := a[i*n : i*n+j]
			s := a[i*n+j]
			for k, v := range ri {
				s -= v * rj[k]
			}
			a[i*n+j] = s / d
		}
		if (n-j)*j < 1<<16 { // too little work to share
			for i := j + 1; i < n; i++ {
				rows(i)
			}
			continue
		}
		parallelFor(n-j-1, threads, func(k int) { rows(j + 1 + k) })
	}
	for i := 0; i < n; i++ {
		clear(a[i*n+i+1 : (i+1)*n])
	}
	return true
}

// inverseUpperFactor returns U, upper triangular [n][n] row-major, with
// H⁻¹ = UᵀU, for the symmetric positive definite h (destroyed); false when
// h is not positive definite. With H = U'·U'ᵀ, U' upper (the Cholesky
// factor of H with its rows and columns reversed), H⁻¹ = (U'⁻¹)ᵀ·U'⁻¹ and
// U = U'⁻¹.
func inverseUpperFactor(h []float64, n, threads int) ([]float64, bool) {
	r := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			r[i*n+j] = h[(n-1-i)*n+n-1-j]
		}
	}
	if !choleskyLower(r, n, threads) {
		return nil, false
	}
	up := h // U'[i][j] = L[n-1-i][n-1-j]
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			up[i*n+j] = r[(n-1-i)*n+n-1-j]
		}
	}
	// U = U'⁻¹, column by column (independent: split among the threads),
	// each by back substitution: U'·u_j = e_j, u_j[i] = 0 for i > j.
	u := r
	clear(u)
	parallelFor(n, threads, func(j int) {
		col := make([]float64, j+1)
		col[j] = 1 / up[j*n+j]
		for i := j - 1; i >= 0; i-- {
			var s float64
			for k, v := range up[i*n+i+1 : i*n+j+1] {
				s += v * col[i+1+k]
			}
			col[i] = -s / up[i*n+i]
		}
		for i, v := range col {
			u[i*n+j] = v
		}
	})
	return u, true
}

// hessianFactor is what GPTQ needs of a Hessian: its dead columns and U,
// the upper Cholesky factor of the dampened inverse (nil when the dampened
// Hessian is not positive definite).
type hessianFactor struct {
	dead []int
	u    []float64
}

// factorHessian prepares h [n][n] (destroyed): dead columns (a zero
// diagonal) get 1 there, the diagonal gets damp·mean(diag) more, then U.
func factorHessian(h []float64, n int, damp float64, threads int) *hessianFactor {
	f := &hessianFactor{}
	var mean float64
	for i := 0; i < n; i++ {
		if h[i*n+i] == 0 {
			h[i*n+i] = 1
			f.dead = append(f.dead, i)
		}
		mean += h[i*n+i]
	}
	mean /= float64(n)
	for i := 0; i < n; i++ {
		h[i*n+i] += damp * mean
	}
	f.u, _ = inverseUpperFactor(h, n, threads)
	return f
}

// gptqWeight quantizes w [out][in] (f32 values of the source weight) with
// the factored Hessian f in groups of gs inputs. stable is false when the
// dampened Hessian was not positive definite: the weight is then rounded
// to nearest (the same codes as round to nearest gives).
func gptqWeight(w []float32, f *hessianFactor, out, in, gs int, asym bool, scaleType weights.DType, blockSize int, threads int) (*int4Result, bool, error) {
	u := f.u
	if u == nil { // round to nearest: no error moves between columns
		s, z, err := int4Params(w, out, in, gs, asym, scaleType)
		if err != nil {
			return nil, false, err
		}
		return &int4Result{codes: int4Codes(w, out, in, gs, s, z), scales: s, zeros: z}, false, nil
	}
	// The columns of W, each contiguous: wt[c*out+o] = W[o][c]; the dead
	// ones zero.
	wt := make([]float64, in*out)
	for o := 0; o < out; o++ {
		for c := 0; c < in; c++ {
			wt[c*out+o] = float64(w[o*in+c])
		}
	}
	for _, i := range f.dead {
		clear(wt[i*out : (i+1)*out])
	}
	groups := (in + gs - 1) / gs
	res := &int4Result{codes: make([]int8, out*in), scales: make([]float32, out*groups)}
	if asym {
		res.zeros = make([]int8, out*groups)
	}
	col := make([]float32, out)
	errs := make([]float64, blockSize*out) // the block's scaled errors, column by column
	var gScales []float32
	var gZeros []int8
	for i1 := 0; i1 < in; i1 += blockSize {
		i2 := min(i1+blockSize, in)
		for c := i1; c < i2; c++ {
			if c%gs == 0 {
				var err error
				if gScales, gZeros, err = groupParams(wt, u, errs, out, in, c, min(c+gs, in), i1, i2, asym, scaleType); err != nil {
					return nil, false, err
				}
				g := c / gs
				for o := 0; o < out; o++ {
					res.scales[o*groups+g] = gScales[o]
					if asym {
						res.zeros[o*groups+g] = gZeros[o]
					}
				}
			}
			wc := wt[c*out : (c+1)*out]
			for o, v := range wc {
				col[o] = float32(v)
			}
			codes := int4Codes(col, out, 1, 1, gScales, gZeros)
			d := u[c*in+c]
			e := errs[(c-i1)*out : (c-i1+1)*out]
			for o, q := range codes {
				res.codes[o*in+c] = q
				var z float32
				if asym {
					z = float32(gZeros[o])
				}
				deq := (float32(q) - z) * gScales[o]
				e[o] = (wc[o] - float64(deq)) / d
			}
			// The rest of the block now, the columns beyond it once per block.
			for j := c + 1; j < i2; j++ {
				if uc := u[c*in+j]; uc != 0 {
					wj := wt[j*out : (j+1)*out]
					for o, v := range e {
						wj[o] -= v * uc
					}
				}
			}
		}
		if i2 < in {
			propagate(wt, u, errs, out, in, i1, i2, threads)
		}
	}
	return res, true, nil
}

// propagate applies the errors of the block [i1, i2) to the columns
// beyond it, wt[j] −= Σ_c U[c][j]·errs[c], as one f32 matrix product
// [in−i2 × block]·[block × out] (the kernels').
func propagate(wt, u, errs []float64, out, in, i1, i2, threads int) {
	rest, nb := in-i2, i2-i1
	a := make([]float32, rest*nb) // a[j][c] = U[i1+c][i2+j]
	for c := 0; c < nb; c++ {
		for j, v := range u[(i1+c)*in+i2 : (i1+c+1)*in] {
			a[j*nb+c] = float32(v)
		}
	}
	e := make([]float32, nb*out)
	for i, v := range errs[:nb*out] {
		e[i] = float32(v)
	}
	d := make([]float32, rest*out)
	kernels.MatMul(d, a, e, rest, out, nb, false, threads)
	for i, v := range d {
		wt[i2*out+i] -= float64(v)
	}
}

// groupParams returns the scales and zero points of the group of columns
// [c0, c1) from their current values: the columns inside the block
// [i1, i2) are up to date, those beyond it still miss the updates of the
// block's columns [i1, c0), applied here to a copy.
func groupParams(wt, u, errs []float64, out, in, c0, c1, i1, i2 int, asym bool, scaleType weights.DType) ([]float32, []int8, error) {
	n := c1 - c0
	grp := make([]float32, out*n) // [out][n]
	cur := make([]float64, out)
	for j := c0; j < c1; j++ {
		copy(cur, wt[j*out:(j+1)*out])
		if j >= i2 {
			for c := i1; c < c0; c++ {
				if uc := u[c*in+j]; uc != 0 {
					for o, v := range errs[(c-i1)*out : (c-i1+1)*out] {
						cur[o] -= v * uc
					}
				}
			}
		}
		for o, v := range cur {
			grp[o*n+j-c0] = float32(v)
		}
	}
	return int4Params(grp, out, n, n, asym, scaleType)
}
