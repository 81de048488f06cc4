package kernels

import (
	"fmt"
	"math"
	"sync"
	"unsafe"
)

// Softmax replaces x by softmax(x), subtracting the maximum first so that no
// exp overflows. The result matches softmaxRef within a few ulps.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	mx := maxOf(x)
	scale(x, float32(1/softmaxExp(x, mx)))
}

// LayerNorm writes the layer normalization of the row x to dst (which may be
// x): (x-mean)/sqrt(variance+eps)*gamma + beta with the biased variance, as
// torch.nn.LayerNorm. gamma and beta may be nil (1 and 0).
func LayerNorm(dst, x, gamma, beta []float32, eps float32) {
	checkLen("LayerNorm dst", len(dst), len(x))
	if gamma != nil {
		checkLen("LayerNorm gamma", len(gamma), len(x))
	}
	if beta != nil {
		checkLen("LayerNorm beta", len(beta), len(x))
	}
	if len(x) == 0 {
		return
	}
	// As layerNormRef, with the sums vectorized (f64 sums of f32 values: the
	// order of the additions does not show in the f32 results).
	n := float64(len(x))
	sum, _ := sumSquares64(x, 0)
	mean := sum / n
	_, ss := sumSquares64(x, mean)
	rstd := float32(1 / math.Sqrt(float64(float32(ss/n)+eps)))
	normalize(dst, x, float32(mean), rstd, gamma, beta)
}

// normalize writes dst[i] = (x[i]-mean)*rstd*gamma[i] + beta[i], rounding each
// operation as layerNormRef does; gamma and beta may be nil.
func normalize(dst, x []float32, mean, rstd float32, gamma, beta []float32) {
	dst = dst[:len(x)]
	if gamma != nil && beta != nil {
		gamma, beta = gamma[:len(x)], beta[:len(x)]
		for i, v := range x {
			y := (v - mean) * rstd
			y *= gamma[i]
			dst[i] = y + beta[i]
		}
		return
	}
	for i, v := range x {
		y := (v - mean) * rstd
		if gamma != nil {
			y *= gamma[i]
		}
		if beta != nil {
			y += beta[i]
		}
		dst[i] = y
	}
}

// RMSNorm writes weight * x/sqrt(mean(x²)+eps) for the row x to dst (which may
// be x), as HF LlamaRMSNorm computes it in f32. weight may be nil (1).
func RMSNorm(dst, x, weight []float32, eps float32) {
	checkLen("RMSNorm dst", len(dst), len(x))
	if weight != nil {
		checkLen("RMSNorm weight", len(weight), len(x))
	}
	if len(x) == 0 {
		return
	}
	_, ss := sumSquares64(x, 0)
	r := float32(1 / math.Sqrt(float64(float32(ss/float64(len(x)))+eps)))
	dst = dst[:len(x)]
	if weight == nil {
		for i, v := range x {
			dst[i] = v * r
		}
		return
	}
	weight = weight[:len(x)]
	for i, v := range x {
		dst[i] = weight[i] * (v * r)
	}
}

// GELU applies the exact (erf) GELU in place: x*0.5*(1+erf(x/√2)).
func GELU(x []float32) {
	geluFast(x)
}

// GELUTanh applies the tanh approximation of GELU in place, as HF's
// "gelu_new" and "gelu_pytorch_tanh".
func GELUTanh(x []float32) {
	geluTanhFast(x)
}

// SiLU applies x*sigmoid(x) in place.
func SiLU(x []float32) {
	siluFast(x)
}

// RoPEInvFreq returns the inverse frequencies 1/theta^(2i/headDim), i <
// headDim/2, of HF's default rotary embedding, computed in f32 as HF does.
// Models with a scaled RoPE (e.g. Llama 3's "llama3" rope_type) adjust these
// and call RoPEFreq.
func RoPEInvFreq(headDim int, theta float64) []float32 {
	if headDim <= 0 || headDim%2 != 0 {
		panic(fmt.Sprintf("kernels: RoPE head dimension %d is not a positive even number", headDim))
	}
	return ropeInvFreqRef(headDim, theta)
}

// RoPE rotates one head vector x[:headDim] at position pos in place, in HF's
// rotate_half layout (the first half pairs with the second half), with the
// default inverse frequencies of RoPEInvFreq(headDim, theta).
func RoPE(x []float32, pos int, headDim int, theta float64) {
	checkLen("RoPE x", len(x), headDim)
	RoPEFreq(x, pos, cachedInvFreq(headDim, theta))
}

// RoPEFreq is RoPE with given inverse frequencies: it rotates
// x[:2*len(invFreq)] at position pos. The cos/sin values of positions below
// 1<<16 are computed once per set of frequencies and kept (a RoPETable), so
// that calling it for every head and position costs no trigonometry; the
// results are those of ropeRef either way.
func RoPEFreq(x []float32, pos int, invFreq []float32) {
	checkLen("RoPE x", len(x), 2*len(invFreq))
	if pos < 0 {
		panic(fmt.Sprintf("kernels: RoPE at negative position %d", pos))
	}
	if pos >= maxCachedPositions || len(invFreq) == 0 {
		ropeRef(x, pos, invFreq)
		return
	}
	cachedRoPETable(invFreq, pos).Apply(x, pos)
}

// RoPETable holds cos(pos·invFreq[i]) and sin(pos·invFreq[i]), rounded to f32
// as ropeRef computes them, for positions [0, Positions()). It is immutable
// and safe for concurrent use.
type RoPETable struct {
	half     int
	cos, sin []float32 // [pos][half]
}

