package kernels

import (
	"encoding/binary"
	"fmt"
)

// Int4 is a weight in the compressed-tensors pack-quantized layout (W4A16):
// 4-bit codes q in [-8, 7], stored as q+8 eight to a little-endian int32,
// element 8k+i of a row in bits 4i..4i+3 of the row's word k, a row holding
// ceil(In/8) words (the last one padded with zero nibbles); a scale per
// output channel and group of GroupSize consecutive inputs (the last group
// of a row may be shorter), and for asymmetric weights a zero point per
// scale, packed the same way but down the output dimension: word [r][g]
// holds the zero points of outputs 8r..8r+7 of group g. The value is
// w = (q - zero) · scale, computed in f32 (q - zero is an exact small
// integer, so it is one f32 product).
type Int4 struct {
	Out, In int
	// GroupSize is the inputs per scale; 0 means one scale per output
	// channel (a single group of In).
	GroupSize int
	// Packed is Out·ceil(In/8) little-endian int32 words.
	Packed []byte
	// Scales is [Out][Groups()].
	Scales []float32
	// Zeros is nil (symmetric) or ceil(Out/8)·Groups() packed words.
	Zeros []byte
}

// Groups returns the number of scales per output channel.
func (w *Int4) Groups() int {
	if w.GroupSize <= 0 || w.GroupSize >= w.In {
		return 1
	}
	return (w.In + w.GroupSize - 1) / w.GroupSize
}

// group returns the effective group length.
func (w *Int4) group() int {
	if w.Groups() == 1 {
		return w.In
	}
	return w.GroupSize
}

// Validate checks that the lengths of the packed codes, scales and zero
// points agree with the shape. Errors wrap ErrInvalidWeight.
func (w *Int4) Validate() error {
	if w.Out <= 0 || w.In <= 0 || w.GroupSize < 0 {
		return fmt.Errorf("%w: int4 shape %d×%d, group size %d", ErrInvalidWeight, w.Out, w.In, w.GroupSize)
	}
	words := (w.In + 7) / 8
	const maxInt = int(^uint(0) >> 1)
	if w.Out > maxInt/4/words {
		return fmt.Errorf("%w: int4 shape %d×%d overflows", ErrInvalidWeight, w.Out, w.In)
	}
	if want := 4 * w.Out * words; len(w.Packed) != want {
		return fmt.Errorf("%w: int4 %d×%d needs %d packed bytes, have %d", ErrInvalidWeight, w.Out, w.In, want, len(w.Packed))
	}
	if want := w.Out * w.Groups(); len(w.Scales) != want {
		return fmt.Errorf("%w: int4 %d×%d with %d groups needs %d scales, have %d", ErrInvalidWeight, w.Out, w.In, w.Groups(), want, len(w.Scales))
	}
	if w.Zeros != nil {
		if want := 4 * ((w.Out + 7) / 8) * w.Groups(); len(w.Zeros) != want {
			return fmt.Errorf("%w: int4 %d×%d needs %d zero-point bytes, have %d", ErrInvalidWeight, w.Out, w.In, want, len(w.Zeros))
		}
	}
	return nil
}

// Code returns the 4-bit code q of output o, input i.
func (w *Int4) Code(o, i int) int {
	words := (w.In + 7) / 8
	word := binary.LittleEndian.Uint32(w.Packed[4*(o*words+i/8):])
	return int(word>>(4*(i%8))&15) - 8
}

// Zero returns the zero point of output o, group g (0 when symmetric).
func (w *Int4) Zero(o, g int) int {
	if w.Zeros == nil {
		return 0
	}
	word := binary.LittleEndian.Uint32(w.Zeros[4*((o/8)*w.Groups()+g):])
	return int(word>>(4*(o%8))&15) - 8
}

// DequantizeRow writes the f32 values of output row o to dst (len In).
func (w *Int4) DequantizeRow(dst []float32, o int) {
	dst = dst[:w.In]
	words := (w.In + 7) / 8
	groups, gs := w.Groups(), w.group()
	row := w.Packed[4*o*words : 4*(o+1)*words]
	for g := 0; g < groups; g++ {
		s := w.Scales[o*groups+g]
		z := w.Zero(o, g)
		var lut [16]float32 // value of each unsigned code u = q+8
		for u := range lut {
			lut[u] = float32(u-8-z) * s
		}
		for i := g * gs; i < min((g+1)*gs, w.In); i++ {
			u := binary.LittleEndian.Uint32(row[4*(i/8):]) >> (4 * (i % 8)) & 15
			dst[i] = lut[u]
		}
	}
}

// widenRange writes the values of output o at inputs pc..pc+len(dst)-1.
func (w *Int4) widenRange(dst []float32, o, pc int) {
	words := (w.In + 7) / 8
	groups, gs := w.Groups(), w.group()
	row := w.Packed[4*o*words : 4*(o+1)*words]
	for i := 0; i < len(dst); {
		g := (pc + i) / gs
		end := min(len(dst), (g+1)*gs-pc)
		s, z := w.Scales[o*groups+g], w.Zero(o, g)
		if k := pc + i; k%2 == 0 && end-i >= 16 {
			// Whole blocks of 16 codes with the assembly widener.
			nb := (end - i) / 16
			if widenInt4Blocks(dst[i:i+16*nb], row[k/2:k/2+8*nb], nb, s, float32(8+z)) {
				if i += 16 * nb; i == end {
					continue
				}
			}
		}
		var lut [16]float32
		for u := range lut {
			lut[u] = float32(u-8-z) * s
		}
		for i < end {
			k := pc + i
			if k%8 != 0 || end-i < 8 {
				dst[i] = lut[binary.LittleEndian.Uint32(row[4*(k/8):])>>(4*(k%8))&15]
				i++
				continue
			}
			// A whole word: eight codes, low nibble first.
			word := binary.LittleEndian.Uint32(row[4*(k/8):])
			d := dst[i : i+8 : i+8]
			d[0], d[1], d[2], d[3] = lut[word&15], lut[word>>4&15], lut[word>>8&15], lut[word>>12&15]
			d[4], d[5], d[6], d[7] = lut[word>>16&15], lut[word>>20&15], lut[word>>24&15], lut[word>>28]
			i += 8
		}
	}
}

