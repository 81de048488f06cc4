package quantize

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// The FP8 scheme, as compressed-tensors' float-quantized format and
// llm-compressor's FP8_DYNAMIC preset define it: one scale per output
// channel, scale = max(amax/448, float32 eps) rounded to the model dtype,
// and the weight stored as float8_e4m3fn of clamp(w/scale, -448, 448),
// rounded to nearest even (PyTorch's .to(torch.float8_e4m3fn) after the
// clamp compressed-tensors applies, so it saturates). The stored layout of
// the weight is kept (a Conv1D weight stays [in][out]).

// fp8Max is the largest finite float8_e4m3fn.
const fp8Max = 448

// EncodeE4M3 is the float8_e4m3fn code of clamp(v, -448, 448), rounded to
// nearest even; NaN stays NaN, with its sign (as PyTorch's conversion).
func EncodeE4M3(v float32) uint8 {
	if v != v {
		if math.Signbit(float64(v)) {
			return 0xff
		}
		return 0x7f
	}
	return weights.Float32ToF8E4M3(min(max(v, -fp8Max), fp8Max))
}

type fp8Job struct {
	src       *weights.Tensor
	out, in   int
	inMajor   bool
	scaleType weights.DType

	mu     sync.Mutex
	scales []float32
}

func (j *fp8Job) matrix() ([]float32, error) {
	b, err := j.src.Bytes()
	if err != nil {
		return nil, err
	}
	v := make([]float32, j.out*j.in)
	if err := weights.DecodeFloat32(v, b, j.src.DType); err != nil {
		return nil, err
	}
	return v, nil
}

// at returns the index in the stored data of output o, input i.
func (j *fp8Job) at(o, i int) int {
	if j.inMajor {
		return i*j.out + o
	}
	return o*j.in + i
}

func (j *fp8Job) scaleValues(v []float32) ([]float32, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.scales != nil {
		return j.scales, nil
	}
	if v == nil {
		var err error
		if v, err = j.matrix(); err != nil {
			return nil, err
		}
	}
	s := make([]float32, j.out)
	for o := range s {
		var a float32
		for i := 0; i < j.in; i++ {
			x := v[j.at(o, i)]
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("quantize: non-finite weight in output channel %d", o)
			}
			a = max(a, float32(math.Abs(float64(x))))
		}
		s[o] = roundScale(max(a/fp8Max, f32Eps), j.scaleType)
	}
	j.scales = s
	return s, nil
}

func (j *fp8Job) quantized() ([]byte, error) {
	v, err := j.matrix()
	if err != nil {
		return nil, err
	}
	s, err := j.scaleValues(v)
	if err != nil {
		return nil, err
	}
	q := make([]byte, len(v))
	for o := 0; o < j.out; o++ {
		for i := 0; i < j.in; i++ {
			k := j.at(o, i)
			q[k] = EncodeE4M3(v[k] / s[o])
		}
	}
	return q, nil
}

// fp8Tensors returns the lazy F8_E4M3 weight and its [out, 1] scale.
func fp8Tensors(t *weights.Tensor, cfg *arch.Config) ([]*weights.Tensor, error) {
	o, i, err := linearDims(t, cfg)
	if err != nil {
		return nil, err
	}
	out, in := int64(o), int64(i)
	prefix := strings.TrimSuffix(t.Name, ".weight")
	job := &fp8Job{src: t, out: int(out), in: int(in), inMajor: arch.IsConv1D(cfg, t.Name), scaleType: t.DType}
	q := &weights.Tensor{Name: t.Name, DType: weights.F8E4M3, Shape: append([]int64(nil), t.Shape...), File: t.File,
		Data: weights.SourceFunc(func() ([]byte, error) {
			b, err := job.quantized()
			if err != nil {
				return nil, fmt.Errorf("quantize %s: %w", t.Name, err)
			}
			return b, nil
		})}
	scale := &weights.Tensor{Name: prefix + ".weight_scale", DType: t.DType, Shape: []int64{out, 1}, File: t.File,
		Data: weights.SourceFunc(func() ([]byte, error) {
			s, err := job.scaleValues(nil)
			if err != nil {
				return nil, fmt.Errorf("quantize %s: %w", t.Name, err)
			}
			return encodeScales(s, t.DType)
		})}
	return []*weights.Tensor{q, scale}, nil
}

// FloatQuantizedConfig returns the quantization_config llm-compressor
// writes for its FP8_DYNAMIC preset: F8_E4M3 weights with a static scale
// per output channel, activations quantized to fp8 per token at run time.
func FloatQuantizedConfig(ignore []string) map[string]any {
	return compressedTensorsConfig("float-quantized", quantArgs(8, "float", true, "channel", nil, false, "minmax"),
		quantArgs(8, "float", true, "token", nil, true, nil), "float-quantized", ignore)
}