// NewRoPETable computes the table of the given inverse frequencies for
// positions [0, positions).
func NewRoPETable(invFreq []float32, positions int) *RoPETable {
	if positions < 0 {
		panic(fmt.Sprintf("kernels: RoPE table of %d positions", positions))
	}
	h := len(invFreq)
	t := &RoPETable{half: h, cos: make([]float32, positions*h), sin: make([]float32, positions*h)}
	for p := 0; p < positions; p++ {
		for i, f := range invFreq {
			a := float64(float32(p) * f)
			t.cos[p*h+i] = float32(math.Cos(a))
			t.sin[p*h+i] = float32(math.Sin(a))
		}
	}
	return t
}

// NewScaledRoPETable is NewRoPETable with cos and sin each multiplied by
// scale after rounding to f32, as transformers scales them by a rotary
// embedding's attention_scaling (LongRoPE, YaRN).
func NewScaledRoPETable(invFreq []float32, positions int, scale float32) *RoPETable {
	t := NewRoPETable(invFreq, positions)
	for i := range t.cos {
		t.cos[i] *= scale
		t.sin[i] *= scale
	}
	return t
}

// Positions returns the number of positions the table covers.
func (t *RoPETable) Positions() int {
	if t.half == 0 {
		return 0
	}
	return len(t.cos) / t.half
}

// Apply rotates x[:2*len(invFreq)] at position pos (< Positions()) in place,
// with the same result as RoPEFreq.
func (t *RoPETable) Apply(x []float32, pos int) {
	h := t.half
	if pos < 0 || pos >= t.Positions() {
		panic(fmt.Sprintf("kernels: RoPE position %d outside table of %d", pos, t.Positions()))
	}
	checkLen("RoPE x", len(x), 2*h)
	cs, sn := t.cos[pos*h:(pos+1)*h], t.sin[pos*h:(pos+1)*h]
	x1, x2 := x[:h], x[h:2*h]
	for i := range cs {
		c, s := cs[i], sn[i]
		a, b := x1[i], x2[i]
		x1[i] = float32(a*c) + float32(-b*s)
		x2[i] = float32(b*c) + float32(a*s)
	}
}

// maxCachedPositions bounds the tables RoPEFreq keeps (64 Ki positions of a
// 128-dimension head are 32 MiB), maxCachedTables their number.
const (
	maxCachedPositions = 1 << 16
	maxCachedTables    = 16
)

var ropeCache struct {
	sync.RWMutex
	invFreq map[ropeKey][]float32
	tables  map[string]*RoPETable // by the bytes of invFreq
}

type ropeKey struct {
	headDim int
	theta   float64
}

// cachedInvFreq returns RoPEInvFreq(headDim, theta), computed once.
func cachedInvFreq(headDim int, theta float64) []float32 {
	k := ropeKey{headDim, theta}
	ropeCache.RLock()
	inv, ok := ropeCache.invFreq[k]
	ropeCache.RUnlock()
	if ok {
		return inv
	}
	inv = RoPEInvFreq(headDim, theta)
	ropeCache.Lock()
	defer ropeCache.Unlock()
	if ropeCache.invFreq == nil || len(ropeCache.invFreq) >= maxCachedTables {
		ropeCache.invFreq = map[ropeKey][]float32{}
	}
	ropeCache.invFreq[k] = inv
	return inv
}

// cachedRoPETable returns a table of invFreq covering pos, growing the kept
// one (to a power of two ≥ 256 positions) when it is too short.
func cachedRoPETable(invFreq []float32, pos int) *RoPETable {
	key := unsafe.Slice((*byte)(unsafe.Pointer(&invFreq[0])), 4*len(invFreq))
	ropeCache.RLock()
	t := ropeCache.tables[string(key)]
	ropeCache.RUnlock()
	if t != nil && pos < t.Positions() {
		return t
	}
	ropeCache.Lock()
	defer ropeCache.Unlock()
	if t = ropeCache.tables[string(key)]; t != nil && pos < t.Positions() {
		return t
	}
	n := 256
	for n <= pos {
		n *= 2
	}
	t = NewRoPETable(invFreq, min(n, maxCachedPositions))
	if ropeCache.tables == nil || len(ropeCache.tables) >= maxCachedTables {
		ropeCache.tables = map[string]*RoPETable{}
	}
	ropeCache.tables[string(key)] = t
	return t
}

// Embedding writes row `row` of table, a [Vocab×Dim] matrix (InMajor false,
// Out = Vocab, In = Dim) in any supported dtype, to dst[:Dim] as f32.
func Embedding(dst []float32, table *Weight, row int) {
	table.mustValidate()
	if table.InMajor {
		panic("kernels: Embedding table must be stored [Vocab][Dim] (InMajor false)")
	}
	if row < 0 || row >= table.Out {
		panic(fmt.Sprintf("kernels: Embedding row %d outside vocabulary of %d", row, table.Out))
	}
	checkLen("Embedding dst", len(dst), table.In)
	src := newBSource(table)
	src.widenRow(dst[:table.In], row, 0)
}

// Accuracy of the fast element-wise kernels against their references, in
// units in the last place of the f32 result (what the tests check). Both
// sides round an exp or erf to f32 on the way (about an ulp each), hence a
// few ulps between them. The GELUs also admit |x|·2⁻²³ where the reference
// loses accuracy in 1+erf near erf = -1 (see checkUnary).
const (
	geluULP     = 3
	geluTanhULP = 3
	siluULP     = 4
	softmaxULP  = 4
)
