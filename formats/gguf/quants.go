package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/hubmirror/hubmirror/weights"
)

// The quantized block types beyond Q8_0, encoded and decoded as ggml's
// reference code (ggml-quants.c: quantize_row_*_ref, dequantize_row_*)
// does, operation by operation in float32, so that the bytes equal
// llama-quantize's without an importance matrix and the decoded values
// equal ggml's. The layouts are ggml-common.h's:
//
//	Q4_0  32 values, 18 bytes: d (f16), qs[16] (low nibbles values 0-15, high 16-31)
//	Q5_0  32 values, 22 bytes: d (f16), qh[4] (fifth bits), qs[16]
//	Q5_1  32 values, 24 bytes: d, m (f16), qh[4], qs[16]
//	Q4_K  256 values, 144 bytes: d, dmin (f16), scales[12] (eight 6-bit
//	      scales and mins), qs[128]
//	Q5_K  256 values, 176 bytes: d, dmin, scales[12], qh[32], qs[128]
//	Q6_K  256 values, 210 bytes: ql[128], qh[64], scales[16] (int8), d (f16)

// QK_K is the number of values in a k-quant super-block.
const QK_K = 256

type codec struct {
	elems, bytes int
	encode       func(dst []byte, x []float32) error
	decode       func(dst []float32, src []byte)
}

var codecs = map[Type]codec{
	TypeQ4_0: {32, 18, encodeQ4_0, decodeQ4_0},
	TypeQ5_0: {32, 22, encodeQ5_0, decodeQ5_0},
	TypeQ5_1: {32, 24, encodeQ5_1, decodeQ5_1},
	TypeQ8_0: {Q8_0BlockLen, Q8_0BlockBytes, EncodeQ8_0, decodeQ8_0},
	TypeQ4_K: {QK_K, 144, encodeQ4_K, decodeQ4_K},
	TypeQ5_K: {QK_K, 176, encodeQ5_K, decodeQ5_K},
	TypeQ6_K: {QK_K, 210, encodeQ6_K, decodeQ6_K},
}

// BlockLen returns the number of values in one block of the quantized
// type t (1 for F32, F16 and BF16; 0 for a type the package does not
// know).
func BlockLen(t Type) int {
	n, _, ok := t.block()
	if !ok {
		return 0
	}
	return int(n)
}

// Encode quantizes x into dst as blocks of the quantized type t (Q4_0,
// Q5_0, Q5_1, Q8_0, Q4_K, Q5_K or Q6_K): len(x) must be a multiple of
// the block and dst exactly the blocks' size. NaN or infinite values and
// blocks whose scales overflow float16 are errors.
func Encode(t Type, dst []byte, x []float32) error {
	c, ok := codecs[t]
	if !ok {
		return fmt.Errorf("%w: cannot quantize to %v", ErrInvalid, t)
	}
	if len(x)%c.elems != 0 || len(dst) != len(x)/c.elems*c.bytes {
		return fmt.Errorf("%w: %v of %d values into %d bytes", ErrInvalid, t, len(x), len(dst))
	}
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: %v of a NaN or infinite value (value %d)", ErrInvalid, t, i)
		}
	}
	return c.encode(dst, x)
}

// Decode dequantizes src, blocks of the quantized type t, into dst (one
// float32 per value) as ggml's dequantize_row_* does.
func Decode(t Type, dst []float32, src []byte) error {
	c, ok := codecs[t]
	if !ok {
		return fmt.Errorf("%w: cannot dequantize %v", ErrInvalid, t)
	}
	if len(dst)%c.elems != 0 || len(src) != len(dst)/c.elems*c.bytes {
		return fmt.Errorf("%w: %v of %d bytes into %d values", ErrInvalid, t, len(src), len(dst))
	}
	c.decode(dst, src)
	return nil
}

var (
	toF16   = weights.Float32ToF16
	fromF16 = weights.F16ToFloat32
)

// putScale stores a block scale as f16, refusing one beyond float16's
// range (ggml would store an infinity).
func putScale(dst []byte, v float32, t Type, block int) error {
	h := toF16(v)
	if h&0x7c00 == 0x7c00 {
		return fmt.Errorf("%w: %v block %d: scale %g is beyond float16", ErrInvalid, t, block, v)
	}
	binary.LittleEndian.PutUint16(dst, h)
	return nil
}

// absMaxSigned returns the value of largest magnitude (the first of
// them), as the Q4_0 and Q5_0 reference quantizers find it.
func absMaxSigned(x []float32) float32 {
	var amax, m float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); amax < a {
			amax, m = a, v
		}
	}
	return m
}

