package prune

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/weights"
)

// selectAlong returns t restricted to the indices keep along axis (0: rows,
// 1: columns of a 2-D tensor; a 1-D tensor has only axis 0), computed when
// read. Elements are copied as bytes, so every dtype works.
func selectAlong(t *weights.Tensor, axis int, keep []int) (*weights.Tensor, error) {
	if axis >= len(t.Shape) {
		return nil, fmt.Errorf("prune: %s: no axis %d in shape %v", t.Name, axis, t.Shape)
	}
	for _, k := range keep {
		if k < 0 || int64(k) >= t.Shape[axis] {
			return nil, fmt.Errorf("prune: %s: index %d outside axis %d of %v", t.Name, k, axis, t.Shape)
		}
	}
	keep = slices.Clone(keep)
	out := *t
	out.Storage, out.StorageOffset = "", 0
	out.Shape = slices.Clone(t.Shape)
	out.Shape[axis] = int64(len(keep))
	es := t.DType.Size()
	out.Data = weights.SourceFunc(func() ([]byte, error) {
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		if len(t.Shape) == 1 {
			dst := make([]byte, 0, len(keep)*es)
			for _, k := range keep {
				dst = append(dst, b[k*es:(k+1)*es]...)
			}
			return dst, nil
		}
		rows, cols := int(t.Shape[0]), int(t.Shape[1])
		if axis == 0 {
			dst := make([]byte, 0, len(keep)*cols*es)
			for _, r := range keep {
				dst = append(dst, b[r*cols*es:(r+1)*cols*es]...)
			}
			return dst, nil
		}
		dst := make([]byte, 0, rows*len(keep)*es)
		for r := 0; r < rows; r++ {
			row := b[r*cols*es : (r+1)*cols*es]
			for _, c := range keep {
				dst = append(dst, row[c*es:(c+1)*es]...)
			}
		}
		return dst, nil
	})
	return &out, nil
}

// sumSquares adds, for each index along axis, the squares of the elements
// in that slice to acc.
func sumSquares(t *weights.Tensor, axis int, acc []float64) error {
	vals, err := t.Float32s()
	if err != nil {
		return err
	}
	if len(t.Shape) == 1 {
		for i, v := range vals {
			acc[i] += float64(v) * float64(v)
		}
		return nil
	}
	cols := int(t.Shape[1])
	for i, v := range vals {
		k := i / cols
		if axis == 1 {
			k = i % cols
		}
		acc[k] += float64(v) * float64(v)
	}
	return nil
}

// slice is one tensor of a layer cut along one axis. part numbers the
// blocks of a fused tensor (GPT-2's c_attn holds q, k and v side by side):
// units of part p start after p blocks of all the units present.
type slice struct {
	name string
	axis int
	part int
}

// family describes where a family keeps the tensors that structured
// pruning cuts.
type family struct {
	layerName func(prefix string, layer int, suffix string) string
	prefix    string
	layers    int
	heads     int
	kvHeads   int
	headDim   int
	hidden    int
	inter     int
	// query and kv cut heads; out cuts the inputs of the output projection.
	query, kv, out []slice
	// up cuts FFN neurons' inputs side (rows or columns), down the output side.
	up, down []slice
	// interField is the config field of the FFN width.
	interField string
}

// findPrefix finds the part of a tensor name before the layer list, by
// looking for a name that ends with marker.
func findPrefix(g *weights.Graph, marker string) (string, bool) {
	for _, t := range g.Tensors() {
		if strings.HasSuffix(t.Name, marker) {
			return strings.TrimSuffix(t.Name, marker), true
		}
	}
	return "", false
}

