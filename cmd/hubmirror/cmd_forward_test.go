package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/formats/safetensors"
	"github.com/hubmirror/hubmirror/weights"
)

const forwardFixtures = "../../testdata/models"

// expectedCase reads a case's expected outputs, which the fixtures keep in
// testdata/expected/<case>.safetensors (out of the model directory) and the
// outside reference checkpoints in the directory: the input ids as a --ids
// argument and the graph of expected outputs.
func expectedCase(t *testing.T, dir string) (string, []int, *weights.Graph) {
	t.Helper()
	path := filepath.Join(dir, "expected.safetensors")
	if _, err := os.Stat(path); err != nil {
		path = filepath.Join(filepath.Dir(filepath.Dir(filepath.Clean(dir))), "expected", filepath.Base(dir)+".safetensors")
	}
	g, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	tn, ok := g.Tensor("input_ids")
	if !ok {
		t.Fatalf("%s: no input_ids", dir)
	}
	v, err := tn.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	var s []string
	for _, f := range v {
		ids = append(ids, int(f))
		s = append(s, strconv.Itoa(int(f)))
	}
	return strings.Join(s, ","), ids, g
}

// checkOutFile compares the safetensors file that forward --out wrote with
// the expected outputs of a case; with all, the file must hold exactly the
// expected tensors.
func checkOutFile(t *testing.T, path string, ids []int, want *weights.Graph, all bool) {
	t.Helper()
	got, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	idt, ok := got.Tensor("input_ids")
	if !ok || idt.DType != weights.I64 || !slices.Equal(idt.Shape, []int64{1, int64(len(ids))}) {
		t.Fatalf("input_ids in %s: %v", path, idt)
	}
	v, _ := idt.Float32s()
	for i := range ids {
		if int(v[i]) != ids[i] {
			t.Fatalf("input_ids %v, want %v", v, ids)
		}
	}
	for _, wt := range want.Tensors() {
		if wt.Name == "input_ids" {
			continue
		}
		gt, ok := got.Tensor(wt.Name)
		if !ok {
			t.Errorf("%s: no %s", path, wt.Name)
			continue
		}
		if gt.DType != weights.F32 || !slices.Equal(gt.Shape, wt.Shape) {
			t.Errorf("%s: %v, want F32 %v", wt.Name, gt, wt.Shape)
			continue
		}
		a, _ := gt.Float32s()
		b, _ := wt.Float32s()
		var maxErr float64
		for i := range a {
			maxErr = math.Max(maxErr, math.Abs(float64(a[i]-b[i])))
		}
		if !(maxErr <= 1e-4) {
			t.Errorf("%s: max abs error %g", wt.Name, maxErr)
		}
	}
	if all && len(got.Tensors()) != len(want.Tensors()) {
		t.Errorf("%s has %v, expected file %v", path, got.Names(), want.Names())
	}
}

func TestForwardOutFile(t *testing.T) {
	for _, name := range []string{"llama-tiny-st", "bert-cls-st", "gpt2-lm-bin", "st-bert-mean"} {
		dir := filepath.Join(forwardFixtures, name)
		idArg, ids, want := expectedCase(t, dir)
		out := filepath.Join(t.TempDir(), "out.safetensors")
		stdout, stderr, code := runCLI(t, "forward", dir, "--ids", idArg, "--out", out, "--threads", "2")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		if !strings.Contains(stdout, "wrote "+out) || !strings.Contains(stdout, "last_hidden_state") {
			t.Errorf("%s: stdout %s", name, stdout)
		}
		checkOutFile(t, out, ids, want, true)
	}
}

func TestForwardReference(t *testing.T) {
	if _, err := os.Stat(sharedReference); err != nil {
		t.Skipf("no reference checkpoints at %s", sharedReference)
	}
	for _, name := range []string{"bert-tiny", "gpt2-tiny", "llama-tiny"} {
		dir := filepath.Join(sharedReference, name)
		idArg, ids, want := expectedCase(t, dir)
		out := filepath.Join(t.TempDir(), "out.safetensors")
		if _, stderr, code := runCLI(t, "forward", dir, "--ids", idArg, "--out", out); code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		// The reference files hold a subset of the outputs (no
		// last_hidden_state for the LMs).
		checkOutFile(t, out, ids, want, false)
	}
}

