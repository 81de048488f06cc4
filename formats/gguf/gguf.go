// Package gguf writes GGUF files, the single-file model format of ggml and
// llama.cpp, version 3 (little-endian), as ggml's docs/gguf.md specifies:
//
//	header      "GGUF", version uint32 = 3, tensor count uint64, metadata count uint64
//	metadata    key (string), value type (uint32), value; in the order given
//	tensor info name (string), dimension count (uint32), dimensions (uint64 each,
//	            ne[0], the contiguous one, first), ggml type (uint32), offset
//	            (uint64, relative to the data section, a multiple of the alignment)
//	padding     zeros up to a multiple of the alignment
//	data        each tensor at its offset, followed by zeros up to the alignment
//
// where a string is a uint64 byte length and UTF-8 bytes, and the alignment
// is general.alignment when the metadata sets it, else 32. Tensors are
// written in the order given, each tensor's data obtained (Tensor.Data) and
// written one at a time, so that lazy sources keep one tensor in memory.
//
// The package writes, and reads back (Parse, ReadFile). It knows the tensor types F32, F16, BF16, Q8_0, Q4_0,
// Q5_0, Q5_1, Q4_K, Q5_K and Q6_K, and encodes and decodes the quantized
// ones as ggml's reference code does (EncodeQ8_0, Encode, Decode).
package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"unicode/utf8"

	"github.com/hubmirror/hubmirror/internal/atomicfile"
	"github.com/hubmirror/hubmirror/weights"
)

// Version is the GGUF version this package writes.
const Version = 3

// DefaultAlignment is the alignment of tensor data when the metadata sets
// no general.alignment.
const DefaultAlignment = 32

// Limits of the format and of ggml readers.
const (
	// MaxNameLen is the longest tensor name ggml accepts (GGML_MAX_NAME
	// is 64 bytes with the terminating NUL).
	MaxNameLen = 63
	// MaxDims is the largest number of dimensions (GGML_MAX_DIMS).
	MaxDims = 4
	// MaxKeyLen is the longest metadata key.
	MaxKeyLen = 65535
)

// ErrInvalid is wrapped by the errors about metadata or tensors that cannot
// be written as a valid GGUF file.
var ErrInvalid = errors.New("gguf: invalid")

// Type is a ggml tensor type.
type Type uint32

// The tensor types this package writes (values of ggml's enum ggml_type).
const (
	TypeF32  Type = 0
	TypeF16  Type = 1
	TypeQ4_0 Type = 2
	TypeQ5_0 Type = 6
	TypeQ5_1 Type = 7
	TypeQ8_0 Type = 8
	TypeQ4_K Type = 12
	TypeQ5_K Type = 13
	TypeQ6_K Type = 14
	TypeBF16 Type = 30
)

// String returns ggml's name of the type.
func (t Type) String() string {
	switch t {
	case TypeF32:
		return "F32"
	case TypeF16:
		return "F16"
	case TypeQ8_0:
		return "Q8_0"
	case TypeBF16:
		return "BF16"
	case TypeQ4_0:
		return "Q4_0"
	case TypeQ5_0:
		return "Q5_0"
	case TypeQ5_1:
		return "Q5_1"
	case TypeQ4_K:
		return "Q4_K"
	case TypeQ5_K:
		return "Q5_K"
	case TypeQ6_K:
		return "Q6_K"
	}
	return fmt.Sprintf("Type(%d)", uint32(t))
}

// Q8_0 blocks: 32 values as one f16 scale and 32 int8 codes.
const (
	Q8_0BlockLen   = 32
	Q8_0BlockBytes = 2 + Q8_0BlockLen
)

// block returns the elements and bytes of one block of t.
func (t Type) block() (elems, bytes int64, ok bool) {
	switch t {
	case TypeF32:
		return 1, 4, true
	case TypeF16, TypeBF16:
		return 1, 2, true
	case TypeQ8_0:
		return Q8_0BlockLen, Q8_0BlockBytes, true
	case TypeQ4_0, TypeQ5_0, TypeQ5_1, TypeQ4_K, TypeQ5_K, TypeQ6_K:
		c := codecs[t]
		return int64(c.elems), int64(c.bytes), true
	}
	return 0, 0, false
}

