// Command gguf_speed_go is our side of bench/gguf_speed.sh: it loads a
// model (a GGUF file, or any MODEL hubmirror forward takes) with the native
// forward pass on -threads goroutines and times, -runs times, a forward
// pass over -n token ids (the prefill; logits of every position) and over
// one token id (the forward pass keeps no KV cache: one token is a 1-token
// forward). A first untimed pass of each touches the mapped weights, and a
// garbage collection precedes each timed pass. The ids are i·7919+1 mod
// the vocabulary, as bench/gguf_speed.mjs takes them; each run is the
// prefill, the token and the token again (token2: one token after one
// token rather than after the prefill). Prints one JSON line per run:
// prefill_ms, prefill_cpu_ms, prefill_head_ms, prefill_head_cpu_ms,
// token_ms, ..., token2_ms, ...: the wall time, the process's CPU time
// (user and system; on a loaded machine the figure that shows the work
// done) and the same for the LM head alone (from the run's last
// Options.BeforeLayer call to its end), which llama.cpp skips for the
// positions of a prompt whose logits are not asked for. -q8 sets
// forward.Options.GGMLQ8Activations (8-bit activations for one-token
// products, as llama.cpp). -sweep MB writes MB of memory between the
// prefill and the token, evicting the caches (an experiment: how much of
// the token's time depends on what the prefill left in the caches).
//
//	go run ./bench/gguf_speed_go -n 128 -runs 3 -threads 1 MODEL
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
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
	profile := flag.String("cpuprofile", "", "write a CPU profile of the timed runs to this file")
	sweep := flag.Int("sweep", 0, "MB of memory to write between the prefill and the token (evicts the caches)")
	q8 := flag.Bool("q8", false, "forward.Options.GGMLQ8Activations: one-token products with 8-bit activations")
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
	// cpu is the process's user and system time (GOMAXPROCS=1 and one
	// forward thread keep it to the run's thread).
	cpu := processCPU
	// The last BeforeLayer call of a run is before the head: the time
	// from it to the end is the head's (the LM head's product, over every
	// position).
	var headWall time.Time
	var headCPU time.Duration
	m, err := forward.Load(g, cfg, forward.Options{Threads: *threads, GGMLQ8Activations: *q8, BeforeLayer: func() { headWall, headCPU = time.Now(), cpu() }})
	if err != nil {
		return err
	}
	vocab := m.Info().VocabSize
	ids := make([]int, *n+1)
	for i := range ids {
		ids[i] = (i*7919 + 1) % vocab
	}
	prompt, token := ids[:*n], ids[*n:]
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	// timed returns the wall and CPU times of a run and of its head; the
	// run's profile samples carry the label run=name.
	timed := func(name string, in []int) ([4]float64, error) {
		runtime.GC() // the previous run's garbage is not this run's work
		var err error
		c0, t0 := cpu(), time.Now()
		pprof.Do(ctx, pprof.Labels("run", name), func(ctx context.Context) { _, err = m.Run(ctx, in) })
		c1, t1 := cpu(), time.Now()
		return [4]float64{ms(t1.Sub(t0)), ms(c1 - c0), ms(t1.Sub(headWall)), ms(c1 - headCPU)}, err
	}
	for _, in := range [][]int{prompt, token} {
		if _, err := timed("warm", in); err != nil {
			return err
		}
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for r := 0; r < *runs; r++ {
		p, err := timed("prefill", prompt)
		if err != nil {
			return err
		}
		if *sweep > 0 {
			buf := make([]byte, *sweep<<20)
			for k := 0; k < 4; k++ {
				for i := range buf {
					buf[i] += byte(i)
				}
			}
			runtime.KeepAlive(buf)
		}
		t, err := timed("token", token)
		if err != nil {
			return err
		}
		t2, err := timed("token2", token)
		if err != nil {
			return err
		}
		line, _ := json.Marshal(map[string]float64{
			"prefill_ms": p[0], "prefill_cpu_ms": p[1], "prefill_head_ms": p[2], "prefill_head_cpu_ms": p[3],
			"token_ms": t[0], "token_cpu_ms": t[1], "token_head_ms": t[2], "token_head_cpu_ms": t[3],
			"token2_ms": t2[0], "token2_cpu_ms": t2[1], "token2_head_ms": t2[2], "token2_head_cpu_ms": t2[3]})
		fmt.Println(string(line))
	}
	return nil
}
