package prune

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
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

// family is where a model keeps the tensors that structured pruning cuts:
// its family's Blocks, found under the model's prefix.
type family struct {
	arch.Blocks
	prefix string
	layer  func(i int) string
}

// name is the full name of a tensor of layer l.
func (f *family) name(l int, s string) string { return f.prefix + f.layer(l) + s }

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

func familyOf(g *weights.Graph, cfg *arch.Config) (*family, error) {
	if cfg == nil {
		return nil, fmt.Errorf("prune: structured pruning needs config.json")
	}
	if cfg.Params == nil {
		return nil, fmt.Errorf("prune: structured pruning knows the %s families, not %q", familyNames(), cfg.Architecture())
	}
	b, l := cfg.Params.Blocks(), cfg.Params.Layout()
	marker := l.Layer(0) + b.Query[0].Name
	p, ok := findPrefix(g, marker)
	if !ok {
		return nil, fmt.Errorf("prune: no %s attention weights (%s) in the model", cfg.Family(), marker)
	}
	return &family{Blocks: b, prefix: p, layer: l.Layer}, nil
}

// familyNames lists the families structured pruning knows.
func familyNames() string {
	var names []string
	for _, f := range arch.Families() {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
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
func unitIndices(s arch.Slice, units []int, size, present int) []int {
	var out []int
	base := s.Part * present * size
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
func (f *family) addCut(g *weights.Graph, cuts map[string]*cut, layer int, s arch.Slice, idx []int) error {
	name := f.name(layer, s.Name)
	t, ok := g.Tensor(name)
	if !ok {
		if strings.HasSuffix(s.Name, ".bias") {
			return nil // layers without biases
		}
		return fmt.Errorf("prune: missing tensor %s", name)
	}
	if s.Axis >= len(t.Shape) {
		return fmt.Errorf("prune: %s: shape %v has no axis %d", name, t.Shape, s.Axis)
	}
	c, ok := cuts[name]
	if !ok {
		c = &cut{axis: s.Axis, full: int(t.Shape[s.Axis])}
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
func Heads(g *weights.Graph, cfg *arch.Config, explicit map[int][]int, perLayer int) (*weights.Graph, *Report, error) {
	f, err := familyOf(g, cfg)
	if err != nil {
		return nil, nil, err
	}
	if f.NoHeadPruning != "" {
		return nil, nil, fmt.Errorf("prune: %s: cannot prune attention heads: %s", cfg.Architecture(), f.NoHeadPruning)
	}
	uniform := !f.PerLayerHeads // one head count for every layer
	already := map[int][]int{}
	if !uniform {
		if already, err = cfg.PrunedHeads(); err != nil {
			return nil, nil, err
		}
	}
	for l, heads := range explicit {
		if l >= f.Layers {
			return nil, nil, specErrorf("prune: the model has %d layers (0 to %d); there is no layer %d", f.Layers, f.Layers-1, l)
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
	group := f.Heads / f.KVHeads
	removedPerLayer := -1
	for l := 0; l < f.Layers; l++ {
		// The original heads that remain in this layer, in stored order.
		gone := map[int]bool{}
		for _, h := range already[l] {
			gone[h] = true
		}
		var present []int
		for h := 0; h < f.Heads; h++ {
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
				if h >= f.Heads || gone[h] {
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
		if uniform {
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
		for _, s := range f.Query {
			if err := f.addCut(g, cuts, l, s, unitIndices(s, keepPos, f.HeadDim, len(present))); err != nil {
				return nil, nil, err
			}
		}
		for _, s := range f.KV {
			if err := f.addCut(g, cuts, l, s, unitIndices(s, keepKV, f.HeadDim, len(present)/group)); err != nil {
				return nil, nil, err
			}
		}
		for _, s := range f.Out {
			if err := f.addCut(g, cuts, l, s, unitIndices(s, keepPos, f.HeadDim, len(present))); err != nil {
				return nil, nil, err
			}
		}
	}
	out, err := apply(g, cuts, rep)
	if err != nil {
		return nil, nil, err
	}
	fields := map[string]any{}
	if uniform {
		heads := f.Heads - removedPerLayer
		fields[f.HeadsField] = heads
		fields[f.KVHeadsField] = heads / group
		fields[f.HeadDimField] = f.HeadDim
	} else if len(newPruned) > 0 {
		fields["pruned_heads"] = newPruned
	}
	rep.Config = fields
	if out.Config != nil {
		if out.Config, err = arch.UpdateConfig(out.Config, fields); err != nil {
			return nil, nil, err
		}
	}
	return out, rep, nil
}

// headImportance returns the L2 norm of each present head's slice of the
// output projection.
func (f *family) headImportance(g *weights.Graph, layer, present int) ([]float64, error) {
	s := f.Out[0]
	name := f.name(layer, s.Name)
	t, ok := g.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("prune: missing tensor %s", name)
	}
	acc := make([]float64, t.Shape[s.Axis])
	if err := sumSquares(t, s.Axis, acc); err != nil {
		return nil, err
	}
	imp := make([]float64, present)
	for h := range imp {
		for j := 0; j < f.HeadDim && h*f.HeadDim+j < len(acc); j++ {
			imp[h] += acc[h*f.HeadDim+j]
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
func FFN(g *weights.Graph, cfg *arch.Config, keep float64) (*weights.Graph, *Report, error) {
	if !(keep > 0 && keep <= 1) {
		return nil, nil, specErrorf("prune: --ffn-keep %g is not in (0, 1]", keep)
	}
	f, err := familyOf(g, cfg)
	if err != nil {
		return nil, nil, err
	}
	if len(f.FFNGroups) > 0 {
		return ffnGroups(g, f, keep)
	}
	n := int(math.Round(keep * float64(f.Intermediate)))
	if n < 1 {
		n = 1
	}
	rep := &Report{Method: fmt.Sprintf("ffn keep %.4g", keep)}
	cuts := map[string]*cut{}
	for l := 0; l < f.Layers; l++ {
		in := make([]float64, f.Intermediate)
		outn := make([]float64, f.Intermediate)
		for _, s := range f.Up {
			if strings.HasSuffix(s.Name, ".bias") {
				continue
			}
			if err := f.neuronSquares(g, l, s, in); err != nil {
				return nil, nil, err
			}
		}
		for _, s := range f.Down {
			if err := f.neuronSquares(g, l, s, outn); err != nil {
				return nil, nil, err
			}
		}
		order := make([]int, f.Intermediate)
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool {
			return math.Sqrt(in[order[a]])*math.Sqrt(outn[order[a]]) > math.Sqrt(in[order[b]])*math.Sqrt(outn[order[b]])
		})
		kept := slices.Clone(order[:n])
		sort.Ints(kept)
		for _, s := range append(slices.Clone(f.Up), f.Down...) {
			if err := f.addCut(g, cuts, l, s, unitIndices(s, kept, 1, f.Intermediate)); err != nil {
				return nil, nil, err
			}
		}
	}
	out, err := apply(g, cuts, rep)
	if err != nil {
		return nil, nil, err
	}
	rep.Config = map[string]any{f.IntermediateField: n}
	if out.Config != nil {
		if out.Config, err = arch.UpdateConfig(out.Config, rep.Config); err != nil {
			return nil, nil, err
		}
	}
	return out, rep, nil
}

// neuronSquares adds to acc[i] the sum of squares of FFN neuron i's weights
// in slice s of layer l: the whole axis, or part s.Part of a fused tensor
// (Phi-3's gate_up_proj holds gate's neurons, then up's).
func (f *family) neuronSquares(g *weights.Graph, l int, s arch.Slice, acc []float64) error {
	t, ok := g.Tensor(f.name(l, s.Name))
	if !ok {
		return fmt.Errorf("prune: missing tensor %s", f.name(l, s.Name))
	}
	n := int64(f.Intermediate)
	if s.Axis >= len(t.Shape) || t.Shape[s.Axis] < (int64(s.Part)+1)*n || t.Shape[s.Axis]%n != 0 {
		return fmt.Errorf("prune: %s: shape %v does not have %d neurons along axis %d", t.Name, t.Shape, n, s.Axis)
	}
	all := make([]float64, t.Shape[s.Axis])
	if err := sumSquares(t, s.Axis, all); err != nil {
		return err
	}
	for i, v := range all[int64(s.Part)*n : (int64(s.Part)+1)*n] {
		acc[i] += v
	}
	return nil
}
