package convert

import (
	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// SharedReport lists the names a conversion to safetensors dropped because
// they aliased another tensor's storage.
type SharedReport struct {
	// Dropped maps each dropped name to the name kept for its data.
	Dropped map[string]string `json:"dropped"`
}

// DedupeShared prepares a pickled checkpoint for safetensors, which cannot
// express two names over one storage, the way the Hub's conversion does:
// names that alias the same data (same storage, offset, dtype and shape) are
// kept once, under the canonical name, and the metadata records every
// dropped name with the name that holds its data (transformers re-ties them
// on load, from the config). The canonical name is the first in checkpoint
// order that is not an output head (lm_head.weight and the like are the
// names transformers ties back to the embedding). The metadata gets
// "format": "pt", as transformers expects of converted PyTorch weights.
// Tensors that share only part of a storage are written as separate
// contiguous copies.
func DedupeShared(g *weights.Graph, cfg *arch.Config) (*weights.Graph, *SharedReport, error) {
	type key struct {
		storage string
		offset  int64
		dtype   weights.DType
		shape   string
	}
	groups := map[key][]*weights.Tensor{}
	var order []key
	for _, t := range g.Tensors() {
		if t.Storage == "" {
			continue
		}
		k := key{t.Storage, t.StorageOffset, t.DType, shapeKey(t.Shape)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], t)
	}
	rep := &SharedReport{Dropped: map[string]string{}}
	for _, k := range order {
		ts := groups[k]
		if len(ts) < 2 {
			continue
		}
		keep := ts[0]
		for _, t := range ts {
			if arch.RoleOf(cfg, t) != arch.RoleHead {
				keep = t
				break
			}
		}
		for _, t := range ts {
			if t != keep {
				rep.Dropped[t.Name] = keep.Name
			}
		}
	}
	out := g.Derive()
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	out.Metadata["format"] = "pt"
	for _, t := range g.Tensors() {
		if kept, ok := rep.Dropped[t.Name]; ok {
			out.Metadata[t.Name] = kept
			continue
		}
		x := *t
		x.Storage, x.StorageOffset = "", 0 // written as its own contiguous copy
		if err := out.Add(&x); err != nil {
			return nil, nil, err
		}
	}
	return out, rep, nil
}

func shapeKey(s []int64) string {
	b := make([]byte, 0, len(s)*4)
	for _, d := range s {
		for d >= 0x80 {
			b = append(b, byte(d)|0x80)
			d >>= 7
		}
		b = append(b, byte(d))
	}
	return string(b)
}
