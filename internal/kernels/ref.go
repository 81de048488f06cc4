package kernels

import (
	"encoding/binary"
	"math"

	"github.com/hubmirror/hubmirror/weights"
)

// The plain-loop references. Each is the definition of its kernel: the fast
// versions are tested against them, and they document the exact order of
// the f32 operations where it matters.

// at returns W[o][i] widened to f32 exactly; for I8 it is the f32 product
// float32(q)*scale.
func (w *Weight) at(o, i int) float32 {
	idx := o*w.In + i
	if w.InMajor {
		idx = i*w.Out + o
	}
	switch w.DType {
	case weights.F32:
		return math.Float32frombits(binary.LittleEndian.Uint32(w.Data[4*idx:]))
	case weights.F16:
		return weights.F16ToFloat32(binary.LittleEndian.Uint16(w.Data[2*idx:]))
	case weights.BF16:
		return weights.BF16ToFloat32(binary.LittleEndian.Uint16(w.Data[2*idx:]))
	case weights.I8:
		return float32(int8(w.Data[idx])) * w.scale(o, i)
	case weights.I32:
		q := w.Int4
		g := i / q.group()
		return float32(q.Code(o, i)-q.Zero(o, g)) * q.Scales[o*q.Groups()+g]
	}
	panic("kernels: unsupported dtype " + w.DType.String())
}

// linearRef computes
//
//	for t := 0; t < m; t++ {
//		for o := 0; o < w.Out; o++ {
//			var s float32
//			for i := 0; i < w.In; i++ {
//				s += x[t*w.In+i] * W[o][i]
//			}
//			y[t*w.Out+o] = s + bias[o] // s when bias is nil
//		}
//	}
func linearRef(y, x []float32, m int, w *Weight, bias []float32) {
	for t := 0; t < m; t++ {
		for o := 0; o < w.Out; o++ {
			var s float32
			for i := 0; i < w.In; i++ {
				s += x[t*w.In+i] * w.at(o, i)
			}
			if bias != nil {
				s += bias[o]
			}
			y[t*w.Out+o] = s
		}
	}
}

// matmulRef computes
//
//	for i := 0; i < m; i++ {
//		for j := 0; j < n; j++ {
//			var s float32
//			for p := 0; p < k; p++ {
//				s += a[i*k+p] * b[p*n+j] // b[j*k+p] when transB
//			}
//			c[i*n+j] = s
//		}
//	}
func matmulRef(c, a, b []float32, m, n, k int, transB bool) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				if transB {
					s += a[i*k+p] * b[j*k+p]
				} else {
					s += a[i*k+p] * b[p*n+j]
				}
			}
			c[i*n+j] = s
		}
	}
}

// softmaxRef computes, with exp evaluated in f64 and rounded to f32,
//
//	mx := max(x)
//	for i := range x { x[i] = exp(x[i] - mx); sum += x[i] }  // sum in f64
//	for i := range x { x[i] *= 1 / sum }
func softmaxRef(x []float32) {
	if len(x) == 0 {
		return
	}
	mx := max32(x[0], x[1:])
	inv := float32(1 / softmaxExpRef(x, mx))
	scaleGo(x, inv)
}

// max32 returns the largest of mx and the values of x.
func max32(mx float32, x []float32) float32 {
	for _, v := range x {
		if v > mx {
			mx = v
		}
	}
	return mx
}

// scaleGo computes x[i] *= s.
func scaleGo(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}

// softmaxExpRef sets x[i] = exp(x[i]-mx), rounded to f32, and returns the
// f64 sum of the results.
func softmaxExpRef(x []float32, mx float32) float64 {
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - mx)))
		x[i] = e
		sum += float64(e)
	}
	return sum
}

// layerNormRef computes, with mean and variance accumulated in f64 and
// rounded to f32 (the biased variance, as torch.nn.LayerNorm),
//
//	mean := Σx/n; variance := Σ(x-mean)²/n; rstd := 1/sqrt(variance+eps)
//	dst[i] = (x[i]-mean)*rstd*gamma[i] + beta[i]
func layerNormRef(dst, x, gamma, beta []float32, eps float32) {
	n := len(x)
	mean := sum64(x) / float64(n)
	_, ss := sumSquares64Go(x, mean)
	mean32 := float32(mean)
	rstd := float32(1 / math.Sqrt(float64(float32(ss/float64(n))+eps)))
	for i, v := range x {
		y := (v - mean32) * rstd
		if gamma != nil {
			y *= gamma[i]
		}
		if beta != nil {
			y += beta[i]
		}
		dst[i] = y
	}
}

