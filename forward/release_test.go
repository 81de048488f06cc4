package forward

import (
	"context"
	"math"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// A Linear product whose weight is above releaseSliceBytes is computed in
// slices of rows with BeforeLayer called between them, in Run and in
// RunBatch, and the outputs are those of the whole product bit for bit
// (the fixtures: f32, an int8-quantized model, a Phi-3 with fused
// matrices, an MoE).
func TestLinearSlicesRelease(t *testing.T) {
	defer func(b int) { releaseSliceBytes = b }(releaseSliceBytes)
	ctx := context.Background()
	for _, name := range []string{"llama-tiny-st", "gemma2-st", "phi3-st", "mixtral-st", "int8"} {
		var calls atomic.Int64
		load := func() *Model {
			graph := openGraphOrInt8(t, name)
			m, err := Load(graph, nil, Options{Threads: 2, BeforeLayer: func() { calls.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		m := load()
		inputs := ValidationInputs(5, []int{3, 9, 20}, m.Info().VocabSize)
		run := func(slice int) ([]*Outputs, []*Outputs, int64) {
			releaseSliceBytes = slice
			calls.Store(0)
			var single []*Outputs
			for _, ids := range inputs {
				o, err := m.Run(ctx, ids)
				if err != nil {
					t.Fatal(err)
				}
				single = append(single, o)
			}
			batch, err := m.RunBatch(ctx, inputs)
			if err != nil {
				t.Fatal(err)
			}
			return single, batch, calls.Load()
		}
		wantRun, wantBatch, whole := run(64 << 20)
		gotRun, gotBatch, sliced := run(512)
		if sliced <= whole {
			t.Errorf("%s: BeforeLayer called %d times with slices, %d without", name, sliced, whole)
		}
		for _, c := range []struct {
			label     string
			got, want []*Outputs
		}{{"Run", gotRun, wantRun}, {"RunBatch", gotBatch, wantBatch}} {
			for j := range c.want {
				for k, w := range c.want[j].Tensors {
					g := c.got[j].Tensors[k]
					for i := range w.Data {
						if math.Float32bits(w.Data[i]) != math.Float32bits(g.Data[i]) {
							t.Fatalf("%s %s sequence %d %s[%d] = %v, whole product %v", name, c.label, j, w.Name, i, g.Data[i], w.Data[i])
						}
					}
				}
			}
		}
	}
}

func openGraphOrInt8(t *testing.T, name string) *weights.Graph {
	if name == "int8" {
		return quantizeInt8(t, filepath.Join(fixtures, "llama-tiny-st"), 16)
	}
	return openGraph(t, filepath.Join(fixtures, name))
}