func TestForwardJSON(t *testing.T) {
	dir := filepath.Join(forwardFixtures, "gpt2-lm-bin")
	idArg, ids, want := expectedCase(t, dir)
	// Flags before and after MODEL, and --flag=value, all parse.
	stdout, stderr, code := runCLI(t, "forward", "--json", dir, "--ids="+idArg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep struct {
		Info struct {
			Architecture string   `json:"architecture"`
			Outputs      []string `json:"outputs"`
		} `json:"info"`
		InputIDs []int `json:"input_ids"`
		Outputs  []struct {
			Name  string    `json:"name"`
			Shape []int     `json:"shape"`
			First []float32 `json:"first"`
			Top1  []int     `json:"top1"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout)
	}
	if rep.Info.Architecture != "GPT2LMHeadModel" || !slices.Equal(rep.InputIDs, ids) || len(rep.Outputs) != 2 {
		t.Fatalf("report %+v", rep)
	}
	logits := rep.Outputs[1]
	wt, _ := want.Tensor("logits")
	wv, _ := wt.Float32s()
	vocab := int(wt.Shape[2])
	if logits.Name != "logits" || !slices.Equal(logits.Shape, []int{1, len(ids), vocab}) || len(logits.Top1) != len(ids) {
		t.Fatalf("logits summary %+v", logits)
	}
	for p, got := range logits.Top1 {
		row := wv[p*vocab : (p+1)*vocab]
		if best := slices.Index(row, slices.Max(row)); got != best {
			t.Errorf("top-1 at position %d = %d, expected file says %d", p, got, best)
		}
	}
	for i, v := range logits.First {
		if math.Abs(float64(v-wv[i])) > 1e-4 {
			t.Errorf("first[%d] = %g, want %g", i, v, wv[i])
		}
	}
}

func TestForwardErrors(t *testing.T) {
	dir := filepath.Join(forwardFixtures, "gpt2-model-st") // vocab 200, 20 positions
	out := filepath.Join(t.TempDir(), "never.safetensors")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"forward", dir}, 2, "--ids"},
		{[]string{"forward", "--ids", "1,2"}, 2, "one MODEL"},
		{[]string{"forward", dir, "--ids", "1,x", "--out", out}, 2, `"x"`},
		{[]string{"forward", dir, "--ids", "1,-2"}, 2, `"-2"`},
		{[]string{"forward", dir, "--ids", ","}, 2, "empty"},
		{[]string{"forward", dir, "--ids", "1,200", "--out", out}, 2, "outside the vocabulary"},
		{[]string{"forward", dir, "--ids", strings.Repeat("1,", 20) + "1"}, 2, "at most 20"},
		{[]string{"forward", dir, "--ids", "1", "--bogus"}, 2, "bogus"},
		{[]string{"forward", dir, "--ids", "1", "--threads", "-1"}, 2, "threads"},
		{[]string{"forward", filepath.Join(dir, "missing"), "--ids", "1"}, 1, "missing"},
		{[]string{"forward", dir, "--ids", "1", "--out", filepath.Join(dir, "no", "such", "dir", "o.safetensors")}, 1, "o.safetensors"},
	} {
		_, stderr, code := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, stderr, c.code, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s", out)
	}

	// An architecture outside the three families is named.
	t5 := t.TempDir()
	os.WriteFile(filepath.Join(t5, "config.json"), []byte(`{"architectures":["T5ForConditionalGeneration"],"model_type":"t5"}`), 0o644)
	data, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	os.WriteFile(filepath.Join(t5, "model.safetensors"), data, 0o644)
	if _, stderr, code := runCLI(t, "forward", t5, "--ids", "1"); code != 1 || !strings.Contains(stderr, "T5ForConditionalGeneration") {
		t.Errorf("t5: exit %d, %s", code, stderr)
	}
}

// TestForwardSentenceEmbedding: forward on a sentence-transformers model
// reports sentence_embedding; a malformed pooling config fails with exit 1
// and a message naming the file.
func TestForwardSentenceEmbedding(t *testing.T) {
	src := filepath.Join(forwardFixtures, "st-bert-mean")
	idArg, _, _ := expectedCase(t, src)
	stdout, stderr, code := runCLI(t, "forward", src, "--ids", idArg)
	if code != 0 || !strings.Contains(stdout, "sentence_embedding  [1 32]") {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
	// Weighted mean and two Dense modules: the embedding has the last
	// Dense module's size.
	dense := filepath.Join(forwardFixtures, "st-bert-wmean-dense")
	idArg2, _, _ := expectedCase(t, dense)
	if stdout, stderr, code := runCLI(t, "forward", dense, "--ids", idArg2); code != 0 || !strings.Contains(stdout, "sentence_embedding  [1 16]") {
		t.Fatalf("Dense: exit %d: %s%s", code, stdout, stderr)
	}
	dir := t.TempDir()
	for _, name := range []string{"config.json", "model.safetensors", "modules.json", "1_Pooling/config.json"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "1_Pooling/config.json" {
			data = []byte(`{"pooling_mode_mean_tokens": "yes"}`)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "never.safetensors")
	_, stderr, code = runCLI(t, "forward", dir, "--ids", idArg, "--out", out)
	if code != 1 || !strings.Contains(stderr, filepath.Join("1_Pooling", "config.json")) || !strings.Contains(stderr, "pooling_mode_mean_tokens") {
		t.Errorf("malformed pooling config: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s written after the error", out)
	}
}