func familyOf(g *weights.Graph, cfg *formats.Config) (*family, error) {
	if cfg == nil {
		return nil, fmt.Errorf("prune: structured pruning needs config.json")
	}
	switch {
	case cfg.Bert != nil:
		c := cfg.Bert
		p, ok := findPrefix(g, "encoder.layer.0.attention.self.query.weight")
		if !ok {
			return nil, fmt.Errorf("prune: no BERT attention weights (encoder.layer.0.attention.self.query.weight) in the model")
		}
		return &family{
			layerName: func(prefix string, l int, s string) string { return fmt.Sprintf("%sencoder.layer.%d.%s", prefix, l, s) },
			prefix:    p, layers: c.NumHiddenLayers, heads: c.NumAttentionHeads, kvHeads: c.NumAttentionHeads,
			headDim: c.HiddenSize / c.NumAttentionHeads, hidden: c.HiddenSize, inter: c.IntermediateSize,
			query: []slice{{"attention.self.query.weight", 0, 0}, {"attention.self.query.bias", 0, 0}},
			kv: []slice{{"attention.self.key.weight", 0, 0}, {"attention.self.key.bias", 0, 0},
				{"attention.self.value.weight", 0, 0}, {"attention.self.value.bias", 0, 0}},
			out:        []slice{{"attention.output.dense.weight", 1, 0}},
			up:         []slice{{"intermediate.dense.weight", 0, 0}, {"intermediate.dense.bias", 0, 0}},
			down:       []slice{{"output.dense.weight", 1, 0}},
			interField: "intermediate_size",
		}, nil
	case cfg.GPT2 != nil:
		c := cfg.GPT2
		p, ok := findPrefix(g, "h.0.attn.c_attn.weight")
		if !ok {
			return nil, fmt.Errorf("prune: no GPT-2 attention weights (h.0.attn.c_attn.weight) in the model")
		}
		h := c.NEmbd
		// c_attn is Conv1D [hidden, 3*hidden]: q, k, v side by side in the columns.
		return &family{
			layerName: func(prefix string, l int, s string) string { return fmt.Sprintf("%sh.%d.%s", prefix, l, s) },
			prefix:    p, layers: c.NLayer, heads: c.NHead, kvHeads: c.NHead, headDim: h / c.NHead, hidden: h, inter: c.NInner,
			query: []slice{{"attn.c_attn.weight", 1, 0}, {"attn.c_attn.bias", 0, 0}},
			kv: []slice{{"attn.c_attn.weight", 1, 1}, {"attn.c_attn.bias", 0, 1},
				{"attn.c_attn.weight", 1, 2}, {"attn.c_attn.bias", 0, 2}},
			out:        []slice{{"attn.c_proj.weight", 0, 0}},
			up:         []slice{{"mlp.c_fc.weight", 1, 0}, {"mlp.c_fc.bias", 0, 0}},
			down:       []slice{{"mlp.c_proj.weight", 0, 0}},
			interField: "n_inner",
		}, nil
	case cfg.Llama != nil:
		c := cfg.Llama
		p, ok := findPrefix(g, "layers.0.self_attn.q_proj.weight")
		if !ok {
			return nil, fmt.Errorf("prune: no Llama attention weights (layers.0.self_attn.q_proj.weight) in the model")
		}
		return &family{
			layerName: func(prefix string, l int, s string) string { return fmt.Sprintf("%slayers.%d.%s", prefix, l, s) },
			prefix:    p, layers: c.NumHiddenLayers, heads: c.NumAttentionHeads, kvHeads: c.NumKeyValueHeads,
			headDim: c.HeadDim, hidden: c.HiddenSize, inter: c.IntermediateSize,
			query: []slice{{"self_attn.q_proj.weight", 0, 0}, {"self_attn.q_proj.bias", 0, 0}},
			kv: []slice{{"self_attn.k_proj.weight", 0, 0}, {"self_attn.k_proj.bias", 0, 0},
				{"self_attn.v_proj.weight", 0, 0}, {"self_attn.v_proj.bias", 0, 0}},
			out:        []slice{{"self_attn.o_proj.weight", 1, 0}},
			up:         []slice{{"mlp.gate_proj.weight", 0, 0}, {"mlp.up_proj.weight", 0, 0}},
			down:       []slice{{"mlp.down_proj.weight", 1, 0}},
			interField: "intermediate_size",
		}, nil
	}
	return nil, fmt.Errorf("prune: structured pruning knows the bert, gpt2 and llama families, not %q", cfg.Architecture())
}

// cut records, per tensor name, the indices kept along one axis. A tensor
// cut twice (GPT-2's fused c_attn) collects the kept indices of each part.
type cut struct {
	axis int
	keep []int
	full int
}

// unitIndices lists the indices along a slice's axis of the given units
// (heads or neurons) of size elements each, out of present units.
func unitIndices(s slice, units []int, size, present int) []int {
	var out []int
	base := s.part * present * size
	for _, u := range units {
		for j := 0; j < size; j++ {
			out = append(out, base+u*size+j)
		}
	}
	return out
}