func encodeQ4_0(dst []byte, x []float32) error {
	for b := 0; b < len(x)/32; b++ {
		blk, out := x[b*32:(b+1)*32], dst[b*18:(b+1)*18]
		d := absMaxSigned(blk) / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		if err := putScale(out, d, TypeQ4_0, b); err != nil {
			return err
		}
		for j := 0; j < 16; j++ {
			x0 := float32(blk[j] * id)
			x1 := float32(blk[16+j] * id)
			q0 := min(15, int8(x0+8.5))
			q1 := min(15, int8(x1+8.5))
			out[2+j] = uint8(q0) | uint8(q1)<<4
		}
	}
	return nil
}

func decodeQ4_0(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		in, y := src[b*18:], dst[b*32:]
		d := fromF16(binary.LittleEndian.Uint16(in))
		for j := 0; j < 16; j++ {
			y[j] = float32(int(in[2+j]&0xf)-8) * d
			y[16+j] = float32(int(in[2+j]>>4)-8) * d
		}
	}
}

func encodeQ5_0(dst []byte, x []float32) error {
	for b := 0; b < len(x)/32; b++ {
		blk, out := x[b*32:(b+1)*32], dst[b*22:(b+1)*22]
		d := absMaxSigned(blk) / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		if err := putScale(out, d, TypeQ5_0, b); err != nil {
			return err
		}
		var qh uint32
		for j := 0; j < 16; j++ {
			x0 := float32(blk[j] * id)
			x1 := float32(blk[16+j] * id)
			q0 := uint8(min(31, int8(x0+16.5)))
			q1 := uint8(min(31, int8(x1+16.5)))
			out[6+j] = q0&0xf | (q1&0xf)<<4
			qh |= uint32(q0>>4&1) << j
			qh |= uint32(q1>>4&1) << (j + 16)
		}
		binary.LittleEndian.PutUint32(out[2:], qh)
	}
	return nil
}

func decodeQ5_0(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		in, y := src[b*22:], dst[b*32:]
		d := fromF16(binary.LittleEndian.Uint16(in))
		qh := binary.LittleEndian.Uint32(in[2:])
		for j := 0; j < 16; j++ {
			h0 := int(qh>>j&1) << 4
			h1 := int(qh>>(j+16)&1) << 4
			y[j] = float32(int(in[6+j]&0xf)|h0-16) * d
			y[16+j] = float32(int(in[6+j]>>4)|h1-16) * d
		}
	}
}

func encodeQ5_1(dst []byte, x []float32) error {
	for b := 0; b < len(x)/32; b++ {
		blk, out := x[b*32:(b+1)*32], dst[b*24:(b+1)*24]
		lo, hi := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range blk {
			if v < lo {
				lo = v
			}
			if v > hi {
				hi = v
			}
		}
		d := (hi - lo) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		if err := putScale(out, d, TypeQ5_1, b); err != nil {
			return err
		}
		if err := putScale(out[2:], lo, TypeQ5_1, b); err != nil {
			return err
		}
		var qh uint32
		for j := 0; j < 16; j++ {
			x0 := float32((blk[j] - lo) * id)
			x1 := float32((blk[16+j] - lo) * id)
			q0, q1 := uint8(x0+0.5), uint8(x1+0.5)
			out[8+j] = q0&0xf | (q1&0xf)<<4
			qh |= uint32(q0>>4&1) << j
			qh |= uint32(q1>>4&1) << (j + 16)
		}
		binary.LittleEndian.PutUint32(out[4:], qh)
	}
	return nil
}

func decodeQ5_1(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		in, y := src[b*24:], dst[b*32:]
		d := fromF16(binary.LittleEndian.Uint16(in))
		m := fromF16(binary.LittleEndian.Uint16(in[2:]))
		qh := binary.LittleEndian.Uint32(in[4:])
		for j := 0; j < 16; j++ {
			h0 := int(qh>>j&1) << 4
			h1 := int(qh>>(j+16)&1) << 4
			y[j] = float32(float32(int(in[8+j]&0xf)|h0)*d) + m
			y[16+j] = float32(float32(int(in[8+j]>>4)|h1)*d) + m
		}
	}
}

func decodeQ8_0(dst []float32, src []byte) {
	for b := 0; b < len(dst)/Q8_0BlockLen; b++ {
		in, y := src[b*Q8_0BlockBytes:], dst[b*Q8_0BlockLen:]
		d := fromF16(binary.LittleEndian.Uint16(in))
		for j := 0; j < Q8_0BlockLen; j++ {
			y[j] = float32(int8(in[2+j])) * d
		}
	}
}