// Dequantize returns the weight as f32, [Out][In]; w must be valid.
func (w *Int4) Dequantize() []float32 {
	out := make([]float32, w.Out*w.In)
	for o := 0; o < w.Out; o++ {
		w.DequantizeRow(out[o*w.In:(o+1)*w.In], o)
	}
	return out
}

// PackInt4 packs codes q in [-8, 7] along rows of length n into ceil(n/8)
// little-endian words per row (the layout of Int4.Packed).
func PackInt4(q []int8, rows, n int) []byte {
	words := (n + 7) / 8
	out := make([]byte, 4*rows*words)
	for r := 0; r < rows; r++ {
		for k := 0; k < words; k++ {
			var word uint32
			for i := 0; i < 8 && 8*k+i < n; i++ {
				word |= uint32(q[r*n+8*k+i]+8) & 15 << (4 * i)
			}
			binary.LittleEndian.PutUint32(out[4*(r*words+k):], word)
		}
	}
	return out
}

// PackInt4Columns packs codes z [rows][cols] in [-8, 7] down the columns:
// word [r/8][c] holds z[8(r/8)+i][c] in bits 4i (the layout of Int4.Zeros).
func PackInt4Columns(z []int8, rows, cols int) []byte {
	wr := (rows + 7) / 8
	out := make([]byte, 4*wr*cols)
	for k := 0; k < wr; k++ {
		for c := 0; c < cols; c++ {
			var word uint32
			for i := 0; i < 8 && 8*k+i < rows; i++ {
				word |= uint32(z[(8*k+i)*cols+c]+8) & 15 << (4 * i)
			}
			binary.LittleEndian.PutUint32(out[4*(k*cols+c):], word)
		}
	}
	return out
}

// Rows returns outputs lo..hi-1 of w as an int4 weight: the packed codes
// and scales are views of w's; zero points are repacked (they are packed
// down the outputs, so a slice not starting at a multiple of 8 moves them).
func (w *Int4) Rows(lo, hi int) *Int4 {
	words, groups := (w.In+7)/8, w.Groups()
	r := &Int4{Out: hi - lo, In: w.In, GroupSize: w.GroupSize,
		Packed: w.Packed[4*lo*words : 4*hi*words : 4*hi*words], Scales: w.Scales[lo*groups : hi*groups : hi*groups]}
	if w.Zeros != nil {
		z := make([]int8, (hi-lo)*groups)
		for o := lo; o < hi; o++ {
			for g := 0; g < groups; g++ {
				z[(o-lo)*groups+g] = int8(w.Zero(o, g))
			}
		}
		r.Zeros = PackInt4Columns(z, hi-lo, groups)
	}
	return r
}

// rowsInt4 sets y[t][o] = bias[o] + Σ_i x[t][i]·W[o][i] for outputs o0..o1-1
// of the int4 weight w (the gemv path): with the fused assembly kernel
// where it applies (rowsInt4Fast), else with dotInt4.
func rowsInt4(y, x []float32, m int, w *Int4, o0, o1 int, bias []float32) {
	if rowsInt4Fast(y, x, m, w, o0, o1, bias) {
		return
	}
	n, k := w.Out, w.In
	words := (k + 7) / 8
	for o := o0; o < o1; o++ {
		row := w.Packed[4*o*words : 4*(o+1)*words]
		for t := 0; t < m; t++ {
			s := dotInt4(x[t*k:(t+1)*k], row, w, o, 0, k)
			if bias != nil {
				s += bias[o]
			}
			y[t*n+o] = s
		}
	}
}

// dotInt4 returns Σ_{i0 ≤ i < i1} xt[i]·W[o][i], row being output o's
// packed codes: codes are looked up in a table of the group's 16 values and
// multiplied into the sum as they are unpacked, a word (eight inputs) at a
// time, with no widened row in between.
func dotInt4(xt []float32, row []byte, w *Int4, o, i0, i1 int) float32 {
	groups, gs := w.Groups(), w.group()
	var s0, s1 float32
	for i := i0; i < i1; {
		g := i / gs
		sc, z := w.Scales[o*groups+g], w.Zero(o, g)
		var lut [16]float32
		for u := range lut {
			lut[u] = float32(u-8-z) * sc
		}
		end := min((g+1)*gs, i1)
		for i < end {
			if i%8 != 0 || end-i < 8 {
				s0 += xt[i] * lut[binary.LittleEndian.Uint32(row[4*(i/8):])>>(4*(i%8))&15]
				i++
				continue
			}
			word := binary.LittleEndian.Uint32(row[4*(i/8):])
			xs := xt[i : i+8 : i+8]
			s0 += xs[0]*lut[word&15] + xs[2]*lut[word>>8&15] + xs[4]*lut[word>>16&15] + xs[6]*lut[word>>24&15]
			s1 += xs[1]*lut[word>>4&15] + xs[3]*lut[word>>12&15] + xs[5]*lut[word>>20&15] + xs[7]*lut[word>>28]
			i += 8
		}
	}
	return s0 + s1
}