// ByteSize returns the size of the data of a tensor of type t and
// dimensions dims (ne[0] first). ne[0] must be a multiple of t's block.
func ByteSize(t Type, dims []uint64) (int64, error) {
	elems, bytes, ok := t.block()
	if !ok {
		return 0, fmt.Errorf("%w: tensor type %v", ErrInvalid, t)
	}
	if len(dims) == 0 || len(dims) > MaxDims {
		return 0, fmt.Errorf("%w: %d dimensions (1 to %d)", ErrInvalid, len(dims), MaxDims)
	}
	if dims[0]%uint64(elems) != 0 {
		return 0, fmt.Errorf("%w: %v rows of %d values do not split into blocks of %d", ErrInvalid, t, dims[0], elems)
	}
	n := uint64(1)
	for _, d := range dims {
		if d == 0 || d > math.MaxInt64/n {
			return 0, fmt.Errorf("%w: dimensions %v", ErrInvalid, dims)
		}
		n *= d
	}
	blocks := n / uint64(elems)
	if blocks > math.MaxInt64/uint64(bytes) {
		return 0, fmt.Errorf("%w: dimensions %v", ErrInvalid, dims)
	}
	return int64(blocks) * bytes, nil
}

// KV is one metadata key-value pair. Value is one of uint8, int8, uint16,
// int16, uint32, int32, uint64, int64, float32, float64, bool, string, or a
// slice of one of them (a GGUF array).
type KV struct {
	Key   string
	Value any
}

// Tensor is one tensor to write.
type Tensor struct {
	// Name is at most MaxNameLen bytes.
	Name string
	// Dims are the dimensions in ggml's order: Dims[0] (ne[0]) is the
	// contiguous one, so a PyTorch [out, in] matrix has Dims {in, out}.
	Dims []uint64
	Type Type
	// Data supplies the encoded data, ByteSize(Type, Dims) bytes; it is
	// called once, when the tensor is written.
	Data weights.Source
}

// metadata value types (gguf_metadata_value_type).
const (
	vUint8   uint32 = 0
	vInt8    uint32 = 1
	vUint16  uint32 = 2
	vInt16   uint32 = 3
	vUint32  uint32 = 4
	vInt32   uint32 = 5
	vFloat32 uint32 = 6
	vBool    uint32 = 7
	vString  uint32 = 8
	vArray   uint32 = 9
	vUint64  uint32 = 10
	vInt64   uint32 = 11
	vFloat64 uint32 = 12
)

// encoder appends little-endian GGUF values to a buffer.
type encoder struct{ b []byte }

func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.b = append(e.b, s...) }

// scalar appends v's type and value, or reports that v is not a scalar.
func (e *encoder) scalar(v any, withType bool) (uint32, bool) {
	var t uint32
	var put func()
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		t, put = vUint8, func() { e.b = append(e.b, x) }
	case int8:
		t, put = vInt8, func() { e.b = append(e.b, byte(x)) }
	case uint16:
		t, put = vUint16, func() { e.b = le.AppendUint16(e.b, x) }
	case int16:
		t, put = vInt16, func() { e.b = le.AppendUint16(e.b, uint16(x)) }
	case uint32:
		t, put = vUint32, func() { e.u32(x) }
	case int32:
		t, put = vInt32, func() { e.u32(uint32(x)) }
	case uint64:
		t, put = vUint64, func() { e.u64(x) }
	case int64:
		t, put = vInt64, func() { e.u64(uint64(x)) }
	case float32:
		t, put = vFloat32, func() { e.u32(math.Float32bits(x)) }
	case float64:
		t, put = vFloat64, func() { e.u64(math.Float64bits(x)) }
	case bool:
		t, put = vBool, func() {
			if x {
				e.b = append(e.b, 1)
			} else {
				e.b = append(e.b, 0)
			}
		}
	case string:
		t, put = vString, func() { e.str(x) }
	default:
		return 0, false
	}
	if withType {
		e.u32(t)
	}
	put()
	return t, true
}

// array appends an array value of one of the supported slice types.
func array[T any](e *encoder, xs []T) error {
	var zero T
	t, ok := (&encoder{}).scalar(zero, false)
	if !ok {
		return fmt.Errorf("%w: array of %T", ErrInvalid, zero)
	}
	e.u32(vArray)
	e.u32(t)
	e.u64(uint64(len(xs)))
	for _, x := range xs {
		if s, ok := any(x).(string); ok && !utf8.ValidString(s) {
			return fmt.Errorf("%w: string %q is not UTF-8", ErrInvalid, s)
		}
		e.scalar(x, false)
	}
	return nil
}

