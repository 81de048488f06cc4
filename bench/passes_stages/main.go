// Command passes_stages runs the convert or int8 quantize artifact build the
// way `hubmirror convert` / `hubmirror quantize --scheme int8` do, and prints
// the peak resident set of each stage (read, pass, write, validate,
// publish): the kernel's high-water mark (VmHWM) is read and reset (by
// writing 5 to /proc/self/clear_refs) whenever a stage starts, and a sampler
// every 5 ms splits the resident set into anonymous (heap) and file-backed
// (mapped weights) pages. Linux only. bench/passes_memory.sh runs it.
//
// Usage: passes_stages [-threads N] [-sequences N] [-release-interval D] [-cpuprofile F] convert|int8|gguf-TYPE SRC DST
//
// gguf-TYPE (gguf-q4_k_m, gguf-q8_0, ...) is quantize --format gguf
// --scheme TYPE --no-vocab.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

// status reads fields of /proc/self/status in kB.
func status(keys ...string) map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		for _, k := range keys {
			if bytes.HasPrefix(line, []byte(k+":")) {
				f := bytes.Fields(line[len(k)+1:])
				if len(f) > 0 {
					out[k], _ = strconv.ParseInt(string(f[0]), 10, 64)
				}
			}
		}
	}
	return out
}

type stageMem struct {
	name            string
	start           time.Time
	hwm, anon, file int64
	dur             time.Duration
}

func main() {
	threads := flag.Int("threads", 0, "forward-pass threads (0: all cores)")
	sequences := flag.Int("sequences", forward.DefaultSequences, "validation sequences")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole build to this file")
	interval := flag.Duration("release-interval", 0, "artifact.Options.ReleaseInterval (0: default, negative: off)")
	flag.Parse()
	if flag.NArg() != 3 {
		fmt.Fprintln(os.Stderr, "usage: passes_stages [-threads N] [-sequences N] [-release-interval D] [-cpuprofile F] convert|int8|gguf-TYPE SRC DST")
		os.Exit(2)
	}
	kind := forward.KindExact
	var pass artifact.Pass
	var write artifact.Writer
	switch flag.Arg(0) {
	case "convert":
		pass = func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
			return convert.DedupeShared(g, cfg)
		}
	case "int8":
		kind = forward.KindInt8
		pass = func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
			return quantize.Quantize(g, cfg, quantize.Options{Scheme: quantize.Int8})
		}
	default:
		typ, ok := strings.CutPrefix(flag.Arg(0), "gguf-")
		if !ok {
			fmt.Fprintln(os.Stderr, "passes_stages: the pass is convert, int8 or gguf-TYPE")
			os.Exit(2)
		}
		// As quantize --format gguf --no-vocab: the pass plans, the
		// writer converts.
		kind = forward.Kind(quantize.GGUFValidationKind(typ))
		gopts := quantize.GGUFOptions{Type: typ, NoVocab: true, Threads: *threads}
		pass = func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
			m, err := quantize.GGUF(g, cfg, gopts)
			if err != nil {
				return nil, nil, err
			}
			return g, m.Report, nil
		}
		write = artifact.GGUFWriter(gopts, nil)
	}
	var (
		mu     sync.Mutex
		stages []*stageMem
		cur    *stageMem
	)
	closeStage := func() {
		if cur == nil {
			return
		}
		cur.hwm = status("VmHWM")["VmHWM"]
		cur.dur = time.Since(cur.start)
	}
	stage := func(name string) {
		mu.Lock()
		defer mu.Unlock()
		closeStage()
		// Reset the high-water mark to the current resident set.
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			fmt.Fprintln(os.Stderr, "passes_stages: cannot reset VmHWM:", err)
		}
		cur = &stageMem{name: name, start: time.Now()}
		stages = append(stages, cur)
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			s := status("RssAnon", "RssFile")
			mu.Lock()
			if cur != nil {
				cur.anon = max(cur.anon, s["RssAnon"])
				cur.file = max(cur.file, s["RssFile"])
			}
			mu.Unlock()
		}
	}()
	th, _ := forward.DefaultThresholds(kind)
	opts := artifact.Options{
		Threads:         *threads,
		Progress:        stage,
		ReleaseInterval: *interval,
		Write:           write,
		Validate:        forward.ValidateOptions{Sequences: *sequences, Kind: kind, Thresholds: &th},
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "passes_stages:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "passes_stages:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	stage("open")
	res, err := artifact.Build(context.Background(), flag.Arg(1), flag.Arg(2), flag.Arg(0), pass, opts)
	mu.Lock()
	closeStage()
	cur = nil
	mu.Unlock()
	close(done)
	if err != nil {
		fmt.Fprintln(os.Stderr, "passes_stages:", err)
	}
	fmt.Printf("%-9s %10s %12s %12s %9s\n", "stage", "peak RSS", "max anon", "max file", "time")
	for _, s := range stages {
		fmt.Printf("%-9s %7.0f MB %9.0f MB %9.0f MB %8.2fs\n", s.name, float64(s.hwm)/1e3*1.024, float64(s.anon)/1e3*1.024, float64(s.file)/1e3*1.024, s.dur.Seconds())
	}
	if res != nil && res.Document != nil {
		fmt.Printf("validation passed: %v\n", res.Document.Passed)
	}
	if err != nil {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
