package formats

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"github.com/hubmirror/hubmirror/weights"
)

// QuantGroup is one kind of quantized matrix in a model, in the
// compressed-tensors layouts hubmirror writes and reads.
type QuantGroup struct {
	// Scheme is "int8" (int-quantized), "w8a8" (int-quantized with
	// dynamic per-token int8 activations in the config), "w4a16"
	// (pack-quantized int4) or "fp8" (float-quantized F8_E4M3).
	Scheme string `json:"scheme"`
	// GroupSize is the inputs per scale; 0 for one scale per output
	// channel (or, for fp8, per tensor when PerTensor).
	GroupSize int  `json:"group_size,omitempty"`
	PerTensor bool `json:"per_tensor,omitempty"`
	// Asymmetric reports zero points.
	Asymmetric bool `json:"asymmetric,omitempty"`
	// Modules counts the Linear modules of this kind.
	Modules int `json:"modules"`
}

// String is the scheme as inspect prints it: "w4a16 group 128 asym",
// "int8 channel", "fp8 channel".
func (q QuantGroup) String() string {
	s := q.Scheme
	switch {
	case q.GroupSize > 0:
		s += fmt.Sprintf(" group %d", q.GroupSize)
	case q.PerTensor:
		s += " tensor"
	default:
		s += " channel"
	}
	if q.Scheme == "w4a16" {
		if q.Asymmetric {
			s += " asym"
		} else {
			s += " sym"
		}
	}
	return s
}

// quantizedWeight returns the quantization of the module whose weight is
// named w (".weight" or ".weight_packed"), false when it is not quantized.
func quantizedWeight(g *weights.Graph, t *weights.Tensor) (QuantGroup, bool) {
	base, packed := strings.CutSuffix(t.Name, "_packed")
	if !strings.HasSuffix(base, ".weight") {
		return QuantGroup{}, false
	}
	scale, ok := g.Tensor(base + "_scale")
	if !ok {
		return QuantGroup{}, false
	}
	_, asym := g.Tensor(base + "_zero_point")
	q := QuantGroup{Asymmetric: asym}
	var in int64
	switch {
	case packed && t.DType == weights.I32 && len(t.Shape) == 2:
		q.Scheme, in = "w4a16", t.Shape[1]*8
		if st, ok := g.Tensor(base + "_shape"); ok {
			if b, err := st.Bytes(); err == nil && st.DType == weights.I64 && len(b) == 16 {
				in = int64(binary.LittleEndian.Uint64(b[8:]))
			} else if err == nil && st.DType == weights.I32 && len(b) == 8 {
				in = int64(int32(binary.LittleEndian.Uint32(b[4:])))
			}
		}
	case !packed && t.DType == weights.I8 && len(t.Shape) == 2:
		q.Scheme, in = int8Scheme(g), t.Shape[1]
	case !packed && t.DType == weights.F8E4M3 && len(t.Shape) == 2:
		q.Scheme, in = "fp8", t.Shape[1]
	default:
		return QuantGroup{}, false
	}
	if scale.NumElements() == 1 {
		q.PerTensor = true
	} else if len(scale.Shape) == 2 && scale.Shape[1] > 1 && in > 0 {
		groups := scale.Shape[1]
		q.GroupSize = int((in + groups - 1) / groups)
	}
	return q, true
}

// Quantization lists the kinds of quantized matrices of g, each with the
// number of modules of that kind, most modules first; nil when none is.
func Quantization(g *weights.Graph) []QuantGroup {
	count := map[QuantGroup]int{}
	for _, t := range g.Tensors() {
		if q, ok := quantizedWeight(g, t); ok {
			count[q]++
		}
	}
	var out []QuantGroup
	for q, n := range count {
		q.Modules = n
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Modules != out[j].Modules {
			return out[i].Modules > out[j].Modules
		}
		return out[i].String() < out[j].String()
	})
	return out
}
