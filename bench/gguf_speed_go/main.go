// Command gguf_speed_go is our side of bench/gguf_speed.sh: it loads a
// model (a GGUF file, or any MODEL hubmirror forward takes) with the native
// forward pass on -threads goroutines and times, -runs times, a forward
// pass over -n token ids (the prefill; logits of every position) and over
// one token id (the forward pass keeps no KV cache: one token is a 1-token
// forward). A first untimed pass of each touches the mapped weights. The
// ids are i·7919+1 mod the vocabulary, as bench/gguf_speed.mjs takes them.
// Prints one JSON line per run: {prefill_ms, token_ms}.
//
//	go run ./bench/gguf_speed_go -n 128 -runs 3 -threads 1 MODEL
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/hubmirror/hubmirror/forward"
	_ "github.com/hubmirror/hubmirror/quantize" // reads GGUF files
	"github.com/hubmirror/hubmirror/source"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gguf_speed_go:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 128, "prefill length")
	runs := flag.Int("runs", 3, "timed runs")
	threads := flag.Int("threads", 1, "goroutines of the forward pass")
	flag.Parse()
	if flag.NArg() != 1 {
		return fmt.Errorf("usage: gguf_speed_go [-n 128] [-runs 3] [-threads 1] MODEL")
	}
	ctx := context.Background()
	g, cfg, err := source.OpenGraph(ctx, flag.Arg(0), source.Options{})
	if err != nil {
		return err
	}
	defer g.Close()
	m, err := forward.Load(g, cfg, forward.Options{Threads: *threads})
	if err != nil {
		return err
	}
	vocab := m.Info().VocabSize
	ids := make([]int, *n+1)
	for i := range ids {
		ids[i] = (i*7919 + 1) % vocab
	}
	prompt, token := ids[:*n], ids[*n:]
	timed := func(in []int) (float64, error) {
		t0 := time.Now()
		_, err := m.Run(ctx, in)
		return float64(time.Since(t0).Microseconds()) / 1000, err
	}
	for _, in := range [][]int{prompt, token} {
		if _, err := timed(in); err != nil {
			return err
		}
	}
	for r := 0; r < *runs; r++ {
		p, err := timed(prompt)
		if err != nil {
			return err
		}
		t, err := timed(token)
		if err != nil {
			return err
		}
		line, _ := json.Marshal(map[string]float64{"prefill_ms": p, "token_ms": t})
		fmt.Println(string(line))
	}
	return nil
}
