package forward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/weights"
)

// fixtures is the project's forward fixtures (testdata/gen_models.py);
// referenceDir the outside reference checkpoints, used when present.
const (
	fixtures     = "../testdata/models"
	referenceDir = "../../shared/reference"
)

// openGraph opens a model directory as the CLI does.
func openGraph(t testing.TB, dir string) *weights.Graph {
	t.Helper()
	g, err := formats.Open(dir)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// loadModel loads the model of dir, with its sentence-transformers pooling
// when dir has a modules.json (as the forward command does).
func loadModel(t testing.TB, dir string, threads int) *Model {
	t.Helper()
	g := openGraph(t, dir)
	m, err := Load(g, nil, Options{Threads: threads})
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	if err := m.LoadPooling(g); err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	return m
}

// expectedFile is where a case's expected outputs are: the project's
// fixtures keep them out of the model directories, in
// testdata/expected/<case>.safetensors; the outside reference checkpoints
// have an expected.safetensors in the directory.
func expectedFile(dir string) string {
	if p := filepath.Join(dir, "expected.safetensors"); fileExists(p) {
		return p
	}
	return filepath.Join(filepath.Dir(filepath.Dir(filepath.Clean(dir))), "expected", filepath.Base(dir)+".safetensors")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// expected reads a case's expected outputs (expectedFile): the input ids
// and the outputs by name.
func expected(t testing.TB, dir string) ([]int, map[string]*weights.Tensor) {
	t.Helper()
	g := openGraph(t, expectedFile(dir))
	out := map[string]*weights.Tensor{}
	var ids []int
	for _, tn := range g.Tensors() {
		if tn.Name == "input_ids" {
			if tn.DType != weights.I64 || len(tn.Shape) != 2 || tn.Shape[0] != 1 {
				t.Fatalf("%s: input_ids is %v", dir, tn)
			}
			v, err := tn.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range v {
				ids = append(ids, int(f))
			}
			continue
		}
		out[tn.Name] = tn
	}
	return ids, out
}

// caseDirs lists the subdirectories of root that have expected outputs.
func caseDirs(t testing.TB, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if fileExists(expectedFile(filepath.Join(root, e.Name()))) {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	return dirs
}

// checkCase runs the model of dir on its expected input ids and requires
// every expected output within tol, and no output the case does not have.
func checkCase(t *testing.T, dir string, threads int, tol float64) {
	m := loadModel(t, dir, threads)
	ids, want := expected(t, dir)
	out, err := m.Run(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.InputIDs, ids) {
		t.Errorf("InputIDs = %v, want %v", out.InputIDs, ids)
	}
	var names []string
	for _, o := range out.Tensors {
		names = append(names, o.Name)
	}
	if !slices.Equal(names, m.Info().Outputs) {
		t.Errorf("outputs %v, Info says %v", names, m.Info().Outputs)
	}
	for name, wt := range want {
		got, ok := out.Get(name)
		if !ok {
			t.Errorf("no output %s (have %v)", name, names)
			continue
		}
		if !slices.Equal(toInt64(got.Shape), wt.Shape) {
			t.Errorf("%s: shape %v, want %v", name, got.Shape, wt.Shape)
			continue
		}
		wv, err := wt.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		var maxErr float64
		at := 0
		for i := range wv {
			d := math.Abs(float64(got.Data[i] - wv[i]))
			if !(d <= maxErr) { // NaN counts as an error
				maxErr, at = d, i
			}
		}
		if !(maxErr <= tol) {
			t.Errorf("%s: max abs error %g at %d (got %g, want %g), tolerance %g", name, maxErr, at, got.Data[at], wv[at], tol)
		}
	}
	for _, name := range names {
		if _, ok := want[name]; !ok && !strings.HasPrefix(dir, referenceDir) {
			t.Errorf("output %s has no expected value", name)
		}
	}
}

func toInt64(s []int) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = int64(v)
	}
	return out
}

// TestFixtures runs every fixture of testdata/models, on one and on two
// threads, and requires every output within 1e-4 of what the PyTorch
// implementation of the Hugging Face definitions computed.
func TestFixtures(t *testing.T) {
	dirs := caseDirs(t, fixtures)
	if len(dirs) < 14 {
		t.Fatalf("found %d fixtures in %s; run testdata/gen_models.py", len(dirs), fixtures)
	}
	for _, dir := range dirs {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/threads=%d", filepath.Base(dir), threads), func(t *testing.T) {
				checkCase(t, dir, threads, 1e-4)
			})
		}
	}
}

