package kernels

import (
	"encoding/binary"
	"fmt"
)

// The weights of a GGUF file used in their ggml blocks: a Weight whose
// GGML field is set (DType U8 marks it) is never widened to a full f32
// copy. The GEMM packer decodes the kcBlock-long stretch of each row it
// packs, and the small-m path (gemv.go) decodes a row at a time (or, for
// one row of x, takes the dot product block by block), through the
// functions of ggmlDecodeRow and ggmlDotRow, one per block type. Those are
// plain Go here; assembly may replace entries of the two tables in an
// init function of its own file (the tables are filled before any init
// runs), as long as it computes the same values: decoding equals ggml's
// dequantize_row_* (and package formats/gguf's Decode) bit for bit, and a
// dot product is Σ x[i]·w[i] over the decoded w in any order of the f32
// additions.

// GGMLType is a ggml tensor type (the values of ggml's enum ggml_type).
type GGMLType uint32

// The ggml types the kernels decode.
const (
	GGMLF32  GGMLType = 0
	GGMLF16  GGMLType = 1
	GGMLQ4_0 GGMLType = 2
	GGMLQ5_0 GGMLType = 6
	GGMLQ5_1 GGMLType = 7
	GGMLQ8_0 GGMLType = 8
	GGMLQ4_K GGMLType = 12
	GGMLQ5_K GGMLType = 13
	GGMLQ6_K GGMLType = 14
	GGMLBF16 GGMLType = 30
)

// ggmlBlocks are the values and bytes of one block of each type. The
// layouts are ggml-common.h's:
//
//	F32, F16, BF16  one value, 4, 2, 2 bytes (little-endian)
//	Q4_0  32 values, 18 bytes: d (f16), qs[16] (low nibbles values 0-15, high 16-31); w = (q-8)·d
//	Q5_0  32 values, 22 bytes: d (f16), qh[4] (fifth bits), qs[16]; w = (q-16)·d
//	Q5_1  32 values, 24 bytes: d, m (f16), qh[4], qs[16]; w = q·d + m
//	Q8_0  32 values, 34 bytes: d (f16), qs[32] (int8); w = q·d
//	Q4_K  256 values, 144 bytes: d, dmin (f16), scales[12] (eight 6-bit
//	      scales and mins), qs[128]; w = (d·sc)·q - dmin·m per 32 values
//	Q5_K  256 values, 176 bytes: d, dmin, scales[12], qh[32], qs[128]
//	Q6_K  256 values, 210 bytes: ql[128], qh[64], scales[16] (int8), d (f16);
//	      w = (d·sc)·(q-32) per 16 values
var ggmlBlocks = map[GGMLType]struct{ elems, bytes int }{
	GGMLF32:  {1, 4},
	GGMLF16:  {1, 2},
	GGMLBF16: {1, 2},
	GGMLQ4_0: {32, 18},
	GGMLQ5_0: {32, 22},
	GGMLQ5_1: {32, 24},
	GGMLQ8_0: {32, 34},
	GGMLQ4_K: {256, 144},
	GGMLQ5_K: {256, 176},
	GGMLQ6_K: {256, 210},
}

// Block returns the values and bytes of one block of t; ok is false for
// a type the kernels do not decode.
func (t GGMLType) Block() (elems, bytes int, ok bool) {
	b, ok := ggmlBlocks[t]
	return b.elems, b.bytes, ok
}

// String returns ggml's name of the type.
func (t GGMLType) String() string {
	if s, ok := map[GGMLType]string{GGMLF32: "F32", GGMLF16: "F16", GGMLBF16: "BF16", GGMLQ4_0: "Q4_0", GGMLQ5_0: "Q5_0",
		GGMLQ5_1: "Q5_1", GGMLQ8_0: "Q8_0", GGMLQ4_K: "Q4_K", GGMLQ5_K: "Q5_K", GGMLQ6_K: "Q6_K"}[t]; ok {
		return s
	}
	return fmt.Sprintf("GGMLType(%d)", uint32(t))
}

