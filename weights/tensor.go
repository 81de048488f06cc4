package weights

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Source supplies a tensor's bytes when they are first needed. Bytes returns
// the elements contiguous, row-major and little-endian. The slice may alias a
// memory-mapped file or memory shared with other tensors: callers must not
// modify it, and must not use it after the Graph that owns it is closed.
// Bytes may be called many times and from several goroutines.
type Source interface {
	Bytes() ([]byte, error)
}

// Memory is a Source over bytes already in memory (or in a mapped file).
type Memory []byte

// Bytes returns m itself.
func (m Memory) Bytes() ([]byte, error) { return m, nil }

// SourceFunc adapts a function to Source; it is called on every Bytes call,
// so a Source that gathers or converts data does that work only when asked.
type SourceFunc func() ([]byte, error)

// Bytes calls f.
func (f SourceFunc) Bytes() ([]byte, error) { return f() }

// Tensor is a named n-dimensional array whose data is read lazily.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	// Data supplies the elements; see Source.
	Data Source
	// Storage identifies the storage the tensor's data lives in, for
	// checkpoints that can share one storage between several names (PyTorch
	// pickles). Tensors with the same non-empty Storage alias each other.
	// Empty when the tensor owns its data.
	Storage string
	// StorageOffset is the byte offset of the tensor's first element in Storage.
	StorageOffset int64
	// File is the file the tensor was read from, when it was read from one.
	File string
}

// ErrShape reports a shape whose element or byte count is negative or
// overflows int64.
var ErrShape = errors.New("weights: invalid shape")

// NumElements returns the product of shape, checking for overflow. A 0-dim
// shape has one element.
func NumElements(shape []int64) (int64, error) {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension %d in %v", ErrShape, d, shape)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("%w: %v overflows", ErrShape, shape)
		}
		n = lo
	}
	return int64(n), nil
}

// ByteSize returns the number of bytes a tensor of this dtype and shape takes,
// checking for overflow.
func ByteSize(d DType, shape []int64) (int64, error) {
	n, err := NumElements(shape)
	if err != nil {
		return 0, err
	}
	if !d.Valid() {
		return 0, fmt.Errorf("weights: invalid dtype %v", d)
	}
	hi, lo := bits.Mul64(uint64(n), uint64(d.Size()))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %v of %v overflows", ErrShape, shape, d)
	}
	return int64(lo), nil
}

// NumElements returns the number of elements; shapes are validated by the
// readers, so an invalid one yields -1.
func (t *Tensor) NumElements() int64 {
	n, err := NumElements(t.Shape)
	if err != nil {
		return -1
	}
	return n
}

// NumBytes returns the size of the tensor's data in bytes, or -1 for an
// invalid shape.
func (t *Tensor) NumBytes() int64 {
	n, err := ByteSize(t.DType, t.Shape)
	if err != nil {
		return -1
	}
	return n
}

// Bytes returns the tensor's data and checks that its length matches the
// dtype and shape.
func (t *Tensor) Bytes() ([]byte, error) {
	if t.Data == nil {
		return nil, fmt.Errorf("weights: tensor %q has no data", t.Name)
	}
	b, err := t.Data.Bytes()
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	want, err := ByteSize(t.DType, t.Shape)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if int64(len(b)) != want {
		return nil, fmt.Errorf("weights: tensor %q has %d bytes, %v %v needs %d", t.Name, len(b), t.DType, t.Shape, want)
	}
	return b, nil
}

// Float32s returns the tensor's elements converted to float32 in a new slice.
func (t *Tensor) Float32s() ([]float32, error) {
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(b)/t.DType.Size())
	if err := DecodeFloat32(out, b, t.DType); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return out, nil
}

// String describes the tensor as name dtype[shape].
func (t *Tensor) String() string {
	return fmt.Sprintf("%s %v%v", t.Name, t.DType, t.Shape)
}

// NewTensor returns a tensor over data already in memory, checking that the
// length of data matches dtype and shape.
func NewTensor(name string, d DType, shape []int64, data []byte) (*Tensor, error) {
	want, err := ByteSize(d, shape)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	if int64(len(data)) != want {
		return nil, fmt.Errorf("weights: tensor %q: %d bytes given, %v %v needs %d", name, len(data), d, shape, want)
	}
	return &Tensor{Name: name, DType: d, Shape: append([]int64(nil), shape...), Data: Memory(data)}, nil
}

// FromFloat32 returns an in-memory tensor holding vals encoded as dtype d.
func FromFloat32(name string, d DType, shape []int64, vals []float32) (*Tensor, error) {
	n, err := NumElements(shape)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	if n != int64(len(vals)) {
		return nil, fmt.Errorf("weights: tensor %q: %d values for shape %v", name, len(vals), shape)
	}
	b := make([]byte, len(vals)*d.Size())
	if err := EncodeFloat32(b, vals, d); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return NewTensor(name, d, shape, b)
}
