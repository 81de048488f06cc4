package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

const models = "../testdata/models"

func readDoc(t *testing.T, dir string) *Document {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	var d Document
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func int8Pass(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
	return quantize.Quantize(g, cfg, quantize.Options{Scheme: quantize.Int8})
}

func TestBuildInt8(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "out", "llama-int8")
	res, err := Build(context.Background(), filepath.Join(models, "llama-tiny-st"), dst, "quantize int8", int8Pass, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Published || !res.Document.Passed || res.Document.Validation.Kind != forward.KindInt8 {
		t.Fatalf("result %+v", res.Document)
	}
	doc := readDoc(t, dst)
	if !doc.Passed || doc.Pass != "quantize int8" || len(doc.Validation.Outputs) == 0 {
		t.Fatalf("validation.json %+v", doc)
	}
	for _, f := range []string{"model.safetensors", "config.json"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Error(err)
		}
	}
	g, err := formats.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	q, ok := g.Tensor("model.layers.0.self_attn.q_proj.weight")
	if !ok || q.DType != weights.I8 {
		t.Fatalf("q_proj: %v", q)
	}
	if _, ok := g.Tensor("model.layers.0.self_attn.q_proj.weight_scale"); !ok {
		t.Error("no weight_scale")
	}
	if g.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", g.Metadata)
	}
	// Rebuilding replaces the earlier artifact.
	if _, err := Build(context.Background(), filepath.Join(models, "llama-tiny-st"), dst, "quantize int8", int8Pass, Options{}); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*"))
	if len(left) != 0 {
		t.Errorf("staging left behind: %v", left)
	}
}

func TestBuildConvertPickleExact(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "gpt2-st")
	pass := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		return convert.DedupeShared(g, cfg)
	}
	res, err := Build(context.Background(), filepath.Join(models, "gpt2-lm-bin"), dst, "convert", pass, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Document.Validation
	if v.Kind != forward.KindExact {
		t.Fatalf("kind %s", v.Kind)
	}
	for _, o := range v.Outputs {
		if o.MaxAbsError != 0 {
			t.Errorf("%s: max abs error %g, want bit-exact", o.Name, o.MaxAbsError)
		}
	}
	g, err := formats.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, ok := g.Tensor("lm_head.weight"); ok {
		t.Error("tied lm_head.weight written twice")
	}
	if g.Metadata["lm_head.weight"] != "transformer.wte.weight" {
		t.Errorf("metadata %v", g.Metadata)
	}
}

// A pass that forgets the inverse of a layout transform (here: q and k left
// in Meta's rotary order) is caught, and nothing is written at DST.
func TestBrokenPassIsCaught(t *testing.T) {
	src := filepath.Join(models, "llama-tiny-st")
	broken := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		out := g.Derive()
		for _, x := range g.Tensors() {
			if strings.HasSuffix(x.Name, "q_proj.weight") || strings.HasSuffix(x.Name, "k_proj.weight") {
				heads := cfg.Llama().NumAttentionHeads
				if strings.HasSuffix(x.Name, "k_proj.weight") {
					heads = cfg.Llama().NumKeyValueHeads
				}
				p, err := convert.RotaryToMeta(x, heads)
				if err != nil {
					return nil, nil, err
				}
				x = p
			}
			if err := out.Add(x); err != nil {
				return nil, nil, err
			}
		}
		return out, nil, nil
	}
	dst := filepath.Join(t.TempDir(), "broken")
	res, err := Build(context.Background(), src, dst, "convert", broken, Options{})
	if !errors.Is(err, forward.ErrValidationFailed) {
		t.Fatalf("err = %v", err)
	}
	if res == nil || res.Published || res.Document.Passed {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("something was written at DST: %v", err)
	}
	// --force publishes, with the report marked failed.
	res, err = Build(context.Background(), src, dst, "convert", broken, Options{Force: true})
	if !errors.Is(err, forward.ErrValidationFailed) || !res.Published {
		t.Fatalf("forced: %v %+v", err, res)
	}
	if doc := readDoc(t, dst); doc.Passed || doc.Validation == nil || doc.Validation.Passed {
		t.Fatalf("forced report %+v", doc)
	}
}

func TestDestinationNotArtifact(t *testing.T) {
	dst := t.TempDir()
	os.WriteFile(filepath.Join(dst, "precious.txt"), []byte("keep"), 0o644)
	_, err := Build(context.Background(), filepath.Join(models, "llama-tiny-st"), dst, "quantize int8", int8Pass, Options{})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "precious.txt")); string(b) != "keep" {
		t.Fatal("existing content lost")
	}
}

// TestReleaseEvery checks that the releaser calls its function repeatedly
// and never after stop has returned, and that a non-positive interval
// starts nothing.
func TestReleaseEvery(t *testing.T) {
	var mu sync.Mutex
	calls, stopped := 0, false
	stop := releaseEvery(time.Millisecond, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			t.Error("release called after stop returned")
		}
		calls++
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := calls
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in 5s with a 1ms interval", n)
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	mu.Lock()
	stopped = true
	mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	stop() // a second stop is harmless

	off := releaseEvery(0, func() { t.Error("release called with interval 0") })
	time.Sleep(5 * time.Millisecond)
	off()
}

// TestBuildCustomWriterUnvalidated checks Options.Write and
// Options.Unvalidated: the writer's files replace the safetensors, config
// and side files are still there, the forward pass does not run, and
// validation.json says why.
func TestBuildCustomWriterUnvalidated(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "out")
	identity := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) { return g, nil, nil }
	var gotSrcDir string
	released := 0
	opts := Options{
		Unvalidated: "no reader for .xyz",
		Write: func(dir, srcDir string, g *weights.Graph, cfg *arch.Config, release func()) ([]string, error) {
			gotSrcDir = srcDir
			if cfg == nil || cfg.Llama() == nil {
				t.Error("writer got no parsed config")
			}
			release()
			released++
			return []string{"model.xyz"}, os.WriteFile(filepath.Join(dir, "model.xyz"), []byte("x"), 0o644)
		},
	}
	var stages []string
	opts.Progress = func(s string) { stages = append(stages, s) }
	src := filepath.Join(models, "llama-tiny-st")
	res, err := Build(context.Background(), src, dst, "to xyz", identity, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Published || gotSrcDir != src || released != 1 {
		t.Fatalf("published %v, srcDir %q, released %d", res.Published, gotSrcDir, released)
	}
	doc := readDoc(t, dst)
	if doc.Validation != nil || doc.Unvalidated != "no reader for .xyz" || !doc.Passed {
		t.Errorf("validation.json %+v", doc)
	}
	if slices.Contains(stages, "validate") {
		t.Errorf("stages %v: the forward pass ran", stages)
	}
	for _, f := range []string{"model.xyz", "config.json"} {
		if !slices.Contains(doc.Files, f) {
			t.Errorf("files %v lack %s", doc.Files, f)
		}
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "model.safetensors")); err == nil {
		t.Error("safetensors written as well")
	}
	if st, err := os.Stat(dst); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("published directory mode %v (%v), want 0755", st.Mode(), err)
	}
}
