package kernels

import (
	"encoding/binary"
	"math"
	"sync"
)

// An opt-in one-row path for Q4_K and Q6_K weights, llama.cpp's way of
// taking a token's products: the activation row x is rounded once per
// Linear call to 8-bit codes in blocks of 256 (q8K: one f32 scale d per
// block, d = max|x|/127, codes round(x/d) in -127..127, and the sum of
// every 16 codes), and each weight block's dot product is taken in integers
// (the 4- or 6-bit codes times the 8-bit codes, times the block's 6- or
// 8-bit scales and minimums: exact int32 sums), then scaled once per block
// in f32:
//
//	Q4_K  acc += (dw·dx)·Σ_j sc_j·Σ q·xq  −  (dmin·dx)·Σ_j m_j·Σ xq
//	Q6_K  acc += (dw·dx)·Σ_j sc_j·(Σ q·xq − 32·Σ xq)
//
// (j the sub-blocks of 32 or 16 values; each product and difference
// rounded to f32 in this order, no fused multiply-add). This differs from
// the exact path by the rounding of x (an error of at most 1/254 of the
// block's largest |x| per value), so it runs only for weights whose
// GGML.Q8Activations is set (forward.Options.GGMLQ8Activations); the exact
// path (ggmlDotRow) is the default and what validation runs. The assembly (ggml_q8_amd64.s) computes the same
// integer sums and the same f32 operations in the same order as the plain
// loops here, so its results are identical to theirs.

// q8K is a row of activations rounded to 8 bits in blocks of 256.
type q8K struct {
	qs    []int8    // the codes
	d     []float32 // a scale per 256 codes
	bsums []int16   // the sum of every 16 codes
}

var q8KBufs = sync.Pool{New: func() any { return new(q8K) }}

// quantizeQ8K rounds x (a whole number of 256-value blocks) into q.
func quantizeQ8K(q *q8K, x []float32) {
	nb := len(x) / 256
	if cap(q.qs) < nb*256 {
		q.qs, q.d, q.bsums = make([]int8, nb*256), make([]float32, nb), make([]int16, nb*16)
	}
	q.qs, q.d, q.bsums = q.qs[:nb*256], q.d[:nb], q.bsums[:nb*16]
	for b := 0; b < nb; b++ {
		xb, qb := x[b*256:(b+1)*256], q.qs[b*256:(b+1)*256]
		var amax float32
		for _, v := range xb {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		if !(amax > 0 && amax <= math.MaxFloat32) {
			// All zeros; or a NaN or an infinity, which makes the
			// block's products NaN, as it makes a sum NaN or infinite
			// on the exact path.
			clear(qb)
			clear(q.bsums[b*16 : (b+1)*16])
			q.d[b] = 0
			if amax != 0 {
				q.d[b] = float32(math.NaN())
			}
			continue
		}
		q.d[b] = amax / 127
		id := 127 / amax
		for i, v := range xb {
			c := math.RoundToEven(float64(v * id))
			qb[i] = int8(max(-127, min(127, c)))
		}
		for j := 0; j < 16; j++ {
			var s int16
			for _, c := range qb[j*16 : (j+1)*16] {
				s += int16(c)
			}
			q.bsums[b*16+j] = s
		}
	}
}

// dotQ4KQ8KGo is the plain loop of the Q4_K dot product with q8K
// activations over the len(src)/144 blocks of src.
func dotQ4KQ8KGo(src []byte, q *q8K) float32 {
	var acc float32
	for b := 0; b < len(src)/144; b++ {
		in := src[b*144 : (b+1)*144]
		dw := f16ToF32(binary.LittleEndian.Uint16(in))
		dmin := f16ToF32(binary.LittleEndian.Uint16(in[2:]))
		sc, qs, xq := in[4:16], in[16:144], q.qs[b*256:(b+1)*256]
		var isum, imin int32
		for j := 0; j < 8; j++ {
			s, m := scaleMinK4(j, sc)
			chunk, xs := qs[j/2*32:j/2*32+32], xq[j*32:(j+1)*32]
			var d int32
			for l, v := range chunk {
				if j%2 == 1 {
					v >>= 4
				}
				d += int32(v&0xf) * int32(xs[l])
			}
			isum += int32(s) * d
			imin += int32(m) * (int32(q.bsums[b*16+2*j]) + int32(q.bsums[b*16+2*j+1]))
		}
		a, c := float32(dw*q.d[b]), float32(dmin*q.d[b])
		acc = float32(acc + float32(float32(a*float32(isum))-float32(c*float32(imin))))
	}
	return acc
}

// dotQ6KQ8KGo is the plain loop of the Q6_K dot product with q8K
// activations over the len(src)/210 blocks of src.
func dotQ6KQ8KGo(src []byte, q *q8K) float32 {
	var acc float32
	for b := 0; b < len(src)/210; b++ {
		in := src[b*210 : (b+1)*210]
		dw := f16ToF32(binary.LittleEndian.Uint16(in[208:]))
		xq := q.qs[b*256 : (b+1)*256]
		var isum int32
		for j := 0; j < 16; j++ {
			var d int32
			for v := j * 16; v < (j+1)*16; v++ {
				h, r := v/128, v%128
				l := r % 32
				ql, qh := in[64*h:64*h+64], in[128+32*h:128+32*h+32]
				var c byte
				switch r / 32 {
				case 0:
					c = ql[l]&0xf | (qh[l]&3)<<4
				case 1:
					c = ql[l+32]&0xf | (qh[l]>>2&3)<<4
				case 2:
					c = ql[l]>>4 | (qh[l]>>4&3)<<4
				default:
					c = ql[l+32]>>4 | (qh[l]>>6&3)<<4
				}
				d += int32(c) * int32(xq[v])
			}
			isum += int32(int8(in[192+j])) * (d - 32*int32(q.bsums[b*16+j]))
		}
		a := float32(dw * q.d[b])
		acc = float32(acc + float32(a*float32(isum)))
	}
	return acc
}

// ggmlQ8Dot are the dot products with q8K activations, by weight type;
// assembly may replace entries (ggml_q8_amd64.go).
var ggmlQ8Dot = map[GGMLType]func(src []byte, q *q8K) float32{
	GGMLQ4_K: dotQ4KQ8KGo,
	GGMLQ6_K: dotQ6KQ8KGo,
}

// rowsGGMLQ8 is rowsGGML for one row of x with q8K activations, when w
// asks for them and its type has such a dot product; it reports whether it
// ran.
func rowsGGMLQ8(y, x []float32, w *GGML, o0, o1 int, bias []float32) bool {
	dotRow := ggmlQ8Dot[w.Type]
	if !w.Q8Activations || dotRow == nil || w.In%256 != 0 {
		return false
	}
	q := q8KBufs.Get().(*q8K)
	defer q8KBufs.Put(q)
	quantizeQ8K(q, x[:w.In])
	rb := w.rowBytes() // once: Row looks the block size up in a map
	for o := o0; o < o1; o++ {
		r := o
		if w.RowMap != nil {
			r = int(w.RowMap[o])
		}
		s := dotRow(w.Data[r*rb:(r+1)*rb:(r+1)*rb], q)
		if bias != nil {
			s += bias[o]
		}
		y[o] = s
	}
	return true
}