// ggmlDecodeRow decodes len(src)/bytes whole blocks of each type (bytes
// being the type's block size) into dst, one f32 per value, as ggml's
// dequantize_row_* does, bit for bit. dst holds at least the blocks'
// values.
var ggmlDecodeRow = map[GGMLType]func(dst []float32, src []byte){
	GGMLF32:  func(dst []float32, src []byte) { widenF32Bytes(dst[:len(src)/4], src) },
	GGMLF16:  func(dst []float32, src []byte) { widenF16(dst[:len(src)/2], src) },
	GGMLBF16: func(dst []float32, src []byte) { widenBF16(dst[:len(src)/2], src) },
	GGMLQ4_0: decodeQ4_0,
	GGMLQ5_0: decodeQ5_0,
	GGMLQ5_1: decodeQ5_1,
	GGMLQ8_0: decodeQ8_0,
	GGMLQ4_K: decodeQ4_K,
	GGMLQ5_K: decodeQ5_K,
	GGMLQ6_K: decodeQ6_K,
}

// ggmlDotRow returns Σ x[i]·w[i] over the values w of one row of whole
// blocks src of each type (len(x) values, decoded as ggmlDecodeRow
// decodes them), the additions in any order.
var ggmlDotRow = map[GGMLType]func(x []float32, src []byte) float32{
	GGMLF32:  dotDecoded(GGMLF32),
	GGMLF16:  dotDecoded(GGMLF16),
	GGMLBF16: dotDecoded(GGMLBF16),
	GGMLQ4_0: dotDecoded(GGMLQ4_0),
	GGMLQ5_0: dotDecoded(GGMLQ5_0),
	GGMLQ5_1: dotDecoded(GGMLQ5_1),
	GGMLQ8_0: dotDecoded(GGMLQ8_0),
	GGMLQ4_K: dotDecoded(GGMLQ4_K),
	GGMLQ5_K: dotDecoded(GGMLQ5_K),
	GGMLQ6_K: dotDecoded(GGMLQ6_K),
}

// dotDecoded returns the dot product of type t that decodes 256 values at
// a time with ggmlDecodeRow's plain Go function (looked up when the
// product runs, not when the table is built) into a buffer on the stack
// and takes their dot product with x's.
func dotDecoded(t GGMLType) func(x []float32, src []byte) float32 {
	b := ggmlBlocks[t]
	per := 256 / b.elems // blocks in 256 values
	return func(x []float32, src []byte) float32 {
		decode := ggmlDecodeRow[t]
		var buf [256]float32
		var s float32
		for i, off := 0, 0; off < len(src); i, off = i+256, off+per*b.bytes {
			chunk := src[off:min(off+per*b.bytes, len(src))]
			n := len(chunk) / b.bytes * b.elems
			decode(buf[:n], chunk)
			s += dot(x[i:i+n], buf[:n])
		}
		return s
	}
}

// GGML is a weight matrix of Out rows of In values stored in ggml blocks,
// as a GGUF file holds it: each row is In/elems whole blocks of Type.
type GGML struct {
	Type    GGMLType
	Out, In int
	// Data holds whole rows of In values: Out of them, or, with RowMap,
	// as many as RowMap refers to.
	Data []byte
	// RowMap, when not nil, gives the stored row of each of the Out rows:
	// row o of the weight is row RowMap[o] of Data (a permuted view, such
	// as Hugging Face's order of the q and k rows of a llama.cpp file).
	RowMap []int32
	// Q8Activations, when set, has a product with one row of x (a token)
	// round x to 8 bits and take integer dot products, as llama.cpp does,
	// for the types that have them (Q4_K, Q6_K; see ggml_q8.go): faster,
	// not exact. Off, the dot products are of the exact values of x.
	Q8Activations bool
}

// rowBytes returns the bytes of one stored row (w valid).
func (w *GGML) rowBytes() int {
	b := ggmlBlocks[w.Type]
	return w.In / b.elems * b.bytes
}

