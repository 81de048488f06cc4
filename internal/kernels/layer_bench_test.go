package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// The kernel sequence of one transformer layer, with the shapes of the
// acceptance goal, to see what the kernels cost together (the models in
// package forward make the same calls). bench/kernels_torch.py times the
// same sequence in PyTorch ("layer" rows).

// BenchmarkBERTLayer runs one BERT-base layer (hidden 768, 12 heads,
// intermediate 3072) at sequence 128; the forward pass is 12 of these.
func BenchmarkBERTLayer(b *testing.B) {
	const s, h, heads, dh, inter = 128, 768, 12, 64, 3072
	rng := rand.New(rand.NewPCG(9, 9))
	wq, wk, wv, wo := makeWeight(rng, h, h, weights.F32, false, 0), makeWeight(rng, h, h, weights.F32, false, 0),
		makeWeight(rng, h, h, weights.F32, false, 0), makeWeight(rng, h, h, weights.F32, false, 0)
	wi, wd := makeWeight(rng, inter, h, weights.F32, false, 0), makeWeight(rng, h, inter, weights.F32, false, 0)
	bq, bk, bv, bo, bi, bd := randF32(rng, h), randF32(rng, h), randF32(rng, h), randF32(rng, h), randF32(rng, inter), randF32(rng, h)
	gamma, beta := randF32(rng, h), randF32(rng, h)
	x := randF32(rng, s*h)
	q, k, v, ctx, attn := make([]float32, s*h), make([]float32, s*h), make([]float32, s*h), make([]float32, s*h), make([]float32, s*h)
	qh, kh, vh, ch := make([]float32, s*dh), make([]float32, s*dh), make([]float32, s*dh), make([]float32, s*dh)
	scores := make([]float32, s*s)
	ff := make([]float32, s*inter)
	for _, threads := range []int{1, 2} {
		b.Run(threadsName(threads), func(b *testing.B) {
			for b.Loop() {
				Linear(q, x, s, wq, bq, threads)
				Linear(k, x, s, wk, bk, threads)
				Linear(v, x, s, wv, bv, threads)
				for hd := 0; hd < heads; hd++ {
					gatherHead(qh, q, s, h, hd*dh, dh)
					gatherHead(kh, k, s, h, hd*dh, dh)
					gatherHead(vh, v, s, h, hd*dh, dh)
					MatMul(scores, qh, kh, s, s, dh, true, threads)
					for r := 0; r < s; r++ {
						row := scores[r*s : (r+1)*s]
						for i := range row {
							row[i] *= 0.125
						}
						Softmax(row)
					}
					MatMul(ch, scores, vh, s, dh, s, false, threads)
					scatterHead(ctx, ch, s, h, hd*dh, dh)
				}
				Linear(attn, ctx, s, wo, bo, threads)
				for i := range attn {
					attn[i] += x[i]
				}
				for r := 0; r < s; r++ {
					LayerNorm(attn[r*h:(r+1)*h], attn[r*h:(r+1)*h], gamma, beta, 1e-12)
				}
				Linear(ff, attn, s, wi, bi, threads)
				GELU(ff)
				Linear(q, ff, s, wd, bd, threads)
				for i := range q {
					q[i] += attn[i]
				}
				for r := 0; r < s; r++ {
					LayerNorm(q[r*h:(r+1)*h], q[r*h:(r+1)*h], gamma, beta, 1e-12)
				}
			}
			flops := 2 * float64(s) * (4*h*h + 2*h*inter + 2*s*h)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkLlamaLayer runs one Llama-1B-shaped layer (hidden 2048, 32 heads,
// 8 KV heads, intermediate 8192) at sequence 256 with a causal mask.
func BenchmarkLlamaLayer(b *testing.B) {
	const s, h, heads, kvHeads, dh, inter = 256, 2048, 32, 8, 64, 8192
	const kvDim = kvHeads * dh
	rng := rand.New(rand.NewPCG(9, 10))
	wq, wo := makeWeight(rng, h, h, weights.F32, false, 0), makeWeight(rng, h, h, weights.F32, false, 0)
	wk, wv := makeWeight(rng, kvDim, h, weights.F32, false, 0), makeWeight(rng, kvDim, h, weights.F32, false, 0)
	wg, wu, wd := makeWeight(rng, inter, h, weights.F32, false, 0), makeWeight(rng, inter, h, weights.F32, false, 0),
		makeWeight(rng, h, inter, weights.F32, false, 0)
	norm1, norm2 := randF32(rng, h), randF32(rng, h)
	x := randF32(rng, s*h)
	xn, q, attn := make([]float32, s*h), make([]float32, s*h), make([]float32, s*h)
	k, v := make([]float32, s*kvDim), make([]float32, s*kvDim)
	ctx := make([]float32, s*h)
	qh, kh, vh, ch := make([]float32, s*dh), make([]float32, s*dh), make([]float32, s*dh), make([]float32, s*dh)
	scores := make([]float32, s*s)
	gate, up := make([]float32, s*inter), make([]float32, s*inter)
	invFreq := RoPEInvFreq(dh, 500000)
	negInf := float32(math.Inf(-1))
	for _, threads := range []int{1, 2} {
		b.Run(threadsName(threads), func(b *testing.B) {
			for b.Loop() {
				for r := 0; r < s; r++ {
					RMSNorm(xn[r*h:(r+1)*h], x[r*h:(r+1)*h], norm1, 1e-5)
				}
				Linear(q, xn, s, wq, nil, threads)
				Linear(k, xn, s, wk, nil, threads)
				Linear(v, xn, s, wv, nil, threads)
				for r := 0; r < s; r++ {
					for hd := 0; hd < heads; hd++ {
						RoPEFreq(q[r*h+hd*dh:], r, invFreq)
					}
					for hd := 0; hd < kvHeads; hd++ {
						RoPEFreq(k[r*kvDim+hd*dh:], r, invFreq)
					}
				}
				for hd := 0; hd < heads; hd++ {
					kv := hd / (heads / kvHeads)
					gatherHead(qh, q, s, h, hd*dh, dh)
					gatherHead(kh, k, s, kvDim, kv*dh, dh)
					gatherHead(vh, v, s, kvDim, kv*dh, dh)
					MatMul(scores, qh, kh, s, s, dh, true, threads)
					for r := 0; r < s; r++ {
						row := scores[r*s : (r+1)*s]
						for i := range row {
							if i > r {
								row[i] = negInf
							} else {
								row[i] *= 0.125
							}
						}
						Softmax(row)
					}
					MatMul(ch, scores, vh, s, dh, s, false, threads)
					scatterHead(ctx, ch, s, h, hd*dh, dh)
				}
				Linear(attn, ctx, s, wo, nil, threads)
				for i := range attn {
					attn[i] += x[i]
				}
				for r := 0; r < s; r++ {
					RMSNorm(xn[r*h:(r+1)*h], attn[r*h:(r+1)*h], norm2, 1e-5)
				}
				Linear(gate, xn, s, wg, nil, threads)
				Linear(up, xn, s, wu, nil, threads)
				SiLU(gate)
				for i := range gate {
					gate[i] *= up[i]
				}
				Linear(q, gate, s, wd, nil, threads)
				for i := range q {
					q[i] += attn[i]
				}
			}
			flops := 2 * float64(s) * (2*h*h + 2*h*kvDim + 3*h*inter + 2*s*h)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func threadsName(t int) string { return "threads=" + string(rune('0'+t)) }

// gatherHead copies columns [c0, c0+dh) of the s×ld matrix src to dst[s×dh].
func gatherHead(dst, src []float32, s, ld, c0, dh int) {
	for r := 0; r < s; r++ {
		copy(dst[r*dh:(r+1)*dh], src[r*ld+c0:r*ld+c0+dh])
	}
}

// scatterHead copies src[s×dh] to columns [c0, c0+dh) of the s×ld matrix dst.
func scatterHead(dst, src []float32, s, ld, c0, dh int) {
	for r := 0; r < s; r++ {
		copy(dst[r*ld+c0:r*ld+c0+dh], src[r*dh:(r+1)*dh])
	}
}
