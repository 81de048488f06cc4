package torch

import (
	"fmt"

	"github.com/hubmirror/hubmirror/weights"
)

// rootStorage is one storage record of a checkpoint: a zip entry data/<key>
// or a legacy stream's storage block.
type rootStorage struct {
	key string
	// id identifies the storage across a graph (file#key), for
	// weights.Tensor.Storage.
	id     string
	dtype  weights.DType
	numel  int64
	nbytes int64
	// data is a view of the record over the checkpoint's bytes; nil until a
	// legacy stream's block is found, and for compressed records, which
	// load instead decompresses on every call.
	data      []byte
	load      func() ([]byte, error)
	bigEndian bool
	// fileSize is the size of the checkpoint file; no tensor over this
	// storage may materialize to more bytes (a stride-0 view of a small
	// storage could otherwise claim terabytes).
	fileSize int64
	// written is set once a legacy stream supplied the block.
	written bool
}

func (r *rootStorage) bytes() ([]byte, error) {
	if r.data != nil || r.load == nil {
		return r.data, nil
	}
	return r.load()
}

// storageRef is what a persistent id resolves to: a root storage or (in
// legacy checkpoints) a view of part of one.
type storageRef struct {
	root       *rootStorage
	dtype      weights.DType
	byteOffset int64
	nbytes     int64
}

func (s *storageRef) String() string { return "torch.storage" }

// isContiguous reports whether a view with this shape and stride is laid out
// row-major without gaps (dimensions of size 1 may have any stride).
func isContiguous(shape, stride []int64) bool {
	want := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] == 1 {
			continue
		}
		if stride[i] != want {
			return false
		}
		want *= shape[i]
	}
	return true
}

// source returns the tensor's data: a zero-copy view of the mapped file when
// the view is contiguous and little-endian, otherwise a function that
// gathers (and byte-swaps) into a new buffer when Bytes is called.
// newTensorRef has checked that every addressed byte lies in the storage.
func (t *tensorRef) source() weights.Source {
	if t.numel == 0 {
		return weights.Memory([]byte{})
	}
	root := t.st.root
	es := int64(t.dtype.Size())
	start := t.st.byteOffset + t.offset*es
	size := t.numel * es
	contiguous := isContiguous(t.shape, t.stride)
	swap := root.bigEndian && es > 1
	if contiguous && !swap && root.data != nil {
		return weights.Memory(root.data[start : start+size : start+size])
	}
	return weights.SourceFunc(func() ([]byte, error) {
		data, err := root.bytes()
		if err != nil {
			return nil, err
		}
		if int64(len(data)) != root.nbytes {
			return nil, fmt.Errorf("%w: storage %q has %d bytes, expected %d", ErrStorage, root.key, len(data), root.nbytes)
		}
		var out []byte
		if contiguous {
			out = make([]byte, size)
			copy(out, data[start:start+size])
		} else {
			out = gather(data, start, es, t.shape, t.stride, t.numel)
		}
		if swap {
			swapBytes(out, int(es))
		}
		return out, nil
	})
}

// gather copies the elements of a strided view, starting at byte base of
// src, into a new row-major buffer. It copies the longest contiguous run of
// inner dimensions at once.
func gather(src []byte, base, es int64, shape, stride []int64, numel int64) []byte {
	type dim struct{ n, stride int64 }
	dims := make([]dim, 0, len(shape))
	for i, n := range shape {
		if n == 1 {
			continue
		}
		if k := len(dims); k > 0 && dims[k-1].stride == n*stride[i] {
			// The outer dimension steps exactly over this one: merge.
			dims[k-1] = dim{dims[k-1].n * n, stride[i]}
			continue
		}
		dims = append(dims, dim{n, stride[i]})
	}
	run := es
	if k := len(dims); k > 0 && dims[k-1].stride == 1 {
		run = dims[k-1].n * es
		dims = dims[:k-1]
	}
	out := make([]byte, numel*es)
	idx := make([]int64, len(dims))
	off := base
	for o := int64(0); o < int64(len(out)); o += run {
		copy(out[o:o+run], src[off:off+run])
		for d := len(dims) - 1; d >= 0; d-- {
			idx[d]++
			off += dims[d].stride * es
			if idx[d] < dims[d].n {
				break
			}
			off -= dims[d].n * dims[d].stride * es
			idx[d] = 0
		}
	}
	return out
}

// swapBytes reverses the byte order of every es-byte element of b in place.
func swapBytes(b []byte, es int) {
	switch es {
	case 2:
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	case 4:
		for i := 0; i+3 < len(b); i += 4 {
			b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
		}
	case 8:
		for i := 0; i+7 < len(b); i += 8 {
			b[i], b[i+1], b[i+2], b[i+3], b[i+4], b[i+5], b[i+6], b[i+7] = b[i+7], b[i+6], b[i+5], b[i+4], b[i+3], b[i+2], b[i+1], b[i]
		}
	}
}

// storageArgs checks the common part of the storage persistent ids of both
// formats: (typename, storage_type, key, location, numel, ...).
func storageArgs(t pyTuple) (storageType, string, int64, error) {
	st, ok := t[1].(storageType)
	if !ok {
		return storageType{}, "", 0, badArgs("storage type in persistent id is %s", typeName(t[1]))
	}
	if !st.dtype.Valid() {
		return storageType{}, "", 0, fmt.Errorf("%w: storage type torch.%s", ErrUnsupported, st.name)
	}
	key := asString(t[2])
	if key == "" {
		return storageType{}, "", 0, badArgs("storage key in persistent id is %s", typeName(t[2]))
	}
	if _, ok := t[3].(string); !ok {
		if _, ok := t[3].([]byte); !ok {
			return storageType{}, "", 0, badArgs("storage location in persistent id is %s", typeName(t[3]))
		}
	}
	numel, ok := t[4].(int64)
	if !ok || numel < 0 {
		return storageType{}, "", 0, fmt.Errorf("%w: storage %q size is %s", ErrStorage, key, typeName(t[4]))
	}
	return st, key, numel, nil
}

// asString returns a str, or bytes decoded as by torch's _maybe_decode_ascii;
// "" for anything else.
func asString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return ""
}