func (e *encoder) value(v any) error {
	if s, ok := v.(string); ok && !utf8.ValidString(s) {
		return fmt.Errorf("%w: string value is not UTF-8", ErrInvalid)
	}
	if _, ok := e.scalar(v, true); ok {
		return nil
	}
	switch x := v.(type) {
	case []uint8:
		return array(e, x)
	case []int8:
		return array(e, x)
	case []uint16:
		return array(e, x)
	case []int16:
		return array(e, x)
	case []uint32:
		return array(e, x)
	case []int32:
		return array(e, x)
	case []uint64:
		return array(e, x)
	case []int64:
		return array(e, x)
	case []float32:
		return array(e, x)
	case []float64:
		return array(e, x)
	case []bool:
		return array(e, x)
	case []string:
		return array(e, x)
	}
	return fmt.Errorf("%w: value of type %T", ErrInvalid, v)
}

// validKey reports whether k is a GGUF key: ASCII segments of
// lower_snake_case (digits allowed) separated by dots; a hyphen may follow
// the first character of a segment, as in llama.cpp's architecture names
// (modern-bert.context_length).
func validKey(k string) bool {
	if k == "" || len(k) > MaxKeyLen {
		return false
	}
	segStart := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '.':
			if segStart {
				return false
			}
			segStart = true
			continue
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
		case c == '-' && !segStart:
		default:
			return false
		}
		segStart = false
	}
	return !segStart
}

// alignment returns general.alignment from md, or DefaultAlignment.
func alignment(md []KV) (uint64, error) {
	for _, kv := range md {
		if kv.Key != "general.alignment" {
			continue
		}
		a, ok := kv.Value.(uint32)
		if !ok || a == 0 || a%8 != 0 {
			return 0, fmt.Errorf("%w: general.alignment must be a uint32 multiple of 8, is %v (%T)", ErrInvalid, kv.Value, kv.Value)
		}
		return uint64(a), nil
	}
	return DefaultAlignment, nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// planned is a tensor with its size and offset.
type planned struct {
	t      *Tensor
	size   int64
	offset uint64
}

// header checks md and tensors and encodes everything before the data
// section (padding included).
func header(md []KV, tensors []*Tensor) ([]byte, []planned, uint64, error) {
	align, err := alignment(md)
	if err != nil {
		return nil, nil, 0, err
	}
	e := &encoder{}
	e.b = append(e.b, "GGUF"...)
	e.u32(Version)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(md)))
	seen := map[string]bool{}
	for _, kv := range md {
		if !validKey(kv.Key) {
			return nil, nil, 0, fmt.Errorf("%w: metadata key %q", ErrInvalid, kv.Key)
		}
		if seen[kv.Key] {
			return nil, nil, 0, fmt.Errorf("%w: metadata key %q given twice", ErrInvalid, kv.Key)
		}
		seen[kv.Key] = true
		e.str(kv.Key)
		if err := e.value(kv.Value); err != nil {
			return nil, nil, 0, fmt.Errorf("metadata %s: %w", kv.Key, err)
		}
	}
	plan := make([]planned, len(tensors))
	names := map[string]bool{}
	var off uint64
	for i, t := range tensors {
		switch {
		case t == nil:
			return nil, nil, 0, fmt.Errorf("%w: tensor %d is nil", ErrInvalid, i)
		case t.Name == "" || len(t.Name) > MaxNameLen || !utf8.ValidString(t.Name):
			return nil, nil, 0, fmt.Errorf("%w: tensor name %q (1 to %d bytes of UTF-8)", ErrInvalid, t.Name, MaxNameLen)
		case names[t.Name]:
			return nil, nil, 0, fmt.Errorf("%w: tensor %q given twice", ErrInvalid, t.Name)
		case t.Data == nil:
			return nil, nil, 0, fmt.Errorf("%w: tensor %q has no data", ErrInvalid, t.Name)
		}
		names[t.Name] = true
		size, err := ByteSize(t.Type, t.Dims)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		plan[i] = planned{t: t, size: size, offset: off}
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(off)
		if uint64(size) > math.MaxInt64-off-align {
			return nil, nil, 0, fmt.Errorf("%w: tensors hold more than 2^63 bytes", ErrInvalid)
		}
		off = alignUp(off+uint64(size), align)
	}
	pad := alignUp(uint64(len(e.b)), align) - uint64(len(e.b))
	e.b = append(e.b, make([]byte, pad)...)
	return e.b, plan, align, nil
}