// rmsNormRef computes, as HF LlamaRMSNorm in f32 with the mean of squares
// accumulated in f64 and rounded to f32,
//
//	variance := Σx²/n; r := 1/sqrt(variance+eps)
//	dst[i] = weight[i] * (x[i]*r)
func rmsNormRef(dst, x, weight []float32, eps float32) {
	_, ss := sumSquares64Go(x, 0)
	r := float32(1 / math.Sqrt(float64(float32(ss/float64(len(x)))+eps)))
	for i, v := range x {
		y := v * r
		if weight != nil {
			y = weight[i] * y
		}
		dst[i] = y
	}
}

// sum64 returns Σx in f64 (four partial sums, so that the additions
// overlap; the f64 sum of f32 values is exact enough that the order does not
// show in the f32 results).
func sum64(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		s0 += float64(v[0])
		s1 += float64(v[1])
		s2 += float64(v[2])
		s3 += float64(v[3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// sumSquares64Go returns Σx and Σ(x-c)² in f64, as sum64.
func sumSquares64Go(x []float32, c float64) (sum, sumSquares float64) {
	var s0, s1, q0, q1 float64
	i := 0
	for ; i+2 <= len(x); i += 2 {
		v := x[i : i+2 : i+2]
		a, b := float64(v[0]), float64(v[1])
		s0 += a
		s1 += b
		a -= c
		b -= c
		q0 += a * a
		q1 += b * b
	}
	for ; i < len(x); i++ {
		a := float64(x[i])
		s0 += a
		a -= c
		q0 += a * a
	}
	return s0 + s1, q0 + q1
}

// geluRef computes x[i] = x[i]*0.5*(1+erf(x[i]/√2)) with erf in f64.
func geluRef(x []float32) {
	for i, v := range x {
		e := float32(math.Erf(float64(v) * (1 / math.Sqrt2)))
		x[i] = v * 0.5 * (1 + e)
	}
}

// geluTanhRef computes x[i] = 0.5*x*(1+tanh(√(2/π)*(x+0.044715*x³))) with
// tanh in f64.
func geluTanhRef(x []float32) {
	const k = 0.7978845608028654 // √(2/π)
	for i, v := range x {
		inner := float32(k) * (v + 0.044715*v*v*v)
		t := float32(math.Tanh(float64(inner)))
		x[i] = 0.5 * v * (1 + t)
	}
}

// siluRef computes x[i] = x[i] / (1 + exp(-x[i])) with exp in f64.
func siluRef(x []float32) {
	for i, v := range x {
		x[i] = v / (1 + float32(math.Exp(-float64(v))))
	}
}

// ropeInvFreqRef computes invFreq[i] = 1/theta^(2i/headDim) for i <
// headDim/2, in f32 as HF's default rotary embedding does.
func ropeInvFreqRef(headDim int, theta float64) []float32 {
	inv := make([]float32, headDim/2)
	for i := range inv {
		exp := float32(2*i) / float32(headDim)
		p := float32(math.Pow(float64(float32(theta)), float64(exp)))
		inv[i] = 1 / p
	}
	return inv
}

// ropeRef rotates one head vector of len(invFreq)*2 values at position pos,
// in HF's rotate_half layout: with h = len(invFreq), a = float32(pos)*invFreq[i],
//
//	x1, x2 := x[i], x[i+h]
//	x[i] = x1*cos(a) - x2*sin(a)
//	x[i+h] = x2*cos(a) + x1*sin(a)
//
// where cos and sin are evaluated in f64 and rounded to f32 and every product
// is rounded before the sum (no fused multiply-add), as PyTorch computes
// q*cos + rotate_half(q)*sin.
func ropeRef(x []float32, pos int, invFreq []float32) {
	h := len(invFreq)
	for i := 0; i < h; i++ {
		a := float32(pos) * invFreq[i]
		c := float32(math.Cos(float64(a)))
		s := float32(math.Sin(float64(a)))
		x1, x2 := x[i], x[i+h]
		x[i] = float32(x1*c) + float32(-x2*s)
		x[i+h] = float32(x2*c) + float32(x1*s)
	}
}

// embeddingRef computes dst[i] = table[row][i] widened to f32.
func embeddingRef(dst []float32, table *Weight, row int) {
	for i := 0; i < table.In; i++ {
		dst[i] = table.at(row, i)
	}
}
