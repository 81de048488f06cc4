package forward

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRunBatchMatchesRun: each sequence of a batch gets exactly the outputs
// Run gives it alone, and the hook runs once per layer for the whole batch
// (the weights of each layer are read once), not once per sequence.
func TestRunBatchMatchesRun(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"bert-cls-st", "gpt2-lm-bin", "llama-gqa-bin"} {
		dir := filepath.Join(fixtures, name)
		var calls atomic.Int64
		m, err := Load(openGraph(t, dir), nil, Options{Threads: 2, BeforeLayer: func() { calls.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		inputs := ValidationInputs(3, []int{7, 16, 31, 5}, m.Info().VocabSize)
		var want []*Outputs
		for _, ids := range inputs {
			o, err := m.Run(ctx, ids)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, o)
		}
		perRun := calls.Load() / int64(len(inputs))
		if perRun < 2 {
			t.Fatalf("%s: hook called %d times per run", name, perRun)
		}
		calls.Store(0)
		got, err := m.RunBatch(ctx, inputs)
		if err != nil {
			t.Fatal(err)
		}
		if n := calls.Load(); n != perRun {
			t.Errorf("%s: hook called %d times for a batch of %d, want %d (once per layer)", name, n, len(inputs), perRun)
		}
		if len(got) != len(inputs) {
			t.Fatalf("%s: %d outputs for %d inputs", name, len(got), len(inputs))
		}
		for j := range inputs {
			if !slices.Equal(got[j].InputIDs, inputs[j]) || len(got[j].Tensors) != len(want[j].Tensors) {
				t.Fatalf("%s sequence %d: outputs do not line up", name, j)
			}
			for k, w := range want[j].Tensors {
				g := got[j].Tensors[k]
				if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) {
					t.Fatalf("%s sequence %d: %s %v, want %s %v", name, j, g.Name, g.Shape, w.Name, w.Shape)
				}
				for i := range w.Data {
					if math.Float32bits(g.Data[i]) != math.Float32bits(w.Data[i]) {
						t.Errorf("%s sequence %d %s[%d]: %g in a batch, %g alone", name, j, w.Name, i, g.Data[i], w.Data[i])
						break
					}
				}
			}
		}
	}
}

// TestRunBatchErrors: a bad sequence is refused before anything runs, with
// its index; a cancellation in the middle of a batch ends every sequence
// (none waits forever for the others at a layer).
func TestRunBatchErrors(t *testing.T) {
	dir := filepath.Join(fixtures, "llama-tiny-st")
	m := loadModel(t, dir, 2)
	vocab := m.Info().VocabSize
	_, err := m.RunBatch(context.Background(), [][]int{{1, 2}, {1, vocab}})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "sequence 1") {
		t.Errorf("out-of-vocabulary id: %v", err)
	}
	if outs, err := m.RunBatch(context.Background(), nil); err != nil || len(outs) != 0 {
		t.Errorf("empty batch: %v, %d outputs", err, len(outs))
	}

	for _, after := range []int64{1, 2} { // llama-tiny: 2 layers and the head
		ctx, cancel := context.WithCancel(context.Background())
		var calls atomic.Int64
		mc, err := Load(openGraph(t, dir), nil, Options{Threads: 2, BeforeLayer: func() {
			if calls.Add(1) == after {
				cancel()
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = mc.RunBatch(ctx, ValidationInputs(1, []int{4, 9, 17}, vocab))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled after %d layers: %v", after, err)
		}
		cancel()
	}
}
