package quantize

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/weights"
)

// ggufReadCase is a fixture, the config changes that make it a model
// llama.cpp's graph computes (GGUF refuses the others), and the layers it
// keeps (MoE fixtures with dense layers).
type ggufReadCase struct {
	fixture string
	config  map[string]any
	layers  []int
}

var ggufReadCases = []ggufReadCase{
	{fixture: "llama-tiny-st"},
	{fixture: "mistral-bin", config: map[string]any{"sliding_window": nil}},
	{fixture: "qwen2-bias-st"},
	{fixture: "qwen3-st", config: map[string]any{"use_sliding_window": false}},
	{fixture: "gemma-st"},
	{fixture: "gemma2-st", config: map[string]any{"query_pre_attn_scalar": 16}},
	{fixture: "gemma3-st", config: map[string]any{"sliding_window_pattern": 6, "rope_local_base_freq": 10000.0}},
	{fixture: "phi3-st", config: map[string]any{"sliding_window": nil}},
	{fixture: "mixtral-st", config: map[string]any{"sliding_window": nil}},
	{fixture: "qwen2moe-st", layers: []int{0, 2}, config: map[string]any{"num_hidden_layers": 2, "mlp_only_layers": []int{}}},
	{fixture: "qwen3moe-st", layers: []int{1}, config: map[string]any{"num_hidden_layers": 1, "mlp_only_layers": []int{}}},
}

var readLayer = regexp.MustCompile(`^(model\.)?layers\.(\d+)\.(.+)$`)

