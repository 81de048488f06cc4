package convert

import (
	"fmt"
	"slices"

	"github.com/hubmirror/hubmirror/weights"
)

// lazy returns a tensor like t (name, dtype) with a new shape whose data is
// computed by f from t's bytes when read.
func lazy(t *weights.Tensor, name string, shape []int64, f func(src []byte) ([]byte, error)) *weights.Tensor {
	return &weights.Tensor{Name: name, DType: t.DType, Shape: shape, File: t.File,
		Data: weights.SourceFunc(func() ([]byte, error) {
			b, err := t.Bytes()
			if err != nil {
				return nil, err
			}
			return f(b)
		})}
}

func check2D(t *weights.Tensor) (rows, cols int, err error) {
	if len(t.Shape) != 2 {
		return 0, 0, fmt.Errorf("convert: %s: want a 2-D tensor, shape is %v", t.Name, t.Shape)
	}
	return int(t.Shape[0]), int(t.Shape[1]), nil
}

// Transpose returns t transposed (a 2-D tensor, any dtype): the GPT-2
// Conv1D layout [in, out] becomes nn.Linear's [out, in], and back.
func Transpose(t *weights.Tensor) (*weights.Tensor, error) {
	rows, cols, err := check2D(t)
	if err != nil {
		return nil, err
	}
	es := t.DType.Size()
	return lazy(t, t.Name, []int64{int64(cols), int64(rows)}, func(src []byte) ([]byte, error) {
		dst := make([]byte, len(src))
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				copy(dst[(c*rows+r)*es:(c*rows+r+1)*es], src[(r*cols+c)*es:(r*cols+c+1)*es])
			}
		}
		return dst, nil
	}), nil
}

// permuteRows returns t with its rows (first dimension) reordered so that
// row i of the result is row from(i) of t. A 1-D tensor is a column of rows.
func permuteRows(t *weights.Tensor, from func(int) int) (*weights.Tensor, error) {
	if len(t.Shape) == 0 || len(t.Shape) > 2 {
		return nil, fmt.Errorf("convert: %s: want a 1-D or 2-D tensor, shape is %v", t.Name, t.Shape)
	}
	rows := int(t.Shape[0])
	rowBytes := t.DType.Size()
	if len(t.Shape) == 2 {
		rowBytes *= int(t.Shape[1])
	}
	return lazy(t, t.Name, slices.Clone(t.Shape), func(src []byte) ([]byte, error) {
		dst := make([]byte, len(src))
		for i := 0; i < rows; i++ {
			j := from(i)
			copy(dst[i*rowBytes:(i+1)*rowBytes], src[j*rowBytes:(j+1)*rowBytes])
		}
		return dst, nil
	}), nil
}

// RotaryToHF reorders the rows of a q or k projection (weight or bias) from
// Meta's rotary layout, in which each head's dimensions come in interleaved
// pairs (x0, y0, x1, y1, ...), to Hugging Face's, which puts the halves
// after each other (x0, x1, ..., y0, y1, ...): the permutation that
// transformers' convert_llama_weights_to_hf applies, with heads the number
// of heads of this projection (num_key_value_heads for k).
func RotaryToHF(t *weights.Tensor, heads int) (*weights.Tensor, error) {
	hd, err := headDim(t, heads)
	if err != nil {
		return nil, err
	}
	half := hd / 2
	// HF row h*hd + j*half + i holds Meta row h*hd + 2i + j.
	return permuteRows(t, func(r int) int {
		h, k := r/hd, r%hd
		j, i := k/half, k%half
		return h*hd + 2*i + j
	})
}

// RotaryToMeta is the inverse of RotaryToHF.
func RotaryToMeta(t *weights.Tensor, heads int) (*weights.Tensor, error) {
	hd, err := headDim(t, heads)
	if err != nil {
		return nil, err
	}
	half := hd / 2
	// Meta row h*hd + 2i + j holds HF row h*hd + j*half + i.
	return permuteRows(t, func(r int) int {
		h, k := r/hd, r%hd
		i, j := k/2, k%2
		return h*hd + j*half + i
	})
}