// apply builds the pruned graph from the cuts.
func apply(g *weights.Graph, cuts map[string]*cut, rep *Report) (*weights.Graph, error) {
	out := g.Derive()
	for _, t := range g.Tensors() {
		c, ok := cuts[t.Name]
		if !ok {
			if err := out.Add(t); err != nil {
				return nil, err
			}
			continue
		}
		if int64(c.full) != t.Shape[c.axis] {
			return nil, fmt.Errorf("prune: %s: expected %d along axis %d, shape is %v", t.Name, c.full, c.axis, t.Shape)
		}
		sort.Ints(c.keep)
		x, err := selectAlong(t, c.axis, c.keep)
		if err != nil {
			return nil, err
		}
		if err := out.Add(x); err != nil {
			return nil, err
		}
		rep.add(TensorReport{Name: t.Name, Shape: x.Shape, OldShape: t.Shape, Elements: x.NumElements()})
	}
	return out, nil
}

// addCut registers that tensor name keeps idx along axis.
func (f *family) addCut(g *weights.Graph, cuts map[string]*cut, layer int, s slice, idx []int) error {
	name := f.layerName(f.prefix, layer, s.name)
	t, ok := g.Tensor(name)
	if !ok {
		if strings.HasSuffix(s.name, ".bias") {
			return nil // layers without biases
		}
		return fmt.Errorf("prune: missing tensor %s", name)
	}
	if s.axis >= len(t.Shape) {
		return fmt.Errorf("prune: %s: shape %v has no axis %d", name, t.Shape, s.axis)
	}
	c, ok := cuts[name]
	if !ok {
		c = &cut{axis: s.axis, full: int(t.Shape[s.axis])}
		cuts[name] = c
	}
	c.keep = append(c.keep, idx...)
	return nil
}

// ParseHeads parses a --heads SPEC: "LAYER:H,H;LAYER:H" names the heads to
// remove per layer (original head numbers, from 0), and a plain number K
// removes the K least important heads of every layer.
func ParseHeads(spec string) (explicit map[int][]int, perLayer int, err error) {
	spec = strings.TrimSpace(spec)
	if k, err := strconv.Atoi(spec); err == nil {
		if k <= 0 {
			return nil, 0, specErrorf("prune: --heads %d: must be positive", k)
		}
		return nil, k, nil
	}
	explicit = map[int][]int{}
	for _, part := range strings.Split(spec, ";") {
		layer, heads, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, 0, specErrorf("prune: --heads %q: want LAYER:H,H;LAYER:H or a number", spec)
		}
		l, err := strconv.Atoi(strings.TrimSpace(layer))
		if err != nil || l < 0 {
			return nil, 0, specErrorf("prune: --heads %q: bad layer %q", spec, layer)
		}
		for _, h := range strings.Split(heads, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(h))
			if err != nil || n < 0 {
				return nil, 0, specErrorf("prune: --heads %q: bad head %q", spec, h)
			}
			explicit[l] = append(explicit[l], n)
		}
	}
	return explicit, 0, nil
}