// Validate checks the type, that In is whole blocks and that Data holds
// the rows. Errors wrap ErrInvalidWeight.
func (w *GGML) Validate() error {
	b, ok := ggmlBlocks[w.Type]
	if !ok {
		return fmt.Errorf("%w: ggml type %v", ErrInvalidWeight, w.Type)
	}
	if w.Out <= 0 || w.In <= 0 || w.In%b.elems != 0 {
		return fmt.Errorf("%w: ggml %v shape %d×%d (rows of whole blocks of %d)", ErrInvalidWeight, w.Type, w.Out, w.In, b.elems)
	}
	rb := w.In / b.elems * b.bytes
	const maxInt = int(^uint(0) >> 1)
	if w.Out > maxInt/rb {
		return fmt.Errorf("%w: ggml %v shape %d×%d overflows", ErrInvalidWeight, w.Type, w.Out, w.In)
	}
	if w.RowMap == nil {
		if want := w.Out * rb; len(w.Data) != want {
			return fmt.Errorf("%w: ggml %v %d×%d needs %d bytes, have %d", ErrInvalidWeight, w.Type, w.Out, w.In, want, len(w.Data))
		}
		return nil
	}
	if len(w.RowMap) != w.Out || len(w.Data)%rb != 0 {
		return fmt.Errorf("%w: ggml %v %d×%d: %d mapped rows over %d bytes (rows of %d)", ErrInvalidWeight, w.Type, w.Out, w.In, len(w.RowMap), len(w.Data), rb)
	}
	stored := len(w.Data) / rb
	for o, r := range w.RowMap {
		if r < 0 || int(r) >= stored {
			return fmt.Errorf("%w: ggml row %d maps to stored row %d of %d", ErrInvalidWeight, o, r, stored)
		}
	}
	return nil
}

// Row returns the stored blocks of row o.
func (w *GGML) Row(o int) []byte {
	r := o
	if w.RowMap != nil {
		r = int(w.RowMap[o])
	}
	rb := w.rowBytes()
	return w.Data[r*rb : (r+1)*rb : (r+1)*rb]
}

// DequantizeRow writes the f32 values of row o to dst (len In).
func (w *GGML) DequantizeRow(dst []float32, o int) {
	ggmlDecodeRow[w.Type](dst[:w.In], w.Row(o))
}

// Dequantize returns the weight as f32, [Out][In]; w must be valid.
func (w *GGML) Dequantize() []float32 {
	out := make([]float32, w.Out*w.In)
	for o := 0; o < w.Out; o++ {
		w.DequantizeRow(out[o*w.In:(o+1)*w.In], o)
	}
	return out
}

// Rows returns rows lo..hi-1 of w, viewing its data.
func (w *GGML) Rows(lo, hi int) *GGML {
	r := &GGML{Type: w.Type, Out: hi - lo, In: w.In, Q8Activations: w.Q8Activations}
	if w.RowMap != nil {
		r.Data, r.RowMap = w.Data, w.RowMap[lo:hi:hi]
		return r
	}
	rb := w.rowBytes()
	r.Data = w.Data[lo*rb : hi*rb : hi*rb]
	return r
}

// widenRange writes the values of row o at inputs pc..pc+len(dst)-1,
// decoding the blocks that hold them.
func (w *GGML) widenRange(dst []float32, o, pc int) {
	b := ggmlBlocks[w.Type]
	decode := ggmlDecodeRow[w.Type]
	row := w.Row(o)
	if pc%b.elems == 0 && len(dst)%b.elems == 0 {
		decode(dst, row[pc/b.elems*b.bytes:(pc+len(dst))/b.elems*b.bytes])
		return
	}
	var buf [256]float32
	for i := 0; i < len(dst); {
		k := pc + i
		blk := k / b.elems
		decode(buf[:b.elems], row[blk*b.bytes:(blk+1)*b.bytes])
		n := copy(dst[i:], buf[k-blk*b.elems:b.elems])
		i += n
	}
}