// Write writes a GGUF file with the metadata md (in order) and the tensors
// (in order) to w, and returns the number of bytes written. Everything is
// checked before the first byte is written; each tensor's data is obtained
// when its turn comes, and must have the size its type and dimensions give.
func Write(w io.Writer, md []KV, tensors []*Tensor) (int64, error) {
	head, plan, align, err := header(md, tensors)
	if err != nil {
		return 0, err
	}
	n, err := w.Write(head)
	written := int64(n)
	if err != nil {
		return written, err
	}
	var zeros [256]byte
	for _, p := range plan {
		b, err := p.t.Data.Bytes()
		if err != nil {
			return written, fmt.Errorf("gguf: tensor %q: %w", p.t.Name, err)
		}
		if int64(len(b)) != p.size {
			return written, fmt.Errorf("%w: tensor %q: %d bytes of data, %v %v needs %d", ErrInvalid, p.t.Name, len(b), p.t.Type, p.t.Dims, p.size)
		}
		n, err := w.Write(b)
		written += int64(n)
		if err != nil {
			return written, err
		}
		for pad := alignUp(uint64(p.size), align) - uint64(p.size); pad > 0; {
			k := min(pad, uint64(len(zeros)))
			n, err := w.Write(zeros[:k])
			written += int64(n)
			if err != nil {
				return written, err
			}
			pad -= k
		}
	}
	return written, nil
}

// WriteFile writes a GGUF file at path (see Write): under a temporary name
// in the same directory, synced, then renamed to path, so that a failure
// leaves nothing at path.
func WriteFile(path string, md []KV, tensors []*Tensor) (err error) {
	if _, _, _, err := header(md, tensors); err != nil {
		return fmt.Errorf("%w (writing %s)", err, path)
	}
	return atomicfile.Write(path, func(f *os.File) error {
		bw := bufio.NewWriterSize(f, 4<<20)
		if _, err := Write(bw, md, tensors); err != nil {
			return fmt.Errorf("gguf: writing %s: %w", path, err)
		}
		return bw.Flush()
	})
}

// EncodeQ8_0 encodes x (a multiple of 32 values) as Q8_0 blocks into dst
// (len(x)/32*34 bytes), as ggml's reference quantize_row_q8_0_ref does: per
// block of 32, d = max|x|/127 in float32, codes round(x·(1/d)) with halves
// rounded away from zero (0 when d is 0), and d stored as f16 (round to
// nearest even) before the codes. A NaN or infinite value, or a block whose
// scale overflows float16 (values beyond 127·65504, where ggml would store
// an infinite scale), is an error.
func EncodeQ8_0(dst []byte, x []float32) error {
	if len(x)%Q8_0BlockLen != 0 || len(dst) != len(x)/Q8_0BlockLen*Q8_0BlockBytes {
		return fmt.Errorf("%w: Q8_0 of %d values into %d bytes", ErrInvalid, len(x), len(dst))
	}
	for b := 0; b < len(x)/Q8_0BlockLen; b++ {
		blk := x[b*Q8_0BlockLen : (b+1)*Q8_0BlockLen]
		out := dst[b*Q8_0BlockBytes : (b+1)*Q8_0BlockBytes]
		var amax float32
		for _, v := range blk {
			a := float32(math.Abs(float64(v)))
			if !(a <= math.MaxFloat32) { // NaN or Inf
				return fmt.Errorf("%w: Q8_0 of a NaN or infinite value (block %d)", ErrInvalid, b)
			}
			amax = max(amax, a)
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		h := weights.Float32ToF16(d)
		if h&0x7c00 == 0x7c00 {
			return fmt.Errorf("%w: Q8_0 block %d: scale %g is beyond float16 (largest value %g)", ErrInvalid, b, d, amax)
		}
		binary.LittleEndian.PutUint16(out, h)
		for j, v := range blk {
			out[2+j] = byte(int8(roundAway(v * id)))
		}
	}
	return nil
}

// roundAway is C's roundf: to the nearest integer, halves away from zero.
func roundAway(v float32) float32 {
	return float32(math.Round(float64(v)))
}
