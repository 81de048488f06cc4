package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/hubmirror/hubmirror/internal/mmap"
	"github.com/hubmirror/hubmirror/weights"
)

// The reader parses a whole file, mapped (ReadFile) or in memory (Parse),
// as ggml's docs/gguf.md describes, checks every count, length, offset and
// alignment against the bytes present, and dequantizes every type the
// package knows. Tensor data are views into the mapping or the bytes given
// to Parse.

// File is a parsed GGUF file.
type File struct {
	Version   uint32
	Metadata  []KV
	Tensors   []ReadTensor
	Alignment uint64
	// DataOffset is where the data section starts in the file.
	DataOffset uint64

	mapped *mmap.File // the mapping of a file ReadFile opened
}

// ReadTensor is a tensor of a parsed file with its data.
type ReadTensor struct {
	Name   string
	Dims   []uint64
	Type   Type
	Offset uint64 // relative to the data section
	Data   []byte
}

// Get returns a metadata value.
func (f *File) Get(key string) (any, bool) {
	for _, kv := range f.Metadata {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Tensor returns the named tensor.
func (f *File) Tensor(name string) (*ReadTensor, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// ErrRead is wrapped by the errors about a malformed GGUF file.
var ErrRead = errors.New("gguf: malformed file")

var errRead = ErrRead

type reader struct {
	b   []byte
	off uint64
}

func (r *reader) take(n uint64) ([]byte, error) {
	if n > uint64(len(r.b))-r.off {
		return nil, fmt.Errorf("%w: %d bytes wanted at offset %d of %d", errRead, n, r.off, len(r.b))
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

func (r *reader) u32() (uint32, error) {
	b, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *reader) u64() (uint64, error) {
	b, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (r *reader) str() (string, error) {
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	b, err := r.take(n)
	return string(b), err
}

func (r *reader) scalar(t uint32) (any, error) {
	size := map[uint32]uint64{vUint8: 1, vInt8: 1, vBool: 1, vUint16: 2, vInt16: 2, vUint32: 4, vInt32: 4, vFloat32: 4, vUint64: 8, vInt64: 8, vFloat64: 8}
	if t == vString {
		return r.str()
	}
	n, ok := size[t]
	if !ok {
		return nil, fmt.Errorf("%w: value type %d", errRead, t)
	}
	b, err := r.take(n)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	switch t {
	case vUint8:
		return b[0], nil
	case vInt8:
		return int8(b[0]), nil
	case vBool:
		if b[0] > 1 {
			return nil, fmt.Errorf("%w: bool %d", errRead, b[0])
		}
		return b[0] == 1, nil
	case vUint16:
		return le.Uint16(b), nil
	case vInt16:
		return int16(le.Uint16(b)), nil
	case vUint32:
		return le.Uint32(b), nil
	case vInt32:
		return int32(le.Uint32(b)), nil
	case vFloat32:
		return math.Float32frombits(le.Uint32(b)), nil
	case vUint64:
		return le.Uint64(b), nil
	case vInt64:
		return int64(le.Uint64(b)), nil
	default:
		return math.Float64frombits(le.Uint64(b)), nil
	}
}

func collect[T any](r *reader, t uint32, n uint64) (any, error) {
	out := make([]T, 0, min(n, 1<<16))
	for i := uint64(0); i < n; i++ {
		v, err := r.scalar(t)
		if err != nil {
			return nil, err
		}
		out = append(out, v.(T))
	}
	return out, nil
}

func (r *reader) value() (any, error) {
	t, err := r.u32()
	if err != nil {
		return nil, err
	}
	if t != vArray {
		return r.scalar(t)
	}
	et, err := r.u32()
	if err != nil {
		return nil, err
	}
	n, err := r.u64()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: array of %d elements in a file of %d bytes", errRead, n, len(r.b))
	}
	switch et {
	case vUint8:
		return collect[uint8](r, et, n)
	case vInt8:
		return collect[int8](r, et, n)
	case vUint16:
		return collect[uint16](r, et, n)
	case vInt16:
		return collect[int16](r, et, n)
	case vUint32:
		return collect[uint32](r, et, n)
	case vInt32:
		return collect[int32](r, et, n)
	case vUint64:
		return collect[uint64](r, et, n)
	case vInt64:
		return collect[int64](r, et, n)
	case vFloat32:
		return collect[float32](r, et, n)
	case vFloat64:
		return collect[float64](r, et, n)
	case vBool:
		return collect[bool](r, et, n)
	case vString:
		return collect[string](r, et, n)
	}
	return nil, fmt.Errorf("%w: array of value type %d", errRead, et)
}

// Parse reads a whole GGUF file held in b.
func Parse(b []byte) (*File, error) {
	r := &reader{b: b}
	magic, err := r.take(4)
	if err != nil || string(magic) != "GGUF" {
		return nil, fmt.Errorf("%w: no GGUF magic", errRead)
	}
	f := &File{Alignment: DefaultAlignment}
	if f.Version, err = r.u32(); err != nil {
		return nil, err
	}
	if f.Version != 3 {
		return nil, fmt.Errorf("%w: version %d", errRead, f.Version)
	}
	nt, err := r.u64()
	if err != nil {
		return nil, err
	}
	nkv, err := r.u64()
	if err != nil {
		return nil, err
	}
	if nt > uint64(len(b)) || nkv > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d tensors, %d keys in %d bytes", errRead, nt, nkv, len(b))
	}
	for i := uint64(0); i < nkv; i++ {
		k, err := r.str()
		if err != nil {
			return nil, err
		}
		v, err := r.value()
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k, err)
		}
		if _, dup := f.Get(k); dup {
			return nil, fmt.Errorf("%w: key %s twice", errRead, k)
		}
		f.Metadata = append(f.Metadata, KV{Key: k, Value: v})
		if k == "general.alignment" {
			a, ok := v.(uint32)
			if !ok || a == 0 || a%8 != 0 {
				return nil, fmt.Errorf("%w: general.alignment %v", errRead, v)
			}
			f.Alignment = uint64(a)
		}
	}
	for i := uint64(0); i < nt; i++ {
		var t ReadTensor
		if t.Name, err = r.str(); err != nil {
			return nil, err
		}
		nd, err := r.u32()
		if err != nil {
			return nil, err
		}
		if nd == 0 || nd > MaxDims {
			return nil, fmt.Errorf("%w: tensor %s has %d dimensions", errRead, t.Name, nd)
		}
		for j := uint32(0); j < nd; j++ {
			d, err := r.u64()
			if err != nil {
				return nil, err
			}
			t.Dims = append(t.Dims, d)
		}
		tt, err := r.u32()
		if err != nil {
			return nil, err
		}
		t.Type = Type(tt)
		if t.Offset, err = r.u64(); err != nil {
			return nil, err
		}
		if t.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("%w: tensor %s at unaligned offset %d", errRead, t.Name, t.Offset)
		}
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = alignUp(r.off, f.Alignment)
	if _, err := r.take(f.DataOffset - r.off); err != nil {
		return nil, err
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		size, err := ByteSize(t.Type, t.Dims)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		start := f.DataOffset + t.Offset
		if start > uint64(len(b)) || uint64(size) > uint64(len(b))-start {
			return nil, fmt.Errorf("%w: tensor %s runs past the end of the file", errRead, t.Name)
		}
		t.Data = b[start : start+uint64(size)]
	}
	return f, nil
}

// ReadFile maps the GGUF file at path and parses it. The tensors' data
// are views of the mapping, read from the disk when first touched, so
// that a file costs memory only for what is read of it; Release hands the
// pages read so far back (the data stay valid), Close unmaps the file
// (the data must not be used after it).
func ReadFile(path string) (*File, error) {
	m, err := mmap.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Parse(m.Bytes())
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.mapped = m
	return f, nil
}

// Release hands the pages of a mapped file (ReadFile) read so far back
// to the operating system; they are read again when next touched.
func (f *File) Release() {
	if f.mapped != nil {
		f.mapped.Release()
	}
}

// Close unmaps a file ReadFile mapped; it does nothing for a file Parse
// read from bytes.
func (f *File) Close() error {
	if f.mapped == nil {
		return nil
	}
	m := f.mapped
	f.mapped = nil
	return m.Close()
}

// Dequantize returns the tensor's values as float32, in ggml order
// (Dims[0] contiguous).
func (t *ReadTensor) Dequantize() ([]float32, error) {
	switch t.Type {
	case TypeF32:
		v := make([]float32, len(t.Data)/4)
		return v, weights.DecodeFloat32(v, t.Data, weights.F32)
	case TypeF16:
		v := make([]float32, len(t.Data)/2)
		return v, weights.DecodeFloat32(v, t.Data, weights.F16)
	case TypeBF16:
		v := make([]float32, len(t.Data)/2)
		return v, weights.DecodeFloat32(v, t.Data, weights.BF16)
	case TypeQ8_0:
		nb := len(t.Data) / Q8_0BlockBytes
		v := make([]float32, nb*Q8_0BlockLen)
		for b := 0; b < nb; b++ {
			blk := t.Data[b*Q8_0BlockBytes:]
			d := weights.F16ToFloat32(binary.LittleEndian.Uint16(blk))
			for j := 0; j < Q8_0BlockLen; j++ {
				v[b*Q8_0BlockLen+j] = float32(int8(blk[2+j])) * d
			}
		}
		return v, nil
	}
	if c, ok := codecs[t.Type]; ok {
		v := make([]float32, len(t.Data)/c.bytes*c.elems)
		return v, Decode(t.Type, v, t.Data)
	}
	return nil, fmt.Errorf("%w: cannot dequantize %v", errRead, t.Type)
}
