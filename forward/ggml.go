package forward

import (
	"fmt"

	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// ggmlSource is implemented by the data of a GGUF file's matrices
// (quantize.OpenGGUF): besides their values decoded to f32 (Bytes), their
// ggml blocks viewing the mapped file, which the kernels decode panel by
// panel. The forward pass uses the blocks, so that a GGUF model holds no
// f32 copy of its weights and its pages are released between layers as
// the other readers' are.
type ggmlSource interface {
	GGML() (*kernels.GGML, error)
}

// ggmlMatrix returns the kernel weight of the tensor t whose data are src:
// F32, F16 and BF16 rows in file order as such (views of the file), other
// types (and permuted rows) in their blocks.
func (s *tensorSet) ggmlMatrix(t *weights.Tensor, src ggmlSource, out, in int) (*kernels.Weight, error) {
	g, err := src.GGML()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWeights, err)
	}
	if g.Out != out || g.In != in {
		return nil, fmt.Errorf("%w: tensor %s holds %d×%d ggml values, want %d×%d", ErrWeights, quote(t.Name), g.Out, g.In, out, in)
	}
	g.Q8Activations = s.ggmlQ8
	w := &kernels.Weight{Out: out, In: in, DType: weights.U8, Data: g.Data, GGML: g}
	float := map[kernels.GGMLType]weights.DType{kernels.GGMLF32: weights.F32, kernels.GGMLF16: weights.F16, kernels.GGMLBF16: weights.BF16}
	d, isFloat := float[g.Type]
	switch {
	case isFloat && g.RowMap == nil:
		w = &kernels.Weight{Out: out, In: in, DType: d, Data: g.Data}
	case !isFloat:
		s.quantElems["gguf"] += int64(out) * int64(in)
		d = weights.U8
	}
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("%w: tensor %s: %v", ErrWeights, quote(t.Name), err)
	}
	s.used[t.Name] = true
	s.matrixElems[d] += int64(out) * int64(in)
	return w, nil
}