// TestReference runs the outside reference checkpoints (../shared/reference)
// when they are present.
func TestReference(t *testing.T) {
	if _, err := os.Stat(referenceDir); err != nil {
		t.Skipf("no reference checkpoints at %s", referenceDir)
	}
	dirs := caseDirs(t, referenceDir)
	if len(dirs) == 0 {
		t.Fatalf("no cases in %s", referenceDir)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkCase(t, dir, 2, 1e-4) })
	}
}

// TestThreadsAgree: the number of threads does not change the numbers.
func TestThreadsAgree(t *testing.T) {
	for _, name := range []string{"bert-cls-st", "gpt2-lm-bin", "llama-gqa-bin"} {
		dir := filepath.Join(fixtures, name)
		ids, _ := expected(t, dir)
		a, err := loadModel(t, dir, 1).Run(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		b, err := loadModel(t, dir, 3).Run(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a.Tensors {
			m, err := Compare(&a.Tensors[i], &b.Tensors[i])
			if err != nil {
				t.Fatal(err)
			}
			if m.MaxAbsError > 1e-6 {
				t.Errorf("%s %s: 1 and 3 threads differ by %g", name, a.Tensors[i].Name, m.MaxAbsError)
			}
		}
	}
}

func TestInfo(t *testing.T) {
	for _, c := range []struct {
		dir          string
		arch         string
		dtype        weights.DType
		outputs      []string
		maxPositions int
		unused       []string
	}{
		{"bert-prefix-st", "BertModel", weights.F32, []string{OutputLastHiddenState, OutputPooler}, 24,
			[]string{"cls.predictions.bias", "cls.predictions.transform.dense.weight"}},
		{"bert-cls-st", "BertForSequenceClassification", weights.F32, []string{OutputLastHiddenState, OutputPooler, OutputLogits}, 40, nil},
		{"bert-f16-st", "BertModel", weights.F16, []string{OutputLastHiddenState, OutputPooler}, 40, nil},
		{"gpt2-lm-bin", "GPT2LMHeadModel", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 32, nil},
		{"gpt2-model-st", "GPT2Model", weights.F32, []string{OutputLastHiddenState}, 20, nil},
		{"gpt2-bf16-st", "GPT2LMHeadModel", weights.BF16, []string{OutputLastHiddenState, OutputLogits}, 32, nil},
		{"qwen2-bias-st", "Qwen2ForCausalLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		// RoBERTa: max_position_embeddings - pad_token_id - 1 tokens.
		{"roberta-mlm-st", "RobertaForMaskedLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 40, nil},
		{"roberta-mlm-f16-st", "RobertaForMaskedLM", weights.F16, []string{OutputLastHiddenState, OutputLogits}, 40, nil},
		{"roberta-cls-bin", "RobertaForSequenceClassification", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 40, nil},
		{"camembert-mlm-bin", "CamembertForMaskedLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 40, nil},
		{"xlmr-model-st", "XLMRobertaModel", weights.F32, []string{OutputLastHiddenState, OutputPooler}, 32, nil},
		{"distilbert-mlm-st", "DistilBertForMaskedLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 40, nil},
		{"distilbert-cls-bin", "DistilBertForSequenceClassification", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 40, nil},
		{"distilbert-model-st", "DistilBertModel", weights.F32, []string{OutputLastHiddenState}, 24, nil},
		{"qwen3-st", "Qwen3ForCausalLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		{"qwen3-bf16-bin", "Qwen3ForCausalLM", weights.BF16, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		{"gemma-st", "GemmaForCausalLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		{"gemma2-f16-st", "Gemma2ForCausalLM", weights.F16, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		{"gemma3-bf16-st", "Gemma3ForCausalLM", weights.BF16, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		{"mixtral-st", "MixtralForCausalLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		{"mixtral-bf16-bin", "MixtralForCausalLM", weights.BF16, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		{"qwen2moe-st", "Qwen2MoeForCausalLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		{"qwen2moe-f16-st", "Qwen2MoeForCausalLM", weights.F16, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		{"qwen3moe-st", "Qwen3MoeForCausalLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		{"qwen3moe-bf16-st", "Qwen3MoeForCausalLM", weights.BF16, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		{"phi3-st", "Phi3ForCausalLM", weights.F32, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
		{"phi3-bf16-st", "Phi3ForCausalLM", weights.BF16, []string{OutputLastHiddenState, OutputLogits}, 0, nil},
	} {
		info := loadModel(t, filepath.Join(fixtures, c.dir), 1).Info()
		if info.Architecture != c.arch || info.WeightDType != c.dtype || !slices.Equal(info.Outputs, c.outputs) ||
			info.MaxPositions != c.maxPositions || !slices.Equal(info.Unused, c.unused) || info.Quantized {
			t.Errorf("%s: Info = %+v", c.dir, info)
		}
	}
	for dir, want := range map[string]int{"bert-cls-st": 3, "roberta-cls-bin": 3, "distilbert-cls-bin": 2} {
		if info := loadModel(t, filepath.Join(fixtures, dir), 1).Info(); info.NumLabels != want {
			t.Errorf("%s: NumLabels = %d, want %d", dir, info.NumLabels, want)
		}
	}
}

// TestWeightsInPlace: half-precision matrices are used where they lie (the
// kernel weight aliases the tensor's bytes), not copied to f32.
func TestWeightsInPlace(t *testing.T) {
	g := openGraph(t, filepath.Join(fixtures, "llama-tiny-f16-st"))
	m, err := Load(g, nil, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	l := m.net.(*llama)
	for name, w := range map[string][]byte{
		"model.embed_tokens.weight":              l.embed.Data,
		"model.layers.0.self_attn.q_proj.weight": l.layers[0].q.w.Data,
		"model.layers.1.mlp.down_proj.weight":    l.layers[1].down.w.Data,
		"lm_head.weight":                         l.lmHead.Data,
	} {
		tn, _ := g.Tensor(name)
		b, err := tn.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if tn.DType != weights.F16 || len(w) != len(b) || unsafe.SliceData(w) != unsafe.SliceData(b) {
			t.Errorf("%s: kernel weight does not alias the tensor's %v bytes", name, tn.DType)
		}
	}
}

func TestUnsupportedArchitecture(t *testing.T) {
	for _, c := range []struct{ config, want string }{
		{`{"architectures":["T5ForConditionalGeneration"],"model_type":"t5","d_model":8}`, "T5ForConditionalGeneration (model_type t5)"},
		{`{"model_type":"falcon"}`, "falcon"},
		{`{"architectures":["BertModel"],"model_type":"bert","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,
		   "num_attention_heads":2,"intermediate_size":8,"max_position_embeddings":8,"position_embedding_type":"relative_key"}`, "relative_key"},
		{`{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,
		   "num_attention_heads":2,"intermediate_size":8,"rope_scaling":{"rope_type":"yarn","factor":4}}`, "yarn"},
		{`{"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,
		   "num_attention_heads":2,"intermediate_size":8,"hidden_act":"mish"}`, "mish"},
		{`{"architectures":["RobertaForQuestionAnswering"],"model_type":"roberta","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,
		   "num_attention_heads":2,"intermediate_size":8,"max_position_embeddings":8}`, "RobertaForQuestionAnswering (the forward pass runs RobertaModel"},
		{`{"architectures":["XLMRobertaModel"],"model_type":"xlm-roberta","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,
		   "num_attention_heads":2,"intermediate_size":8,"max_position_embeddings":8,"position_embedding_type":"relative_key_query"}`, "relative_key_query"},
		{`{"architectures":["DistilBertForQuestionAnswering"],"model_type":"distilbert","vocab_size":10,"dim":8,"n_layers":1,
		   "n_heads":2,"hidden_dim":8,"max_position_embeddings":8}`, "DistilBertForQuestionAnswering (the forward pass runs DistilBertModel"},
		{`{"architectures":["DistilBertModel"],"model_type":"distilbert","vocab_size":10,"dim":8,"n_layers":1,
		   "n_heads":2,"hidden_dim":8,"max_position_embeddings":8,"activation":"mish"}`, "mish"},
	} {
		g := weights.NewGraph()
		g.Config = []byte(c.config)
		// A tensor under each family's probe name, so that the refusal is
		// about the config, not the missing weights.
		for _, n := range []string{"embeddings.word_embeddings.weight", "model.embed_tokens.weight"} {
			tn, _ := weights.FromFloat32(n, weights.F32, []int64{10, 8}, make([]float32, 80))
			g.Add(tn)
		}
		_, err := Load(g, nil, Options{})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %s: error %v, want ErrUnsupported naming %q", c.config, err, c.want)
		}
	}
}

// graphWithout copies the tensors of dir except those for which drop
// returns true, replacing any for which replace returns a tensor.
func graphWithout(t *testing.T, dir string, drop func(string) bool, replace func(*weights.Tensor) *weights.Tensor) *weights.Graph {
	t.Helper()
	src := openGraph(t, dir)
	g := weights.NewGraph()
	g.Config = src.Config
	for _, tn := range src.Tensors() {
		if drop != nil && drop(tn.Name) {
			continue
		}
		if replace != nil {
			if r := replace(tn); r != nil {
				tn = r
			}
		}
		if err := g.Add(tn); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func TestBadWeights(t *testing.T) {
	dir := filepath.Join(fixtures, "llama-tiny-st")
	g := graphWithout(t, dir, func(n string) bool { return n == "model.layers.1.mlp.up_proj.weight" }, nil)
	if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "model.layers.1.mlp.up_proj.weight") {
		t.Errorf("missing tensor: %v", err)
	}
	g = graphWithout(t, dir, func(n string) bool { return n == "lm_head.weight" }, nil)
	if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "lm_head.weight") {
		t.Errorf("untied model without lm_head: %v", err)
	}
	g = graphWithout(t, dir, nil, func(tn *weights.Tensor) *weights.Tensor {
		if tn.Name != "model.layers.0.self_attn.k_proj.weight" {
			return nil
		}
		r, _ := weights.FromFloat32(tn.Name, weights.F32, []int64{16, 32}, make([]float32, 512))
		return r
	})
	if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "k_proj") {
		t.Errorf("wrong shape: %v", err)
	}
	g = graphWithout(t, dir, nil, func(tn *weights.Tensor) *weights.Tensor {
		if tn.Name != "model.norm.weight" {
			return nil
		}
		r, _ := weights.NewTensor(tn.Name, weights.I32, []int64{32}, make([]byte, 128))
		return r
	})
	if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "model.norm.weight") {
		t.Errorf("integer norm: %v", err)
	}
	g = graphWithout(t, filepath.Join(fixtures, "bert-bin"), func(n string) bool { return true }, nil)
	if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "embeddings.word_embeddings.weight") {
		t.Errorf("empty graph: %v", err)
	}
}

func TestRunInputErrors(t *testing.T) {
	m := loadModel(t, filepath.Join(fixtures, "gpt2-model-st"), 1) // vocab 200, 20 positions
	ctx := context.Background()
	for _, ids := range [][]int{nil, {1, 200}, {-1}, make([]int, 21)} {
		if _, err := m.Run(ctx, ids); !errors.Is(err, ErrInput) {
			t.Errorf("Run(%v): %v, want ErrInput", ids, err)
		}
	}
	if _, err := m.Run(ctx, make([]int, 20)); err != nil {
		t.Errorf("20 ids: %v", err)
	}
	// RoBERTa's positions start after the padding index: 34 positions
	// with pad_token_id 1 hold 32 tokens.
	m = loadModel(t, filepath.Join(fixtures, "xlmr-model-st"), 1)
	if _, err := m.Run(ctx, make([]int, 33)); !errors.Is(err, ErrInput) {
		t.Errorf("xlmr-model-st, 33 ids: %v, want ErrInput", err)
	}
	if _, err := m.Run(ctx, make([]int, 32)); err != nil {
		t.Errorf("xlmr-model-st, 32 ids: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Run(cancelled, []int{1, 2}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// quantizeInt8 returns the graph of dir with every Linear matrix of the
// decoder layers replaced by symmetric int8 codes and a weight_scale tensor
// in the compressed-tensors layout: [out, 1] per channel when group is 0,
// else [out, in/group].
func quantizeInt8(t *testing.T, dir string, group int) *weights.Graph {
	src := openGraph(t, dir)
	g := weights.NewGraph()
	g.Config = src.Config
	for _, tn := range src.Tensors() {
		if !strings.Contains(tn.Name, "_proj.weight") {
			g.Add(tn)
			continue
		}
		out, in := int(tn.Shape[0]), int(tn.Shape[1])
		v, err := tn.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		gs := in
		if group > 0 {
			gs = group
		}
		codes := make([]byte, out*in)
		var scales []float32
		for o := 0; o < out; o++ {
			for g0 := 0; g0 < in; g0 += gs {
				var mx float64
				for i := g0; i < g0+gs; i++ {
					mx = math.Max(mx, math.Abs(float64(v[o*in+i])))
				}
				s := float32(mx / 127)
				scales = append(scales, s)
				for i := g0; i < g0+gs; i++ {
					codes[o*in+i] = byte(int8(math.Round(float64(v[o*in+i] / s))))
				}
			}
		}
		q, err := weights.NewTensor(tn.Name, weights.I8, tn.Shape, codes)
		if err != nil {
			t.Fatal(err)
		}
		st, err := weights.FromFloat32(tn.Name+"_scale", weights.F32, []int64{int64(out), int64(in / gs)}, scales)
		if err != nil {
			t.Fatal(err)
		}
		g.Add(q)
		g.Add(st)
	}
	return g
}

// TestInt8Weights: int8 weights with per-channel or per-group scales load
// and compute close to the f32 model (the plug-in point for quantization).
func TestInt8Weights(t *testing.T) {
	dir := filepath.Join(fixtures, "llama-tiny-st")
	ref := loadModel(t, dir, 2)
	for _, group := range []int{0, 16} {
		cand, err := Load(quantizeInt8(t, dir, group), nil, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		info := cand.Info()
		if !info.Quantized || info.WeightDType != weights.I8 || len(info.Unused) != 0 {
			t.Errorf("group %d: Info = %+v", group, info)
		}
		if k := InferKind(ref.Info(), info); k != KindInt8 {
			t.Errorf("InferKind = %s", k)
		}
		rep, err := Validate(context.Background(), ref, cand, ValidateOptions{Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Passed {
			t.Errorf("group %d: int8 model fails validation: %v", group, rep.Failures)
		}
		logits := rep.Outputs[1]
		if logits.MaxAbsError == 0 || logits.MaxAbsError > 0.5 {
			t.Errorf("group %d: int8 logits differ by %g", group, logits.MaxAbsError)
		}
	}
	// A zero point (asymmetric scheme) and a missing scale are refused.
	g := quantizeInt8(t, dir, 0)
	zp, _ := weights.NewTensor("model.layers.0.self_attn.q_proj.weight_zero_point", weights.I8, []int64{32, 1}, make([]byte, 32))
	g.Add(zp)
	if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "zero point") {
		t.Errorf("zero point: %v", err)
	}
	g = quantizeInt8(t, dir, 0)
	g.Remove("model.layers.1.mlp.gate_proj.weight_scale")
	if _, err := Load(g, nil, Options{}); !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "gate_proj.weight_scale") {
		t.Errorf("missing scale: %v", err)
	}
}

func TestRopeScaling(t *testing.T) {
	cfg := func(scaling string) *arch.Config {
		c, err := arch.ParseConfig([]byte(`{"model_type":"llama","vocab_size":10,"hidden_size":256,"num_hidden_layers":1,
			"num_attention_heads":2,"intermediate_size":8,"rope_theta":500000,"rope_scaling":` + scaling + `}`))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	def, maxPos, err := ropeFrequencies(cfg("null"))
	if err != nil || len(def) != 64 || maxPos != 0 {
		t.Fatalf("default: %v, %d frequencies, max positions %d", err, len(def), maxPos)
	}
	dyn, maxPos, err := ropeFrequencies(cfg(`{"type":"dynamic","factor":2}`))
	if err != nil || !slices.Equal(dyn, def) || maxPos != 2048 {
		t.Errorf("dynamic: %v, max positions %d", err, maxPos)
	}
	lin, _, err := ropeFrequencies(cfg(`{"type":"linear","factor":4}`))
	if err != nil {
		t.Fatal(err)
	}
	for i := range def {
		if lin[i] != def[i]/4 {
			t.Fatalf("linear: frequency %d is %g, want %g", i, lin[i], def[i]/4)
		}
	}
	l3, _, err := ropeFrequencies(cfg(`{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192}`))
	if err != nil {
		t.Fatal(err)
	}
	var kept, divided, between int
	for i := range def {
		wavelen := 2 * math.Pi / float64(def[i])
		switch {
		case wavelen < 8192/4.0:
			if l3[i] != def[i] {
				t.Errorf("llama3: high frequency %d changed", i)
			}
			kept++
		case wavelen > 8192:
			if l3[i] != def[i]/8 {
				t.Errorf("llama3: low frequency %d is %g, want %g", i, l3[i], def[i]/8)
			}
			divided++
		default:
			if !(l3[i] < def[i] && l3[i] > def[i]/8) {
				t.Errorf("llama3: medium frequency %d = %g is not between %g and %g", i, l3[i], def[i]/8, def[i])
			}
			between++
		}
	}
	if kept == 0 || divided == 0 || between == 0 {
		t.Errorf("llama3 test covers %d kept, %d divided, %d smoothed frequencies", kept, divided, between)
	}
}

func TestSlidingWindows(t *testing.T) {
	for _, c := range []struct {
		config string
		want   []int
	}{
		{`"model_type":"mistral","sliding_window":4096`, []int{4096, 4096, 4096}},
		{`"model_type":"mistral","sliding_window":null`, []int{0, 0, 0}},
		{`"model_type":"llama","sliding_window":16`, []int{0, 0, 0}},
		{`"model_type":"qwen2","sliding_window":32,"use_sliding_window":false,"max_window_layers":1`, []int{0, 0, 0}},
		{`"model_type":"qwen2","sliding_window":32,"use_sliding_window":true,"max_window_layers":1`, []int{0, 32, 32}},
		{`"model_type":"qwen2","sliding_window":32,"use_sliding_window":true,"layer_types":["sliding_attention","full_attention","sliding_attention"]`, []int{32, 0, 32}},
	} {
		cfg, err := arch.ParseConfig([]byte(`{"vocab_size":10,"hidden_size":8,"num_hidden_layers":3,"num_attention_heads":2,"intermediate_size":8,` + c.config + `}`))
		if err != nil {
			t.Fatal(err)
		}
		got, err := slidingWindows(cfg)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.config, got, err, c.want)
		}
	}
}

// TestTiedHead: with tie_word_embeddings a causal LM's head is its token
// embedding, as transformers ties them after loading; an lm_head.weight in
// the file is not used.
func TestTiedHead(t *testing.T) {
	dir := filepath.Join(fixtures, "llama-gqa-bin") // tied, no lm_head in the file
	g := graphWithout(t, dir, nil, nil)
	zeros, _ := weights.FromFloat32("lm_head.weight", weights.F32, []int64{256, 32}, make([]float32, 256*32))
	g.Add(zeros)
	m, err := Load(g, nil, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Info().Unused) != 0 {
		t.Errorf("Unused = %v", m.Info().Unused)
	}
	ids, want := expected(t, dir)
	out, err := m.Run(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := out.Get(OutputLogits)
	wv, _ := want[OutputLogits].Float32s()
	for i := range wv {
		if math.Abs(float64(got.Data[i]-wv[i])) > 1e-4 {
			t.Fatalf("logit %d = %g, want %g: the file's lm_head was used", i, got.Data[i], wv[i])
		}
	}
}

// TestLlamaModelWithoutPrefix: a LlamaModel checkpoint (no "model." prefix,
// no head) gives the last hidden state of the causal LM it came from.
func TestLlamaModelWithoutPrefix(t *testing.T) {
	dir := filepath.Join(fixtures, "llama-tiny-st")
	src := openGraph(t, dir)
	g := weights.NewGraph()
	g.Config = []byte(strings.Replace(string(src.Config), `"LlamaForCausalLM"`, `"LlamaModel"`, 1))
	for _, tn := range src.Tensors() {
		if tn.Name == "lm_head.weight" {
			continue
		}
		c := *tn
		c.Name = strings.TrimPrefix(tn.Name, "model.")
		g.Add(&c)
	}
	m, err := Load(g, nil, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if info := m.Info(); info.Architecture != "LlamaModel" || !slices.Equal(info.Outputs, []string{OutputLastHiddenState}) {
		t.Errorf("Info = %+v", info)
	}
	ids, want := expected(t, dir)
	out, err := m.Run(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	wv, _ := want[OutputLastHiddenState].Float32s()
	got := out.Tensors[0].Data
	for i := range wv {
		if math.Abs(float64(got[i]-wv[i])) > 1e-4 {
			t.Fatalf("last_hidden_state[%d] = %g, want %g", i, got[i], wv[i])
		}
	}
}

// TestUnsupportedNamesRunnable: the refusal of an unknown architecture
// lists the model types of every family the forward pass runs.
func TestUnsupportedNamesRunnable(t *testing.T) {
	g := weights.NewGraph()
	g.Config = []byte(`{"model_type":"falcon"}`)
	_, err := Load(g, nil, Options{})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("%v", err)
	}
	for _, mt := range []string{"bert", "distilbert", "gemma", "gemma2", "gemma3_text", "gpt2", "llama", "mistral", "modernbert", "mpnet", "qwen2", "qwen3", "roberta",
		"mixtral", "qwen2_moe", "qwen3_moe"} {
		if !strings.Contains(err.Error(), " "+mt+",") && !strings.HasSuffix(err.Error(), " "+mt) {
			t.Errorf("%s missing: %v", mt, err)
		}
	}
}