func headDim(t *weights.Tensor, heads int) (int, error) {
	if len(t.Shape) == 0 || heads <= 0 || t.Shape[0]%int64(heads) != 0 {
		return 0, fmt.Errorf("convert: %s: %v rows do not split into %d heads", t.Name, t.Shape, heads)
	}
	hd := int(t.Shape[0]) / heads
	if hd%2 != 0 {
		return 0, fmt.Errorf("convert: %s: head size %d is odd; rotary halves need an even size", t.Name, hd)
	}
	return hd, nil
}

// Split cuts t along axis (0: rows, 1: columns) into parts of the given
// sizes, named names: a fused QKV projection into Q, K and V (for GPT-2's
// Conv1D c_attn, the columns; for a fused Linear, the rows). A 1-D tensor
// (a fused bias) splits along its only axis.
func Split(t *weights.Tensor, axis int, sizes []int64, names []string) ([]*weights.Tensor, error) {
	if len(sizes) != len(names) || axis < 0 || axis >= len(t.Shape) || len(t.Shape) > 2 {
		return nil, fmt.Errorf("convert: %s: cannot split shape %v along axis %d into %d parts", t.Name, t.Shape, axis, len(sizes))
	}
	var sum int64
	for _, s := range sizes {
		if s <= 0 {
			return nil, fmt.Errorf("convert: %s: part size %d", t.Name, s)
		}
		sum += s
	}
	if sum != t.Shape[axis] {
		return nil, fmt.Errorf("convert: %s: parts %v do not add up to %d", t.Name, sizes, t.Shape[axis])
	}
	es := int64(t.DType.Size())
	rows, cols := t.Shape[0], int64(1)
	if len(t.Shape) == 2 {
		cols = t.Shape[1]
	}
	var out []*weights.Tensor
	var start int64
	for k, size := range sizes {
		shape := slices.Clone(t.Shape)
		shape[axis] = size
		s0 := start
		out = append(out, lazy(t, names[k], shape, func(src []byte) ([]byte, error) {
			if axis == 0 {
				return slices.Clone(src[s0*cols*es : (s0+size)*cols*es]), nil
			}
			dst := make([]byte, 0, rows*size*es)
			for r := int64(0); r < rows; r++ {
				dst = append(dst, src[(r*cols+s0)*es:(r*cols+s0+size)*es]...)
			}
			return dst, nil
		}))
		start += size
	}
	return out, nil
}

// Concat joins tensors of one dtype along axis under a new name: separate
// Q, K and V into one fused projection, the inverse of Split.
func Concat(ts []*weights.Tensor, axis int, name string) (*weights.Tensor, error) {
	if len(ts) == 0 {
		return nil, fmt.Errorf("convert: nothing to concatenate into %s", name)
	}
	first := ts[0]
	if axis < 0 || axis >= len(first.Shape) || len(first.Shape) > 2 {
		return nil, fmt.Errorf("convert: %s: cannot concatenate shape %v along axis %d", name, first.Shape, axis)
	}
	shape := slices.Clone(first.Shape)
	shape[axis] = 0
	for _, t := range ts {
		if t.DType != first.DType || len(t.Shape) != len(first.Shape) {
			return nil, fmt.Errorf("convert: %s: %s does not match %s", name, t, first)
		}
		for d := range t.Shape {
			if d != axis && t.Shape[d] != first.Shape[d] {
				return nil, fmt.Errorf("convert: %s: %s does not match %s", name, t, first)
			}
		}
		shape[axis] += t.Shape[axis]
	}
	es := int64(first.DType.Size())
	return &weights.Tensor{Name: name, DType: first.DType, Shape: shape, Data: weights.SourceFunc(func() ([]byte, error) {
		parts := make([][]byte, len(ts))
		for i, t := range ts {
			b, err := t.Bytes()
			if err != nil {
				return nil, err
			}
			parts[i] = b
		}
		if axis == 0 {
			return slices.Concat(parts...), nil
		}
		rows := shape[0]
		dst := make([]byte, 0, rows*shape[1]*es)
		for r := int64(0); r < rows; r++ {
			for i, t := range ts {
				w := t.Shape[1] * es
				dst = append(dst, parts[i][r*w:(r+1)*w]...)
			}
		}
		return dst, nil
	})}, nil
}
