package quantize

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/internal/kernels"
	"github.com/hubmirror/hubmirror/weights"
)

// BenchmarkW8A8Prefill times the prefill of 128 tokens of the Llama model
// written by `quantize --scheme w8a8 --include lm_head.weight` in the
// directory $HUBMIRROR_W8A8_BENCH_MODEL (bench/w8a8_speed.sh makes it): the
// layers over every token (the model run as LlamaModel), then the head on
// the last position only — the work llama.cpp does for a prompt. Threads
// are GOMAXPROCS (-test.cpu 1,2). The ids are bench/w8a8_speed.mjs's. The
// same model quantized with --scheme int8 (weight-only) runs too, for
// comparison.
//
//	HUBMIRROR_W8A8_BENCH_MODEL=DIR go test ./quantize -run '^$' -bench W8A8Prefill -cpu 1,2
func BenchmarkW8A8Prefill(b *testing.B) {
	dir := os.Getenv("HUBMIRROR_W8A8_BENCH_MODEL")
	if dir == "" {
		b.Skip("HUBMIRROR_W8A8_BENCH_MODEL is not set (bench/w8a8_speed.sh sets it)")
	}
	g, err := formats.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	var c map[string]any
	if err := json.Unmarshal(g.Config, &c); err != nil {
		b.Fatal(err)
	}
	c["architectures"] = []string{"LlamaModel"}
	raw, _ := json.Marshal(c)
	cfg, err := arch.ParseConfig(raw)
	if err != nil {
		b.Fatal(err)
	}
	threads := runtime.GOMAXPROCS(0)
	model, err := forward.Load(g, cfg, forward.Options{Threads: threads})
	if err != nil {
		b.Fatal(err)
	}
	q := model.Info().Quantization
	if q != "w8a8" && q != "int8" {
		b.Fatalf("the model runs as %q, not w8a8 or int8", q)
	}
	head := int8Head(b, g, q == "w8a8")
	ids := make([]int, 128)
	for i := range ids {
		ids[i] = (i*37)%1000 + 3
	}
	logits := make([]float32, head.Out)
	run := func() {
		out, err := model.Run(context.Background(), ids)
		if err != nil {
			b.Fatal(err)
		}
		h, _ := out.Get(forward.OutputLastHiddenState)
		kernels.Linear(logits, h.Data[(len(ids)-1)*head.In:], 1, head, nil, threads)
	}
	run() // packs the weights
	for b.Loop() {
		run()
	}
}

// int8Head is lm_head of g as an int8 kernel weight, W8A8 when w8a8.
func int8Head(b *testing.B, g *weights.Graph, w8a8 bool) *kernels.Weight {
	q, ok1 := g.Tensor("lm_head.weight")
	s, ok2 := g.Tensor("lm_head.weight_scale")
	if !ok1 || !ok2 || q.DType != weights.I8 {
		b.Fatal("no int8 lm_head (quantize with --include lm_head.weight)")
	}
	data, err := q.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	scales, err := s.Float32s()
	if err != nil {
		b.Fatal(err)
	}
	w := &kernels.Weight{Out: int(q.Shape[0]), In: int(q.Shape[1]), DType: weights.I8, Data: data, Scales: scales}
	if w8a8 {
		w.W8A8 = new(kernels.W8A8)
	}
	if err := w.Validate(); err != nil {
		b.Fatal(err)
	}
	return w
}
