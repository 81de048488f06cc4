package convert

import (
	"fmt"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// PerExpert returns g with transformers 5's fused MoE experts in the
// per-expert layout of the Hub's checkpoints (the one transformers 5's
// save_pretrained writes back): each layer's mlp.experts.gate_up_proj
// [E, 2I, H] and mlp.experts.down_proj [E, H, I] become E gate, up and
// down matrices named as the family names them (Mixtral's
// block_sparse_moe.experts.<e>.w1/w3/w2.weight, its router mlp.gate going
// back to block_sparse_moe.gate; Qwen's mlp.experts.<e>.gate_proj/up_proj/
// down_proj.weight), each computed when read as a slice of the fused
// tensor. The other tensors keep their place. A graph without fused
// experts, or of another family, is returned as it is, with fused false.
func PerExpert(g *weights.Graph, cfg *arch.Config) (out *weights.Graph, fused bool, err error) {
	block, gate, up, down, ok := arch.ExpertNames(cfg)
	if !ok {
		return g, false, nil
	}
	gateUpName, downName := arch.FusedExperts()
	var layers []string // the prefixes of the layers with fused experts
	for _, t := range g.Tensors() {
		if p, ok := strings.CutSuffix(t.Name, gateUpName); ok && arch.RoleOf(cfg, t) == arch.RoleExperts {
			layers = append(layers, p)
		}
	}
	if len(layers) == 0 {
		return g, false, nil
	}
	router := map[string]string{} // Mixtral: mlp.gate -> block_sparse_moe.gate
	for _, p := range layers {
		if _, ok := g.Tensor(p + downName); !ok {
			return nil, false, fmt.Errorf("convert: %s%s has no %s%s beside it", p, gateUpName, p, downName)
		}
		if block != arch.FusedMoE {
			router[p+arch.FusedMoE+"."+arch.MoERouter+".weight"] = p + block + "." + arch.MoERouter + ".weight"
		}
	}
	out = g.Derive()
	for _, t := range g.Tensors() {
		var parts []string // the projections of the fused tensor's slices
		var prefix string
		for _, p := range layers {
			switch t.Name {
			case p + gateUpName:
				parts, prefix = []string{gate, up}, p
			case p + downName:
				parts, prefix = []string{down}, p
			}
		}
		if parts == nil {
			if to, ok := router[t.Name]; ok {
				r := *t
				r.Name = to
				t = &r
			}
			if err := out.Add(t); err != nil {
				return nil, false, err
			}
			continue
		}
		n, rows, cols, ok := arch.FusedExpertSlices(t.Name, t.Shape)
		if !ok {
			return nil, false, fmt.Errorf("convert: %s has shape %v, not fused experts [experts, rows, cols]", t.Name, t.Shape)
		}
		size := rows * cols * int64(t.DType.Size())
		for k := 0; k < n; k++ {
			e, part := k/len(parts), parts[k%len(parts)]
			x := &weights.Tensor{Name: fmt.Sprintf("%s%s.%s.%d.%s.weight", prefix, block, arch.MoEExperts, e, part),
				DType: t.DType, Shape: []int64{rows, cols}, File: t.File, Data: sliceOf(t, int64(k)*size, size)}
			if err := out.Add(x); err != nil {
				return nil, false, err
			}
		}
	}
	return out, true, nil
}

// sliceOf is the Source of n bytes of t's data from offset off.
func sliceOf(t *weights.Tensor, off, n int64) weights.Source {
	return weights.SourceFunc(func() ([]byte, error) {
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		if int64(len(b)) < off+n {
			return nil, fmt.Errorf("convert: %s holds %d bytes, want at least %d", t.Name, len(b), off+n)
		}
		return b[off : off+n : off+n], nil
	})
}
