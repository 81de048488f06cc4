package quantize

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
)

// forward.Options.GGMLQ8Activations changes only the one-token runs of a
// Q4_K_M file (its Q4_K and Q6_K matrices take 8-bit activations): their
// logits differ from the exact ones but keep a cosine similarity of at
// least 0.999 to them and the same top token; runs of more tokens are
// bit-identical, and without the option (the default) the one-token run is
// the exact one.
func TestGGUFQ8Activations(t *testing.T) {
	g, _ := ggufSource(t, ggufReadCases[0])
	g = widenGraph(t, g, 256, 512)
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := formats.Open(writeGGUFDir(t, g, cfg, "q4_k_m"))
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	run := func(q8 bool, ids []int) []float32 {
		t.Helper()
		m, err := forward.Load(cg, nil, forward.Options{Threads: 2, GGMLQ8Activations: q8})
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Run(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := out.Get("logits")
		return l.Data
	}
	for _, ids := range [][]int{{5}, {1}, {1, 5, 2}} {
		exact, q8, def := run(false, ids), run(true, ids), run(false, ids)
		if !slices.Equal(exact, def) {
			t.Fatalf("%v: the default run is not repeatable", ids)
		}
		if len(ids) > 1 {
			if !slices.Equal(exact, q8) {
				t.Errorf("%v: the option changed a run of %d tokens", ids, len(ids))
			}
			continue
		}
		if slices.Equal(exact, q8) {
			t.Errorf("%v: the option changed nothing", ids)
		}
		var dot, na, nb float64
		for i := range exact {
			dot += float64(exact[i]) * float64(q8[i])
			na += float64(exact[i]) * float64(exact[i])
			nb += float64(q8[i]) * float64(q8[i])
		}
		if c := dot / math.Sqrt(na*nb); !(c >= 0.999) {
			t.Errorf("%v: cosine similarity %g to the exact logits", ids, c)
		}
		argmax := func(x []float32) int { return slices.Index(x, slices.Max(x)) }
		if argmax(exact) != argmax(q8) {
			t.Errorf("%v: top token %d, exact %d", ids, argmax(q8), argmax(exact))
		}
	}
}
