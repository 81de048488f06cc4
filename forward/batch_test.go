package forward

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// TestRunBatchMatchesRun: each sequence of a batch gets exactly the outputs
// Run gives it alone, and the hook runs once per layer for the whole batch
// (the weights of each layer are read once), not once per sequence.
func TestRunBatchMatchesRun(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"bert-cls-st", "gpt2-lm-bin", "llama-gqa-bin", "roberta-mlm-st", "distilbert-cls-bin", "qwen3-st", "gemma2-st", "gemma3-st", "mpnet-mlm-st", "modernbert-mlm-st"} {
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

// TestLockstepStacksProducts: goroutines that reach the same Linear product
// get it computed once over their stacked rows, each receiving exactly what
// it would have computed alone; products of different weights (networks
// that diverged) are each computed on their own.
func TestLockstepStacksProducts(t *testing.T) {
	const in, out = 37, 53
	weight := func(seed int) *kernels.Weight {
		data := make([]float32, out*in)
		for i := range data {
			data[i] = float32((i*seed)%97-48) / 50
		}
		w := kernels.Weight{Out: out, In: in, DType: weights.F32, Data: unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*len(data))}
		return &w
	}
	w1, w2 := weight(7), weight(11)
	bias := make([]float32, out)
	for i := range bias {
		bias[i] = float32(i) / 10
	}
	rowsOf := []int{5, 9, 6}
	run := func(ws []*kernels.Weight) (got, want [][]float32, stacks int) {
		l := newLockstep(len(rowsOf), nil, 2)
		got = make([][]float32, len(rowsOf))
		want = make([][]float32, len(rowsOf))
		var wg sync.WaitGroup
		for i, m := range rowsOf {
			x := make([]float32, m*in)
			for j := range x {
				x[j] = float32((j*(i+3))%89-44) / 40
			}
			want[i] = make([]float32, m*out)
			kernels.Linear(want[i], x, m, ws[i], bias, 2)
			got[i] = make([]float32, m*out)
			wg.Go(func() {
				defer l.leave()
				l.linear(i, got[i], x, m, ws[i], bias)
			})
		}
		wg.Wait()
		return got, want, l.stacks
	}
	for _, tc := range []struct {
		ws     []*kernels.Weight
		stacks int
	}{{[]*kernels.Weight{w1, w1, w1}, 1}, {[]*kernels.Weight{w1, w2, w1}, 0}} {
		got, want, stacks := run(tc.ws)
		if stacks != tc.stacks {
			t.Errorf("%d stacked products, want %d", stacks, tc.stacks)
		}
		for i := range got {
			if !slices.Equal(got[i], want[i]) {
				t.Errorf("call %d (stacked %v): result differs from its own product", i, tc.stacks > 0)
			}
		}
	}
}
