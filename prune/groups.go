package prune

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/weights"
)

// ffnGroups is FFN for a family whose layers hold several kinds of MLP
// (arch.Blocks.FFNGroups: the MoE families' routed experts, shared experts
// and dense MLPs). In each group every MLP (each expert of each layer on
// its own) keeps round(keep × the group's width) neurons, its most
// important by the product of the L2 norms of their input and output
// weights, and the group's config field gets that width. Routers are left
// as they are: which experts a token goes to does not change.
func ffnGroups(g *weights.Graph, f *family, keep float64) (*weights.Graph, *Report, error) {
	rep := &Report{Method: fmt.Sprintf("ffn keep %.4g", keep), Config: map[string]any{}}
	cuts := map[string]*cut{}
	for _, gr := range f.FFNGroups {
		if len(gr.Layers) == 0 || gr.Width <= 0 {
			continue
		}
		n := max(1, int(math.Round(keep*float64(gr.Width))))
		for _, l := range gr.Layers {
			for _, name := range gr.Fused {
				if _, ok := g.Tensor(f.name(l, name)); ok {
					return nil, nil, specErrorf("prune: --ffn-keep: the experts of layer %d are fused (%s, transformers 5's layout); "+
						"FFN pruning keeps each expert's own neurons and takes the per-expert layout (experts.<e>.<projection>.weight) only",
						l, f.name(l, name))
				}
			}
			for u := range max(gr.Units, 1) {
				up, down := unitSlices(gr.Up, gr.Units, u), unitSlices(gr.Down, gr.Units, u)
				kept, err := f.importantNeurons(g, l, up, down, gr.Width, n)
				if err != nil {
					return nil, nil, err
				}
				for _, s := range append(up, down...) {
					if err := f.addCut(g, cuts, l, s, unitIndices(s, kept, 1, gr.Width)); err != nil {
						return nil, nil, err
					}
				}
			}
		}
		rep.Config[gr.Field] = n
	}
	out, err := apply(g, cuts, rep)
	if err != nil {
		return nil, nil, err
	}
	if out.Config != nil {
		if out.Config, err = arch.UpdateConfig(out.Config, rep.Config); err != nil {
			return nil, nil, err
		}
	}
	return out, rep, nil
}

// unitSlices returns the slices of unit u of a group of units MLPs (their
// names hold the unit's number when there are several).
func unitSlices(ss []arch.Slice, units, u int) []arch.Slice {
	out := slices.Clone(ss)
	if units > 1 {
		for i := range out {
			out[i].Name = fmt.Sprintf(out[i].Name, u)
		}
	}
	return out
}

// importantNeurons returns, in order, the n of the width neurons of one MLP
// of layer l (its up and down slices) with the largest product of the L2
// norms of their input and output weights.
func (f *family) importantNeurons(g *weights.Graph, l int, up, down []arch.Slice, width, n int) ([]int, error) {
	in := make([]float64, width)
	outn := make([]float64, width)
	for _, side := range []struct {
		slices []arch.Slice
		acc    []float64
	}{{up, in}, {down, outn}} {
		for _, s := range side.slices {
			if strings.HasSuffix(s.Name, ".bias") {
				continue
			}
			t, ok := g.Tensor(f.name(l, s.Name))
			if !ok {
				return nil, fmt.Errorf("prune: missing tensor %s", f.name(l, s.Name))
			}
			if s.Axis >= len(t.Shape) || t.Shape[s.Axis] != int64(width) {
				return nil, fmt.Errorf("prune: %s: shape %v does not have %d neurons along axis %d", t.Name, t.Shape, width, s.Axis)
			}
			if err := sumSquares(t, s.Axis, side.acc); err != nil {
				return nil, err
			}
		}
	}
	order := make([]int, width)
	for i := range order {
		order[i] = i
	}
	score := func(i int) float64 { return math.Sqrt(in[i]) * math.Sqrt(outn[i]) }
	sort.SliceStable(order, func(a, b int) bool { return score(order[a]) > score(order[b]) })
	kept := slices.Clone(order[:n])
	sort.Ints(kept)
	return kept, nil
}