// packGGML is bSource.pack for a ggml weight: each row's stretch
// [pc, pc+kc) is decoded once and written down its panel column.
func (s bSource) packGGML(bp []float32, pc, kc, c0, c1, nr int) {
	if s.packGGMLSIMD(bp, pc, kc, c0, c1, nr) {
		return
	}
	w := s.w.GGML
	buf := rowBufs.get(kc)
	defer rowBufs.put(buf)
	row := *buf
	np := (c1 - c0 + nr - 1) / nr
	for j := 0; j < np; j++ {
		o0 := c0 + j*nr
		no := min(nr, c1-o0)
		panel := bp[j*kc*nr : (j+1)*kc*nr]
		for jj := 0; jj < nr; jj++ {
			if jj >= no {
				for p := 0; p < kc; p++ {
					panel[p*nr+jj] = 0
				}
				continue
			}
			w.widenRange(row, o0+jj, pc)
			for p, v := range row {
				panel[p*nr+jj] = v
			}
		}
	}
}

// rowsGGML sets y[t][o] = bias[o] + Σ_i x[t][i]·W[o][i] for outputs
// o0..o1-1 of the ggml weight w (the gemv path): for one row of x with
// ggmlDotRow, for more by decoding each row once and taking its dot
// product with each.
func rowsGGML(y, x []float32, m int, w *GGML, o0, o1 int, bias []float32) {
	n, k := w.Out, w.In
	if m == 1 {
		if rowsGGMLQ8(y, x, w, o0, o1, bias) {
			return
		}
		dotRow := ggmlDotRow[w.Type]
		x = x[:k]
		rb := w.rowBytes() // once: Row looks the block size up in a map
		for o := o0; o < o1; o++ {
			r := o
			if w.RowMap != nil {
				r = int(w.RowMap[o])
			}
			s := dotRow(x, w.Data[r*rb:(r+1)*rb:(r+1)*rb])
			if bias != nil {
				s += bias[o]
			}
			y[o] = s
		}
		return
	}
	decode := ggmlDecodeRow[w.Type]
	buf := rowBufs.get(k)
	defer rowBufs.put(buf)
	row := *buf
	for o := o0; o < o1; o++ {
		decode(row, w.Row(o))
		for t := 0; t < m; t++ {
			s := dot(x[t*k:(t+1)*k], row)
			if bias != nil {
				s += bias[o]
			}
			y[t*n+o] = s
		}
	}
}

// The decoders, operation by operation in f32 as ggml's reference
// dequantize_row_* (each product rounded, no multiply-add fused: the
// explicit conversions forbid it).

func decodeQ4_0(dst []float32, src []byte) {
	for b := 0; b < len(src)/18; b++ {
		in, y := src[b*18:(b+1)*18], dst[b*32:(b+1)*32]
		d := f16ToF32(binary.LittleEndian.Uint16(in))
		for j := 0; j < 16; j++ {
			q := in[2+j]
			y[j] = float32(int(q&0xf)-8) * d
			y[16+j] = float32(int(q>>4)-8) * d
		}
	}
}

func decodeQ5_0(dst []float32, src []byte) {
	for b := 0; b < len(src)/22; b++ {
		in, y := src[b*22:(b+1)*22], dst[b*32:(b+1)*32]
		d := f16ToF32(binary.LittleEndian.Uint16(in))
		qh := binary.LittleEndian.Uint32(in[2:])
		for j := 0; j < 16; j++ {
			q := in[6+j]
			h0 := int(qh>>j&1) << 4
			h1 := int(qh>>(j+16)&1) << 4
			y[j] = float32(int(q&0xf)|h0-16) * d
			y[16+j] = float32(int(q>>4)|h1-16) * d
		}
	}
}

func decodeQ5_1(dst []float32, src []byte) {
	for b := 0; b < len(src)/24; b++ {
		in, y := src[b*24:(b+1)*24], dst[b*32:(b+1)*32]
		d := f16ToF32(binary.LittleEndian.Uint16(in))
		m := f16ToF32(binary.LittleEndian.Uint16(in[2:]))
		qh := binary.LittleEndian.Uint32(in[4:])
		for j := 0; j < 16; j++ {
			q := in[8+j]
			h0 := int(qh>>j&1) << 4
			h1 := int(qh>>(j+16)&1) << 4
			y[j] = float32(float32(int(q&0xf)|h0)*d) + m
			y[16+j] = float32(float32(int(q>>4)|h1)*d) + m
		}
	}
}

