package forward

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// The compressed-tensors layouts besides int-quantized: pack-quantized
// (W4A16: "<name>.weight_packed" int32 words of eight 4-bit codes,
// "<name>.weight_scale" [out, groups], "<name>.weight_shape" [2] and, when
// asymmetric, "<name>.weight_zero_point" [ceil(out/8), groups] packed down
// the outputs) and float-quantized (FP8: an F8_E4M3 "<name>.weight" with
// "<name>.weight_scale" per output channel or per tensor). Int4 weights
// stay packed (kernels.Int4: the kernels widen them panel by panel, w =
// (q − zero)·scale, one f32 product); FP8 weights are widened to an f32
// copy with their scales applied when the model loads.

// int4Matrix returns the pack-quantized weight whose packed codes are p as
// a kernel weight of logical shape out×in viewing the packed bytes (the packed layout is always
// [out][in], whatever the module's stored layout was).
func (s *tensorSet) int4Matrix(p *weights.Tensor, out, in int) (*kernels.Weight, error) {
	base := strings.TrimSuffix(p.Name, "_packed") // "<name>.weight"
	get := func(suffix string) (*weights.Tensor, error) {
		t, ok := s.g.Tensor(base + suffix)
		if !ok {
			return nil, fmt.Errorf("%w: packed int4 tensor %s has no %s", ErrWeights, quote(p.Name), quote(base+suffix))
		}
		s.used[t.Name] = true
		return t, nil
	}
	if st, ok := s.g.Tensor(base + "_shape"); ok {
		b, err := st.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrWeights, err)
		}
		var dims []int64
		switch {
		case st.DType == weights.I64 && len(b) == 16:
			dims = []int64{int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint64(b[8:]))}
		case st.DType == weights.I32 && len(b) == 8:
			dims = []int64{int64(int32(binary.LittleEndian.Uint32(b))), int64(int32(binary.LittleEndian.Uint32(b[4:])))}
		default:
			return nil, fmt.Errorf("%w: tensor %s has dtype %v shape %v, want 2 integers", ErrWeights, quote(st.Name), st.DType, st.Shape)
		}
		if dims[0] != int64(out) || dims[1] != int64(in) {
			return nil, fmt.Errorf("%w: tensor %s says %v, the model needs [%d %d]", ErrWeights, quote(st.Name), dims, out, in)
		}
		s.used[st.Name] = true
	}
	words := int64((in + 7) / 8)
	if p.DType != weights.I32 || len(p.Shape) != 2 || p.Shape[0] != int64(out) || p.Shape[1] != words {
		return nil, fmt.Errorf("%w: tensor %s is %v %v, want I32 [%d %d]", ErrWeights, quote(p.Name), p.DType, p.Shape, out, words)
	}
	st, err := get("_scale")
	if err != nil {
		return nil, err
	}
	if !st.DType.IsFloat() || len(st.Shape) != 2 || st.Shape[0] != int64(out) || st.Shape[1] < 1 || st.Shape[1] > int64(in) {
		return nil, fmt.Errorf("%w: tensor %s is %v %v, want a float [%d, groups]", ErrWeights, quote(st.Name), st.DType, st.Shape, out)
	}
	groups := int(st.Shape[1])
	w := &kernels.Int4{Out: out, In: in}
	if groups > 1 {
		// The config's group size when it gives this many groups (the last
		// one shorter), else in/groups when that divides.
		if g := s.configGroupSize(); g > 0 && (in+g-1)/g == groups {
			w.GroupSize = g
		} else if in%groups == 0 {
			w.GroupSize = in / groups
		} else {
			return nil, fmt.Errorf("%w: tensor %s has %d groups for %d inputs, and quantization_config gives no group size that makes them",
				ErrWeights, quote(st.Name), groups, in)
		}
	}
	if w.Scales, err = st.Float32s(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWeights, err)
	}
	if w.Packed, err = p.Bytes(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWeights, err)
	}
	if zt, ok := s.g.Tensor(base + "_zero_point"); ok {
		if zt.DType != weights.I32 || len(zt.Shape) != 2 || zt.Shape[0] != int64((out+7)/8) || zt.Shape[1] != int64(groups) {
			return nil, fmt.Errorf("%w: tensor %s is %v %v, want I32 [%d %d] (zero points packed down the outputs)",
				ErrWeights, quote(zt.Name), zt.DType, zt.Shape, (out+7)/8, groups)
		}
		if w.Zeros, err = zt.Bytes(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrWeights, err)
		}
		s.used[zt.Name] = true
	}
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("%w: tensor %s: %v", ErrWeights, quote(p.Name), err)
	}
	kw := &kernels.Weight{Out: out, In: in, DType: weights.I32, Data: w.Packed, Int4: w}
	s.used[p.Name] = true
	s.quantElems["int4"] += int64(out) * int64(in)
	s.matrixElems[weights.I32] += int64(out) * int64(in)
	return kw, nil
}

// fp8Scales multiplies the widened values v of the F8 weight wname (stored
// [out][in], or [in][out] for conv1d) by its "<wname>_scale" when it has
// one: [out], [out, 1] (per channel) or one value (per tensor).
func (s *tensorSet) fp8Scales(v []float32, wname string, out, in int, conv1d bool) error {
	st, ok := s.g.Tensor(wname + "_scale")
	if !ok {
		return nil
	}
	if !st.DType.IsFloat() {
		return fmt.Errorf("%w: tensor %s has dtype %v, want a float type", ErrWeights, quote(st.Name), st.DType)
	}
	sc, err := st.Float32s()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrWeights, err)
	}
	switch len(sc) {
	case 1:
		for k := range v {
			v[k] *= sc[0]
		}
	case out:
		for k := range v {
			o := k / in
			if conv1d {
				o = k % out
			}
			v[k] *= sc[o]
		}
	default:
		return fmt.Errorf("%w: tensor %s has shape %v, want [%d], [%d, 1] or one value", ErrWeights, quote(st.Name), st.Shape, out, out)
	}
	s.used[st.Name] = true
	s.quantElems["fp8"] += int64(out) * int64(in)
	return nil
}

// configGroupSize returns the weights' group_size of the first config group
// of config.json's quantization_config, 0 when there is none.
func (s *tensorSet) configGroupSize() int {
	if s.groupSize != nil {
		return *s.groupSize
	}
	var c struct {
		Q struct {
			Groups map[string]struct {
				Weights struct {
					GroupSize int `json:"group_size"`
				} `json:"weights"`
			} `json:"config_groups"`
		} `json:"quantization_config"`
	}
	g := 0
	if s.g.Config != nil && json.Unmarshal(s.g.Config, &c) == nil {
		keys := make([]string, 0, len(c.Q.Groups))
		for k := range c.Q.Groups {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) > 0 {
			g = c.Q.Groups[keys[0]].Weights.GroupSize
		}
	}
	s.groupSize = &g
	return g
}