// Heads removes attention heads. For BERT and GPT-2, heads may differ per
// layer, and config.json records them in pruned_heads, which transformers
// applies when it builds the model, so the result loads as an ordinary
// model. Llama-family attention has one head count for all layers, so every
// layer must lose the same number of heads; with grouped-query attention a
// key/value head goes only together with all the query heads that share it.
// The config's num_attention_heads, num_key_value_heads and head_dim are
// updated. With perLayer > 0, the heads whose output projections have the
// smallest L2 norm go.
func Heads(g *weights.Graph, cfg *formats.Config, explicit map[int][]int, perLayer int) (*weights.Graph, *Report, error) {
	f, err := familyOf(g, cfg)
	if err != nil {
		return nil, nil, err
	}
	llama := cfg.Llama != nil
	already := map[int][]int{}
	if !llama {
		if already, err = cfg.PrunedHeads(); err != nil {
			return nil, nil, err
		}
	}
	for l, heads := range explicit {
		if l >= f.layers {
			return nil, nil, specErrorf("prune: the model has %d layers (0 to %d); there is no layer %d", f.layers, f.layers-1, l)
		}
		if len(heads) == 0 {
			return nil, nil, specErrorf("prune: layer %d: no head to remove given", l)
		}
	}
	if perLayer > 0 && explicit != nil || perLayer == 0 && len(explicit) == 0 {
		return nil, nil, specErrorf("prune: give either the heads to remove per layer or a count per layer")
	}
	rep := &Report{Method: "heads"}
	cuts := map[string]*cut{}
	newPruned := map[string][]int{}
	group := f.heads / f.kvHeads
	removedPerLayer := -1
	for l := 0; l < f.layers; l++ {
		// The original heads that remain in this layer, in stored order.
		gone := map[int]bool{}
		for _, h := range already[l] {
			gone[h] = true
		}
		var present []int
		for h := 0; h < f.heads; h++ {
			if !gone[h] {
				present = append(present, h)
			}
		}
		remove := map[int]bool{}
		if perLayer > 0 {
			imp, err := f.headImportance(g, l, len(present))
			if err != nil {
				return nil, nil, err
			}
			for _, pos := range leastImportant(imp, perLayer, group) {
				remove[present[pos]] = true
			}
		} else {
			for _, h := range explicit[l] {
				if h >= f.heads || gone[h] {
					return nil, nil, specErrorf("prune: layer %d has no head %d (heads %v remain)", l, h, present)
				}
				remove[h] = true
			}
		}
		if len(remove) >= len(present) {
			return nil, nil, specErrorf("prune: layer %d would lose all %d heads", l, len(present))
		}
		// Positions (in stored order) that stay.
		var keepPos, keepKV []int
		for pos, h := range present {
			if !remove[h] {
				keepPos = append(keepPos, pos)
			}
		}
		if llama {
			if removedPerLayer >= 0 && removedPerLayer != len(remove) {
				return nil, nil, specErrorf("prune: %s layers share one head count: every layer must lose the same number of heads", cfg.Architecture())
			}
			removedPerLayer = len(remove)
			for kv := 0; kv < len(present)/group; kv++ {
				n := 0
				for j := 0; j < group; j++ {
					if remove[present[kv*group+j]] {
						n++
					}
				}
				if n != 0 && n != group {
					return nil, nil, specErrorf("prune: layer %d: query heads %d-%d share key/value head %d and must be removed together", l, kv*group, kv*group+group-1, kv)
				}
				if n == 0 {
					keepKV = append(keepKV, kv)
				}
			}
		} else {
			keepKV = keepPos
		}
		if len(remove) > 0 {
			var hs []int
			for h := range remove {
				hs = append(hs, h)
			}
			hs = append(hs, already[l]...)
			sort.Ints(hs)
			newPruned[strconv.Itoa(l)] = hs
		} else if len(already[l]) > 0 {
			newPruned[strconv.Itoa(l)] = already[l]
		}
		if len(remove) == 0 {
			continue
		}
		for _, s := range f.query {
			if err := f.addCut(g, cuts, l, s, unitIndices(s, keepPos, f.headDim, len(present))); err != nil {
				return nil, nil, err
			}
		}
		for _, s := range f.kv {
			if err := f.addCut(g, cuts, l, s, unitIndices(s, keepKV, f.headDim, len(present)/group)); err != nil {
				return nil, nil, err
			}
		}
		for _, s := range f.out {
			if err := f.addCut(g, cuts, l, s, unitIndices(s, keepPos, f.headDim, len(present))); err != nil {
				return nil, nil, err
			}
		}
	}
	out, err := apply(g, cuts, rep)
	if err != nil {
		return nil, nil, err
	}
	fields := map[string]any{}
	if llama {
		heads := f.heads - removedPerLayer
		fields["num_attention_heads"] = heads
		fields["num_key_value_heads"] = heads / group
		fields["head_dim"] = f.headDim
	} else if len(newPruned) > 0 {
		fields["pruned_heads"] = newPruned
	}
	rep.Config = fields
	if out.Config != nil {
		if out.Config, err = formats.UpdateConfig(out.Config, fields); err != nil {
			return nil, nil, err
		}
	}
	return out, rep, nil
}