// ggufSource opens a fixture with c's config changes and layers.
func ggufSource(t *testing.T, c ggufReadCase) (*weights.Graph, *arch.Config) {
	t.Helper()
	g, err := formats.Open(filepath.Join("..", "testdata", "models", c.fixture))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	var m map[string]any
	if err := json.Unmarshal(g.Config, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range c.config {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if c.layers != nil {
		out := weights.NewGraph()
		for _, x := range g.Tensors() {
			if lm := readLayer.FindStringSubmatch(x.Name); lm != nil {
				old, _ := strconv.Atoi(lm[2])
				n := -1
				for i, l := range c.layers {
					if l == old {
						n = i
					}
				}
				if n < 0 {
					continue
				}
				y := *x
				y.Name = fmt.Sprintf("%slayers.%d.%s", lm[1], n, lm[3])
				x = &y
			}
			if err := out.Add(x); err != nil {
				t.Fatal(err)
			}
		}
		g = out
	}
	g.Config = raw
	cfg, err := arch.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	return g, cfg
}

// writeGGUFDir writes g as a GGUF file of type typ with config.json beside
// it, and returns the directory.
func writeGGUFDir(t *testing.T, g *weights.Graph, cfg *arch.Config, typ string) string {
	t.Helper()
	m, err := GGUF(g, cfg, GGUFOptions{Type: typ, NoVocab: true, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := gguf.WriteFile(filepath.Join(dir, "model.gguf"), m.Metadata, m.Tensors); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), g.Config, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadModel(t *testing.T, g *weights.Graph) *forward.Model {
	t.Helper()
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	m, err := forward.Load(g, cfg, forward.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReadGGUFRoundTrip: an F32 GGUF of each family read back as a model
// (formats.Open on its directory) has the source's tensor names and
// shapes, and the forward pass on it gives the source's logits within
// 1e-5.
func TestReadGGUFRoundTrip(t *testing.T) {
	for _, c := range ggufReadCases {
		t.Run(c.fixture, func(t *testing.T) {
			g, cfg := ggufSource(t, c)
			dir := writeGGUFDir(t, g, cfg, "f32")
			cg, err := formats.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer cg.Close()
			for _, x := range cg.Tensors() {
				src, ok := g.Tensor(x.Name)
				if !ok {
					t.Fatalf("GGUF gives %s, not in the source", x.Name)
				}
				if fmt.Sprint(src.Shape) != fmt.Sprint(x.Shape) {
					t.Errorf("%s: shape %v, source %v", x.Name, x.Shape, src.Shape)
				}
			}
			ids := []int{1, 5, 2, 7, 3, 9, 4, 6}
			ref, err := loadModel(t, g).Run(context.Background(), ids)
			if err != nil {
				t.Fatal(err)
			}
			got, err := loadModel(t, cg).Run(context.Background(), ids)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := ref.Get("logits")
			b, _ := got.Get("logits")
			if a == nil || b == nil || len(a.Data) != len(b.Data) {
				t.Fatalf("logits missing or of different sizes")
			}
			worst := 0.0
			for i := range a.Data {
				worst = math.Max(worst, math.Abs(float64(a.Data[i]-b.Data[i])))
			}
			if worst > 1e-5 {
				t.Errorf("logits differ by up to %g", worst)
			}
		})
	}
}

// ggufValidate validates the GGUF in dir against the source g with kind's
// thresholds.
func ggufValidate(t *testing.T, g *weights.Graph, dir string, kind forward.Kind) *forward.Report {
	t.Helper()
	cg, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cg.Close() })
	rep, err := forward.Validate(context.Background(), loadModel(t, g), loadModel(t, cg), forward.ValidateOptions{Kind: kind, Seed: 1, NoText: true})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestReadGGUFValidates: the Q8_0 and Q6_K files of every family pass
// validation with the int8 thresholds, Q5_K_M and Q4_K_M with kquant's; a
// file written without the q/k permutation, or without Gemma's +1, read
// as if it had them, fails with int8's and kquant's.
func TestReadGGUFValidates(t *testing.T) {
	for _, c := range ggufReadCases {
		g, cfg := ggufSource(t, c)
		for _, typ := range []string{"q8_0", "q6_k", "q5_k_m", "q4_k_m"} {
			kind := forward.Kind(GGUFValidationKind(typ))
			if rep := ggufValidate(t, g, writeGGUFDir(t, g, cfg, typ), kind); !rep.Passed {
				t.Errorf("%s %s (kind %s): %v", c.fixture, typ, kind, rep.Err())
			}
		}
	}
	for _, c := range []struct {
		fixture, family string
		broken          func(f *ggufFamily)
	}{
		{"llama-tiny-st", "llama", func(f *ggufFamily) { f.permuteQK = false }},
		{"gemma-st", "gemma", func(f *ggufFamily) { f.normShift = 0 }},
	} {
		g, cfg := ggufSource(t, ggufReadCase{fixture: c.fixture})
		good := ggufFamilies[c.family]
		bad := *good
		c.broken(&bad)
		ggufFamilies[c.family] = &bad
		dirs := map[string]string{}
		for _, typ := range []string{"q8_0", "q4_k_m"} {
			dirs[typ] = writeGGUFDir(t, g, cfg, typ)
		}
		ggufFamilies[c.family] = good
		for typ, dir := range dirs {
			rep := ggufValidate(t, g, dir, forward.Kind(GGUFValidationKind(typ)))
			if rep.Passed || !errors.Is(rep.Err(), forward.ErrValidationFailed) {
				t.Errorf("%s %s written without its family's change: validation passed (%v)", c.fixture, typ, rep.Err())
			}
		}
	}
}

// TestReadGGUFWithoutConfig: an F32 GGUF file alone (no config.json
// beside it, as llama.cpp's converter writes them) is read with a config
// synthesized from its metadata, and the forward pass on it gives the
// source's logits within 1e-5.
func TestReadGGUFWithoutConfig(t *testing.T) {
	for _, c := range ggufReadCases {
		t.Run(c.fixture, func(t *testing.T) {
			g, cfg := ggufSource(t, c)
			dir := writeGGUFDir(t, g, cfg, "f32")
			if err := os.Remove(filepath.Join(dir, "config.json")); err != nil {
				t.Fatal(err)
			}
			cg, err := formats.Open(filepath.Join(dir, "model.gguf"))
			if err != nil {
				t.Fatal(err)
			}
			defer cg.Close()
			ids := []int{1, 5, 2, 7, 3, 9, 4, 6}
			ref, err := loadModel(t, g).Run(context.Background(), ids)
			if err != nil {
				t.Fatal(err)
			}
			got, err := loadModel(t, cg).Run(context.Background(), ids)
			if err != nil {
				t.Fatalf("%v\nconfig %s", err, cg.Config)
			}
			a, _ := ref.Get("logits")
			b, _ := got.Get("logits")
			if a == nil || b == nil || len(a.Data) != len(b.Data) {
				t.Fatalf("logits missing or of different sizes")
			}
			worst := 0.0
			for i := range a.Data {
				worst = math.Max(worst, math.Abs(float64(a.Data[i]-b.Data[i])))
			}
			if worst > 1e-5 {
				t.Errorf("logits differ by up to %g; config %s", worst, cg.Config)
			}
		})
	}
}

// TestReadGGUFRefuses: a truncated file, a config of another architecture
// and a file of an architecture GGUF does not write give errors that say
// what and where.
func TestReadGGUFRefuses(t *testing.T) {
	g, cfg := ggufSource(t, ggufReadCases[0])
	dir := writeGGUFDir(t, g, cfg, "q8_0")
	file := filepath.Join(dir, "model.gguf")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.gguf")
	if err := os.WriteFile(cut, raw[:len(raw)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := formats.Open(cut); !errors.Is(err, gguf.ErrRead) || !strings.Contains(err.Error(), "cut.gguf") {
		t.Errorf("truncated file: %v", err)
	}
	gemma, err := os.ReadFile(filepath.Join("..", "testdata", "models", "gemma-st", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenGGUF(file, gemma); !errors.Is(err, ErrGGUFRead) || !strings.Contains(err.Error(), "general.architecture llama") {
		t.Errorf("gemma config for a llama file: %v", err)
	}
	other := filepath.Join(t.TempDir(), "gpt2.gguf")
	if err := gguf.WriteFile(other, []gguf.KV{{Key: "general.architecture", Value: "gpt2"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := formats.Open(other); !errors.Is(err, ErrGGUFRead) || !strings.Contains(err.Error(), `"gpt2"`) {
		t.Errorf("gpt2 GGUF: %v", err)
	}
}