// decodeQ8_0 widens each block's codes with its scale (widenI8: the f32
// product float32(q)·d, as ggml computes it).
func decodeQ8_0(dst []float32, src []byte) {
	for b := 0; b < len(src)/34; b++ {
		in := src[b*34 : (b+1)*34]
		widenI8(dst[b*32:(b+1)*32], in[2:], f16ToF32(binary.LittleEndian.Uint16(in)))
	}
}

// scaleMinK4 is ggml's get_scale_min_k4: the j-th 6-bit scale and
// minimum of the 12 packed bytes q.
func scaleMinK4(j int, q []byte) (d, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

func decodeQ4_K(dst []float32, src []byte) {
	for b := 0; b < len(src)/144; b++ {
		in, y := src[b*144:(b+1)*144], dst[b*256:(b+1)*256]
		d := f16ToF32(binary.LittleEndian.Uint16(in))
		mn := f16ToF32(binary.LittleEndian.Uint16(in[2:]))
		sc, q := in[4:16], in[16:144]
		for j, is := 0, 0; j < 256; j, is = j+64, is+2 {
			s, m := scaleMinK4(is, sc)
			d1, m1 := float32(d*float32(s)), float32(mn*float32(m))
			s, m = scaleMinK4(is+1, sc)
			d2, m2 := float32(d*float32(s)), float32(mn*float32(m))
			qq := q[j/2 : j/2+32]
			lo, hi := y[j:j+32], y[j+32:j+64]
			for l, v := range qq {
				lo[l] = float32(d1*float32(v&0xf)) - m1
				hi[l] = float32(d2*float32(v>>4)) - m2
			}
		}
	}
}

func decodeQ5_K(dst []float32, src []byte) {
	for b := 0; b < len(src)/176; b++ {
		in, y := src[b*176:(b+1)*176], dst[b*256:(b+1)*256]
		d := f16ToF32(binary.LittleEndian.Uint16(in))
		mn := f16ToF32(binary.LittleEndian.Uint16(in[2:]))
		sc, qh, ql := in[4:16], in[16:48], in[48:176]
		u1, u2 := uint8(1), uint8(2)
		for j, is := 0, 0; j < 256; j, is = j+64, is+2 {
			s, m := scaleMinK4(is, sc)
			d1, m1 := float32(d*float32(s)), float32(mn*float32(m))
			s, m = scaleMinK4(is+1, sc)
			d2, m2 := float32(d*float32(s)), float32(mn*float32(m))
			q := ql[j/2 : j/2+32]
			lo, hi := y[j:j+32], y[j+32:j+64]
			for l := 0; l < 32; l++ {
				v1, v2 := int(q[l]&0xf), int(q[l]>>4)
				if qh[l]&u1 != 0 {
					v1 += 16
				}
				if qh[l]&u2 != 0 {
					v2 += 16
				}
				lo[l] = float32(d1*float32(v1)) - m1
				hi[l] = float32(d2*float32(v2)) - m2
			}
			u1 <<= 2
			u2 <<= 2
		}
	}
}

func decodeQ6_K(dst []float32, src []byte) {
	for b := 0; b < len(src)/210; b++ {
		in, y := src[b*210:(b+1)*210], dst[b*256:(b+1)*256]
		d := f16ToF32(binary.LittleEndian.Uint16(in[208:]))
		for n := 0; n < 256; n += 128 {
			ql, qh, sc := in[n/2:n/2+64], in[128+n/4:128+n/4+32], in[192+n/16:192+n/16+8]
			var ds [8]float32
			for i, s := range sc {
				ds[i] = float32(d * float32(int8(s)))
			}
			yn := y[n : n+128]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int(ql[l]&0xf|(qh[l]&3)<<4) - 32
				q2 := int(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
				q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				yn[l] = ds[is] * float32(q1)
				yn[l+32] = ds[is+2] * float32(q2)
				yn[l+64] = ds[is+4] * float32(q3)
				yn[l+96] = ds[is+6] * float32(q4)
			}
		}
	}
}