// headImportance returns the L2 norm of each present head's slice of the
// output projection.
func (f *family) headImportance(g *weights.Graph, layer, present int) ([]float64, error) {
	s := f.out[0]
	name := f.layerName(f.prefix, layer, s.name)
	t, ok := g.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("prune: missing tensor %s", name)
	}
	acc := make([]float64, t.Shape[s.axis])
	if err := sumSquares(t, s.axis, acc); err != nil {
		return nil, err
	}
	imp := make([]float64, present)
	for h := range imp {
		for j := 0; j < f.headDim && h*f.headDim+j < len(acc); j++ {
			imp[h] += acc[h*f.headDim+j]
		}
		imp[h] = math.Sqrt(imp[h])
	}
	return imp, nil
}

// leastImportant returns the positions of the k least important heads,
// taken in whole groups of size group (sharing a key/value head).
func leastImportant(imp []float64, k, group int) []int {
	if group < 1 {
		group = 1
	}
	groups := len(imp) / group
	gimp := make([]float64, groups)
	for i, v := range imp {
		if i/group < groups {
			gimp[i/group] += v
		}
	}
	order := make([]int, groups)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return gimp[order[a]] < gimp[order[b]] })
	ng := (k + group - 1) / group
	var out []int
	for _, gi := range order[:min(ng, groups)] {
		for j := 0; j < group; j++ {
			out = append(out, gi*group+j)
		}
	}
	return out
}

// FFN keeps the fraction keep of the FFN neurons of every layer (the same
// number in each, so config.json's intermediate size describes them all),
// choosing by the product of the L2 norms of each neuron's input and
// output weights.
func FFN(g *weights.Graph, cfg *formats.Config, keep float64) (*weights.Graph, *Report, error) {
	if !(keep > 0 && keep <= 1) {
		return nil, nil, specErrorf("prune: --ffn-keep %g is not in (0, 1]", keep)
	}
	f, err := familyOf(g, cfg)
	if err != nil {
		return nil, nil, err
	}
	n := int(math.Round(keep * float64(f.inter)))
	if n < 1 {
		n = 1
	}
	rep := &Report{Method: fmt.Sprintf("ffn keep %.4g", keep)}
	cuts := map[string]*cut{}
	for l := 0; l < f.layers; l++ {
		in := make([]float64, f.inter)
		outn := make([]float64, f.inter)
		for _, s := range f.up {
			if strings.HasSuffix(s.name, ".bias") {
				continue
			}
			t, ok := g.Tensor(f.layerName(f.prefix, l, s.name))
			if !ok {
				return nil, nil, fmt.Errorf("prune: missing tensor %s", f.layerName(f.prefix, l, s.name))
			}
			if t.Shape[s.axis] != int64(f.inter) {
				return nil, nil, fmt.Errorf("prune: %s: shape %v does not have %d neurons along axis %d", t.Name, t.Shape, f.inter, s.axis)
			}
			if err := sumSquares(t, s.axis, in); err != nil {
				return nil, nil, err
			}
		}
		for _, s := range f.down {
			t, ok := g.Tensor(f.layerName(f.prefix, l, s.name))
			if !ok {
				return nil, nil, fmt.Errorf("prune: missing tensor %s", f.layerName(f.prefix, l, s.name))
			}
			if t.Shape[s.axis] != int64(f.inter) {
				return nil, nil, fmt.Errorf("prune: %s: shape %v does not have %d neurons along axis %d", t.Name, t.Shape, f.inter, s.axis)
			}
			if err := sumSquares(t, s.axis, outn); err != nil {
				return nil, nil, err
			}
		}
		order := make([]int, f.inter)
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool {
			return math.Sqrt(in[order[a]])*math.Sqrt(outn[order[a]]) > math.Sqrt(in[order[b]])*math.Sqrt(outn[order[b]])
		})
		kept := slices.Clone(order[:n])
		sort.Ints(kept)
		for _, s := range append(slices.Clone(f.up), f.down...) {
			if err := f.addCut(g, cuts, l, s, unitIndices(s, kept, 1, f.inter)); err != nil {
				return nil, nil, err
			}
		}
	}
	out, err := apply(g, cuts, rep)
	if err != nil {
		return nil, nil, err
	}
	rep.Config = map[string]any{f.interField: n}
	if out.Config != nil {
		if out.Config, err = formats.UpdateConfig(out.Config, rep.Config); err != nil {
			return nil, nil, err
		}
	}
	return out, rep, nil
}
