package llamacpp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/formats/safetensors"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/tokenizer"
	"github.com/hubmirror/hubmirror/weights"
)

const (
	fixtures = "../../testdata/models"
	// version is the pinned node-llama-cpp.
	version = "3.21.1"
	// text is tokenized by both sides; it is longer than the fixtures'
	// sliding windows.
	text = "The quick brown fox jumps over the lazy dog.\nShe said: \"Hello, 42!\""
)

// moreTexts are tokenized by both sides, not run: spaces, digits,
// punctuation runs, newlines, characters outside the vocabulary (tab,
// é: byte tokens). Not a text that starts with a space: for those a
// Metaspace pre-tokenizer with prepend_scheme "first" adds no "▁" (the
// tokenizers library) where llama.cpp's SentencePiece tokenizer adds one
// whatever the text, and GGUF has no key to say otherwise.
var moreTexts = []string{
	"two  spaces,   three inside\n\n\ttab and newlines, caf\u00e9",
	"3.14159 + 2,718 = 5.86 (approx.) -- 100% sure?!... 'quoted' it's we'll",
	"UPPER lower MiXeD camelCase snake_case kebab-case https://example.com/a?b=c#d",
	"end with space ",
}

// modules returns the node_modules directory holding node-llama-cpp, or
// skips the test (fails it when HUBMIRROR_LLAMACPP_MODULES is set but
// unusable).
func modules(t *testing.T) string {
	t.Helper()
	dir, required := os.LookupEnv("HUBMIRROR_LLAMACPP_MODULES")
	if !required {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Skipf("no llama.cpp: no home directory (%v) and HUBMIRROR_LLAMACPP_MODULES unset", err)
		}
		dir = filepath.Join(home, ".cache", "hubmirror", "node-llama-cpp-"+version, "node_modules")
	}
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + " (.ci/run installs it: npm install node-llama-cpp@" + version + ")"
		if required {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("no llama.cpp: node is not installed")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "node-llama-cpp", "package.json"))
	if err != nil {
		missing("no llama.cpp: node-llama-cpp is not installed in %s", dir)
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(raw, &pkg) != nil || pkg.Version != version {
		missing("no llama.cpp: %s holds node-llama-cpp %q, want %s", dir, pkg.Version, version)
	}
	return dir
}

// A family case: a fixture, the config changes that make it a model
// llama.cpp's graph computes exactly (llama.cpp fixes in code what these
// fixtures vary on purpose), and its tokenizer.
type familyCase struct {
	fixture string
	// config are fields of config.json replaced (null deletes).
	config map[string]any
	// tokenizer: "spm" (llama-tiny-st's cut to the vocabulary size, with
	// byte fallback: 256 byte tokens more, the embedding grown to match)
	// or "bytelevel" (the same as a Qwen-style byte-level BPE).
	tokenizer string
	types     []string
	// layers, when set, rebuilds the model from the fixture's layers in
	// this order (a deeper model from a shallow fixture).
	layers []int
	// name is the case's name when the fixture is used twice.
	name string
	// ggufName is general.name when it cannot be the fixture's: llama.cpp
	// requires Phi-3's special tokens of a model named phi3.
	ggufName string
	// widen, when set, replaces every weight by random values with the
	// fixture's hidden and intermediate sizes changed to widen[0] and
	// widen[1] (rows of a multiple of 256 for the k-quants; config gets
	// the new sizes too).
	widen []int
}

var cases = []familyCase{
	// Rows of 32 and 80: the k-quant types fall back (Q5_0, Q5_1, Q8_0,
	// F16) as llama-quantize's do.
	{fixture: "llama-tiny-st", tokenizer: "spm", types: []string{"f32", "f16", "bf16", "q8_0", "q4_k_m", "q6_k"}},
	// Hidden size 256 and intermediate 512: every matrix is k-quantized
	// (Q4_K with Q6_K attn_v, ffn_down and output for q4_k_m).
	{fixture: "llama-tiny-st", name: "llama-wide", tokenizer: "spm", widen: []int{256, 512},
		config: map[string]any{"hidden_size": 256, "intermediate_size": 512},
		types:  []string{"q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"}},
	// Tied embeddings: token_embd is the head, Q6_K.
	{fixture: "qwen2-bias-st", name: "qwen2-wide", tokenizer: "bytelevel", widen: []int{256, 512},
		config: map[string]any{"use_sliding_window": false, "hidden_size": 256, "intermediate_size": 512},
		types:  []string{"q4_k_m", "q6_k"}},
	// llama.cpp's llama graph has no sliding window.
	{fixture: "mistral-bin", tokenizer: "spm", config: map[string]any{"sliding_window": nil}},
	{fixture: "qwen2-bias-st", tokenizer: "bytelevel"},
	{fixture: "qwen3-st", tokenizer: "bytelevel", config: map[string]any{"use_sliding_window": false}},
	{fixture: "gemma-st", tokenizer: "spm"},
	// llama.cpp scales gemma2 attention by 1/sqrt(head_dim).
	{fixture: "gemma2-st", tokenizer: "spm", config: map[string]any{"query_pre_attn_scalar": 16}},
	// llama.cpp's gemma3: five sliding layers of six, local base 10000.
	{fixture: "gemma3-st", tokenizer: "spm", config: map[string]any{"sliding_window_pattern": 6, "rope_local_base_freq": 10000.0}},
	// Six layers (the fixture's four, then its first two again), so that
	// the sixth is global: rope_theta 1e6 with linear scaling 4.
	{fixture: "gemma3-st", name: "gemma3-6layers", tokenizer: "spm", layers: []int{0, 1, 2, 3, 0, 1},
		config: map[string]any{"sliding_window_pattern": 6, "rope_local_base_freq": 10000.0, "num_hidden_layers": 6}},
	// llama.cpp's phi3 graph disables sliding windows. Partial rotary
	// (0.75), LongRoPE with the long factors (the text is longer than
	// original_max_position_embeddings 8, and llama.cpp's context of 256
	// is too) and its attention factor, fused qkv and gate_up.
	{fixture: "phi3-st", tokenizer: "spm", config: map[string]any{"sliding_window": nil}, ggufName: "tiny-phi-st"},
	// Tied head, full rotary, bf16 source; max_position_embeddings 48 is
	// shorter than the text (the attention factor becomes
	// sqrt(1 + ln(128/16)/ln(16))).
	{fixture: "phi3-bf16-st", tokenizer: "spm", config: map[string]any{"max_position_embeddings": 128}, ggufName: "tiny-phi-bf16"},
	// Mixtral is llama.cpp's llama with stacked experts; no window.
	{fixture: "mixtral-st", tokenizer: "spm", config: map[string]any{"sliding_window": nil}},
	// llama.cpp's qwen2moe and qwen3moe make every layer an MoE layer:
	// the fixtures' MoE layers only (qwen2moe-st's layer 1 and
	// qwen3moe-st's layer 0 are dense).
	{fixture: "qwen2moe-st", tokenizer: "bytelevel", layers: []int{0, 2},
		config: map[string]any{"num_hidden_layers": 2, "mlp_only_layers": []int{}}},
	// Tied head (written twice: llama.cpp's qwen2moe requires output),
	// its one MoE layer; qwen2moe never renormalises the top-k weights.
	{fixture: "qwen2moe-f16-st", name: "qwen2moe-tied", tokenizer: "bytelevel", layers: []int{1},
		config: map[string]any{"num_hidden_layers": 1, "decoder_sparse_step": 1, "norm_topk_prob": false}},
	// qwen3moe renormalises the top-k weights (norm_topk_prob false in
	// this fixture: the routing choices are the same).
	{fixture: "qwen3moe-bf16-st", tokenizer: "bytelevel", config: map[string]any{"norm_topk_prob": true}},
	// Tied head; qwen3moe-st's layer 1 alone (its layer 0 is dense; its
	// layer 2 after layer 1 without layer 0 has routing margins that
	// llama.cpp's Q8_0 activations flip).
	{fixture: "qwen3moe-st", name: "qwen3moe-tied", tokenizer: "bytelevel", layers: []int{1},
		config: map[string]any{"num_hidden_layers": 1, "mlp_only_layers": []int{}}},
}

// TestLlamaCppRunsGGUF is the acceptance cross-check of the GGUF output:
// llama.cpp loads each file as written, tokenizes the text to the ids of
// the tokenizer package, and its logits agree with the forward pass on
// the weights the file holds (decoded with
// gguf.Decode; cosine per position at least 0.999 for every type, Q8_0
// and the k-quants included: llama.cpp also quantizes the activations to
// 8 bits in its quantized dot products). Top-1 agreement is logged.
func TestLlamaCppRunsGGUF(t *testing.T) {
	mods := modules(t)
	work := t.TempDir()
	type job struct {
		Name    string   `json:"name"`
		GGUF    string   `json:"gguf"`
		Text    string   `json:"text"`
		IDs     []int    `json:"ids"`
		More    []string `json:"more"`
		Out     string   `json:"out"`
		family  string
		want    []float32 // our logits [seq, vocab] on the weights the file holds
		source  []float32 // our logits on the source weights
		moreIDs [][]int   // our ids of More
		vocab   int
		report  *quantize.GGUFReport
	}
	var jobs []*job
	for _, c := range cases {
		dir := modelDir(t, work, c)
		g, err := formats.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		cfg, err := arch.ParseConfig(g.Config)
		if err != nil {
			t.Fatalf("%s: %v", c.fixture, err)
		}
		tok, err := tokenizer.LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := tok.Encode(text, true)
		if err != nil {
			t.Fatal(err)
		}
		source := run(t, g, cfg, enc.IDs)
		var moreIDs [][]int
		for _, m := range moreTexts {
			e, err := tok.Encode(m, true)
			if err != nil {
				t.Fatal(err)
			}
			moreIDs = append(moreIDs, e.IDs)
		}
		types := c.types
		if types == nil {
			types = []string{"f16", "q8_0"}
		}
		for _, typ := range types {
			name := c.label() + "/" + typ
			gname := c.fixture
			if c.ggufName != "" {
				gname = c.ggufName
			}
			gm, err := quantize.GGUF(g, cfg, quantize.GGUFOptions{Type: typ, TokenizerDir: dir, Name: gname, Threads: 1})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if c.widen != nil && typ != "q8_0" {
				// Every matrix is really of the scheme's block types, no
				// fallback.
				for _, rt := range gm.Report.Tensors {
					if len(rt.Shape) == 2 && !slices.Contains([]string{"Q4_0", "Q4_K", "Q5_K", "Q6_K"}, rt.To) {
						t.Errorf("%s: %s is %s", name, rt.GGUF, rt.To)
					}
				}
			}
			p := filepath.Join(work, c.label()+"-"+typ+".gguf")
			if err := gguf.WriteFile(p, gm.Metadata, gm.Tensors); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			same := run(t, roundTrip(t, g, gm.Report), cfg, enc.IDs)
			// The forward pass on the file itself (quantize.OpenGGUF)
			// computes what it computes on the weights the file holds.
			fg, err := quantize.OpenGGUF(p, g.Config)
			if err != nil {
				t.Fatalf("%s: reading back: %v", name, err)
			}
			fromFile := run(t, fg, cfg, enc.IDs)
			fg.Close()
			for i := range same.Data {
				if d := math.Abs(float64(same.Data[i] - fromFile.Data[i])); d > 1e-4 {
					t.Fatalf("%s: the forward pass on the GGUF file differs from the one on its weights by %g at %d", name, d, i)
				}
			}
			same = fromFile
			jobs = append(jobs, &job{Name: name, GGUF: p, Text: text, IDs: enc.IDs, More: moreTexts, moreIDs: moreIDs, Out: p + ".logits", family: c.fixture,
				want: same.Data, source: source.Data, vocab: same.Shape[len(same.Shape)-1], report: gm.Report})
		}
	}
	manifest, _ := json.Marshal(jobs)
	mp := filepath.Join(work, "manifest.json")
	if err := os.WriteFile(mp, manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "testdata/run.mjs", mp, mods)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node run.mjs: %v\n%s", err, stderr.String())
	}
	results := map[string]struct {
		IDs   []int   `json:"ids"`
		More  [][]int `json:"more"`
		Arch  string  `json:"arch"`
		Vocab int     `json:"vocab"`
		Error string  `json:"error"`
	}{}
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("{")) {
			continue
		}
		var r struct {
			Name  string  `json:"name"`
			IDs   []int   `json:"ids"`
			More  [][]int `json:"more"`
			Arch  string  `json:"arch"`
			Vocab int     `json:"vocab"`
			Error string  `json:"error"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("node output %q: %v", line, err)
		}
		results[r.Name] = struct {
			IDs   []int   `json:"ids"`
			More  [][]int `json:"more"`
			Arch  string  `json:"arch"`
			Vocab int     `json:"vocab"`
			Error string  `json:"error"`
		}{r.IDs, r.More, r.Arch, r.Vocab, r.Error}
	}
	for _, j := range jobs {
		t.Run(j.Name, func(t *testing.T) {
			r, ok := results[j.Name]
			switch {
			case !ok:
				t.Fatalf("llama.cpp did not report (stderr: %s)", stderr.String())
			case r.Error != "":
				t.Fatalf("llama.cpp: %s\n%s", r.Error, stderr.String())
			case r.Arch != j.report.Architecture:
				t.Errorf("llama.cpp loaded architecture %q, want %q", r.Arch, j.report.Architecture)
			}
			if !slices.Equal(r.IDs, j.IDs) {
				t.Errorf("llama.cpp tokenizes to %v\nthe tokenizer package to %v", r.IDs, j.IDs)
			}
			for i, want := range j.moreIDs {
				if i >= len(r.More) || !slices.Equal(r.More[i], want) {
					var got []int
					if i < len(r.More) {
						got = r.More[i]
					}
					t.Errorf("%q: llama.cpp tokenizes to %v\nthe tokenizer package to %v", moreTexts[i], got, want)
				}
			}
			if r.Vocab != j.vocab {
				t.Fatalf("llama.cpp's vocabulary has %d logits, ours %d", r.Vocab, j.vocab)
			}
			raw, err := os.ReadFile(j.Out)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(raw)/4)
			for i := range got {
				got[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			for i, v := range got {
				if math.IsInf(float64(v), 0) || math.IsNaN(float64(v)) {
					t.Fatalf("llama.cpp's log-probability %d is %v (a probability that underflowed)", i, v)
				}
			}
			if len(got) != len(j.want) {
				t.Fatalf("%d logits from llama.cpp, %d from the forward pass", len(got), len(j.want))
			}
			minCos, agree, maxAbs := compare(got, j.want, j.vocab)
			srcCos, srcAgree, _ := compare(got, j.source, j.vocab)
			seq := len(j.want) / j.vocab
			t.Logf("%s (%s, %s): %d positions: same weights: min cosine %.6f, top-1 %d/%d, max |diff| %.3g; source weights: min cosine %.6f, top-1 %d/%d; vocabulary %s",
				j.Name, j.report.Architecture, j.report.FileType, seq, minCos, agree, seq, maxAbs, srcCos, srcAgree, seq, j.report.Vocabulary)
			if minCos < 0.999 {
				t.Errorf("min cosine per position %.6f < 0.999", minCos)
			}
		})
	}
}

// run returns the logits of the forward pass on ids.
func run(t *testing.T, g *weights.Graph, cfg *arch.Config, ids []int) *forward.Output {
	t.Helper()
	m, err := forward.Load(g, cfg, forward.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Run(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	logits, ok := out.Get("logits")
	if !ok {
		t.Fatal("no logits")
	}
	return logits
}

// roundTrip returns g with each matrix as the GGUF file holds it (the
// type rep reports for it): rounded to f16 or bf16, or quantized with
// gguf.Encode and back with gguf.Decode (whose bytes and values are
// checked against ggml's reference code), in float32. The q/k row
// reordering of the llama architecture moves whole rows, and every type
// quantizes rows independently, so rounding in Hugging Face's layout
// gives the same values.
func roundTrip(t *testing.T, g *weights.Graph, rep *quantize.GGUFReport) *weights.Graph {
	t.Helper()
	types := map[string]gguf.Type{}
	for _, ty := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ8_0, gguf.TypeQ4_0, gguf.TypeQ5_0,
		gguf.TypeQ5_1, gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K} {
		types[ty.String()] = ty
	}
	to := map[string]gguf.Type{}
	for _, rt := range rep.Tensors {
		ty, ok := types[rt.To]
		if !ok {
			t.Fatalf("%s: type %s", rt.Name, rt.To)
		}
		to[rt.Name] = ty
	}
	if _, ok := to["lm_head.weight"]; !ok { // tied: the head is the embeddings as written
		for _, e := range []string{"model.embed_tokens.weight", "embed_tokens.weight"} {
			if ty, ok := to[e]; ok {
				to["lm_head.weight"] = ty
			}
		}
	}
	out := weights.NewGraph()
	out.Config = g.Config
	for _, x := range g.Tensors() {
		v, err := x.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		switch ty := to[x.Name]; ty {
		case gguf.TypeF32:
		case gguf.TypeBF16:
			for i, f := range v {
				v[i] = weights.BF16ToFloat32(weights.Float32ToBF16(f))
			}
		case gguf.TypeF16:
			for i, f := range v {
				v[i] = weights.F16ToFloat32(weights.Float32ToF16(f))
			}
		default:
			size, err := gguf.ByteSize(ty, []uint64{uint64(len(v))})
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, size)
			if err := gguf.Encode(ty, b, v); err != nil {
				t.Fatal(err)
			}
			if err := gguf.Decode(ty, v, b); err != nil {
				t.Fatal(err)
			}
		}
		y, err := weights.FromFloat32(x.Name, weights.F32, x.Shape, v)
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Add(y); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// compare returns the smallest cosine over positions of the logits
// centred (minus their mean: llama.cpp's log-probabilities are its logits
// minus a constant per position, which centring removes exactly), the
// positions whose argmax agree and the largest absolute difference of the
// centred logits.
func compare(a, b []float32, vocab int) (minCos float64, agree int, maxAbs float64) {
	minCos = 1
	centred := func(v []float32) []float64 {
		var mean float64
		for _, f := range v {
			mean += float64(f)
		}
		mean /= float64(len(v))
		out := make([]float64, len(v))
		for i, f := range v {
			out[i] = float64(f) - mean
		}
		return out
	}
	for p := 0; p < len(a)/vocab; p++ {
		x, y := centred(a[p*vocab:(p+1)*vocab]), centred(b[p*vocab:(p+1)*vocab])
		var dot, nx, ny float64
		ax, ay := 0, 0
		for i := range x {
			dot += x[i] * y[i]
			nx += x[i] * x[i]
			ny += y[i] * y[i]
			maxAbs = math.Max(maxAbs, math.Abs(x[i]-y[i]))
			if x[i] > x[ax] {
				ax = i
			}
			if y[i] > y[ay] {
				ay = i
			}
		}
		minCos = math.Min(minCos, dot/math.Sqrt(nx*ny))
		if ax == ay {
			agree++
		}
	}
	return minCos, agree, maxAbs
}

// modelDir copies a fixture into work with its config changed and its
// tokenizer, and returns the directory.
func modelDir(t *testing.T, work string, c familyCase) string {
	t.Helper()
	src := filepath.Join(fixtures, c.fixture)
	dir := filepath.Join(work, c.label())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if c.tokenizer == "spm" && (strings.HasSuffix(e.Name(), ".bin") || strings.HasSuffix(e.Name(), ".safetensors")) {
			continue // rewritten below
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var cfg map[string]any
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range c.config {
		if v == nil {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	n := int(cfg["vocab_size"].(float64))
	var rows []int // new embedding row -> fixture row
	switch c.tokenizer {
	case "spm":
		// ids: 3 specials, 256 byte tokens, then the fixture's tokens
		// from id 3 on; the byte tokens' rows repeat the fixture's.
		for k := 0; k < n+256; k++ {
			switch {
			case k < 3:
				rows = append(rows, k)
			case k < 3+256:
				rows = append(rows, (k-3)%n)
			default:
				rows = append(rows, k-256)
			}
		}
		cfg["vocab_size"] = n + 256
		writeTokenizer(t, dir, n, false)
	case "bytelevel":
		writeTokenizer(t, dir, n, true)
	default:
		t.Fatalf("tokenizer %q", c.tokenizer)
	}
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	if c.layers != nil || rows != nil {
		rewrite(t, src, filepath.Join(dir, safetensors.SingleFile), c.layers, rows)
	}
	if c.widen != nil {
		widen(t, src, filepath.Join(dir, safetensors.SingleFile), c.widen[0], c.widen[1])
	}
	return dir
}

// widen rewrites the model file path with every dimension equal to the
// hidden or intermediate size of the fixture src changed to hidden and
// inter (and the k/v projections' rows in proportion), and random weights: matrices normal with standard deviation
// 1/sqrt(columns), norms 1 plus normal noise of 0.1 (a seeded generator).
func widen(t *testing.T, src, path string, hidden, inter int) {
	t.Helper()
	var old struct {
		Hidden  int `json:"hidden_size"`
		Inter   int `json:"intermediate_size"`
		Heads   int `json:"num_attention_heads"`
		KVHeads int `json:"num_key_value_heads"`
	}
	raw, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &old); err != nil {
		t.Fatal(err)
	}
	g, err := formats.Open(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	// The k and v projections' rows (heads of hidden/heads rows).
	oldKV, newKV := old.KVHeads*old.Hidden/old.Heads, old.KVHeads*hidden/old.Heads
	rng := rand.New(rand.NewPCG(16, 256))
	var out []*weights.Tensor
	for _, x := range g.Tensors() {
		shape := slices.Clone(x.Shape)
		for i, d := range shape {
			switch int(d) {
			case old.Hidden:
				shape[i] = int64(hidden)
			case old.Inter:
				shape[i] = int64(inter)
			case oldKV:
				shape[i] = int64(newKV)
			}
		}
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			if len(shape) == 1 {
				v[i] = float32(1 + 0.1*rng.NormFloat64())
			} else {
				v[i] = float32(rng.NormFloat64() / math.Sqrt(float64(shape[len(shape)-1])))
			}
		}
		y, err := weights.FromFloat32(x.Name, weights.F32, shape, v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, y)
	}
	g.Close()
	if err := safetensors.WriteFile(path, out, nil); err != nil {
		t.Fatal(err)
	}
}

func (c familyCase) label() string {
	if c.name != "" {
		return c.name
	}
	return c.fixture
}

var layerPrefix = regexp.MustCompile(`^((?:model\.)?layers\.)(\d+)(\..*)$`)

// rewrite writes the model of the fixture directory src with layer i made
// of the fixture's layer layers[i] (when layers is not nil) and row k of
// the embedding and the head made of the fixture's row rows[k] (when rows
// is not nil).
func rewrite(t *testing.T, src, dst string, layers, rows []int) {
	t.Helper()
	g, err := formats.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var out []*weights.Tensor
	for _, x := range g.Tensors() {
		data, err := x.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if rows != nil && (strings.HasSuffix(x.Name, "embed_tokens.weight") || x.Name == "lm_head.weight") {
			width := len(data) / int(x.Shape[0])
			grown := make([]byte, 0, len(rows)*width)
			for _, r := range rows {
				grown = append(grown, data[r*width:(r+1)*width]...)
			}
			data = grown
			x = &weights.Tensor{Name: x.Name, DType: x.DType, Shape: []int64{int64(len(rows)), x.Shape[1]}}
		}
		m := layerPrefix.FindStringSubmatch(x.Name)
		if m == nil || layers == nil {
			y, err := weights.NewTensor(x.Name, x.DType, x.Shape, data)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, y)
			continue
		}
		for i, from := range layers {
			if strconv.Itoa(from) != m[2] {
				continue
			}
			y, err := weights.NewTensor(m[1]+strconv.Itoa(i)+m[3], x.DType, x.Shape, data)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, y)
		}
	}
	if err := safetensors.WriteFile(dst, out, nil); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeTokenizer writes into dir llama-tiny-st's tokenizer (trained by the
// tokenizers library, see testdata/gen_tokenizers.mjs) cut to n tokens:
// the ids below n and the merges among them, which is the tokenizer the
// same training would give with a smaller vocabulary (BPE adds tokens in
// merge order). Without byteLevel, it gets byte fallback: the tokens
// <0x00>..<0xFF> after the 3 specials (ids 3 to 258), the others 256 ids
// further, as Llama 2's and Gemma's tokenizers have. byteLevel rewrites it as a Qwen-style byte-level BPE: "▁"
// becomes "Ġ" (the byte-level form of a space; the other characters of the
// ASCII corpus are their own byte-level forms) and "\n" "Ċ", the
// pre-tokenizer is Qwen 2's Split regex then ByteLevel, no bos.
func writeTokenizer(t *testing.T, dir string, n int, byteLevel bool) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtures, "llama-tiny-st", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	model := doc["model"].(map[string]any)
	rename := func(s string) string { return s }
	if byteLevel {
		rename = func(s string) string { return strings.NewReplacer("▁", "Ġ", "\n", "Ċ").Replace(s) }
	}
	vocab := map[string]any{}
	for tok, id := range model["vocab"].(map[string]any) {
		if i := int(id.(float64)); i < n {
			if !byteLevel && i >= 3 {
				i += 256 // after the byte tokens
			}
			vocab[rename(tok)] = i
		}
	}
	if !byteLevel {
		for b := 0; b < 256; b++ {
			vocab[fmt.Sprintf("<0x%02X>", b)] = 3 + b
		}
		model["byte_fallback"] = true
	}
	var merges []any
	for _, m := range model["merges"].([]any) {
		p := m.([]any)
		a, b := rename(p[0].(string)), rename(p[1].(string))
		if vocab[a] != nil && vocab[b] != nil && vocab[a+b] != nil {
			merges = append(merges, []any{a, b})
		}
	}
	model["vocab"], model["merges"] = vocab, merges
	if byteLevel {
		doc["normalizer"] = map[string]any{"type": "NFC"}
		doc["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{
				"Regex": `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`},
				"behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		}}
		doc["post_processor"] = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
		doc["decoder"] = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
		model["unk_token"] = nil
		writeJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{
			"tokenizer_class": "Qwen2TokenizerFast", "bos_token": nil, "eos_token": "</s>", "pad_token": "<unk>",
			"add_bos_token": false, "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"})
	} else {
		cfgRaw, err := os.ReadFile(filepath.Join(fixtures, "llama-tiny-st", "tokenizer_config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfgRaw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeJSON(t, filepath.Join(dir, "tokenizer.json"), doc)
}

// TestGGMLQuantizesAsWeDo compares gguf.Encode and gguf.Decode with
// llama.cpp's own ggml (libggml-base.so of node-llama-cpp, called through
// Python's ctypes by testdata/ggml_quants.py: quantize_row_*_ref, which
// llama-quantize uses without an importance matrix, and dequantize_row_*)
// on the test tensors of formats/gguf/testdata/quants and on 64 rows of
// 4096 normal values with outliers: the bytes and the decoded values must
// be equal, for Q4_0, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K.
func TestGGMLQuantizesAsWeDo(t *testing.T) {
	mods := modules(t)
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 to call ggml through ctypes")
	}
	libs, _ := filepath.Glob(filepath.Join(mods, "@node-llama-cpp", "linux-x64", "bins", "*", "libggml-base.so"))
	if len(libs) == 0 {
		t.Skipf("no libggml-base.so for linux-x64 under %s", mods)
	}
	dir := t.TempDir()
	inputs := map[string][]float32{}
	srcs, _ := filepath.Glob("../../formats/gguf/testdata/quants/*.f32")
	for _, p := range srcs {
		base := strings.TrimSuffix(filepath.Base(p), ".f32")
		if strings.Contains(base, ".") {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, len(raw)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		inputs[base] = v
	}
	rng := rand.New(rand.NewPCG(4096, 16))
	big := make([]float32, 64*4096)
	for i := range big {
		big[i] = float32(rng.NormFloat64() * 0.02)
		if rng.IntN(500) == 0 {
			big[i] *= 30
		}
	}
	inputs["random64x4096"] = big
	types := map[string]gguf.Type{"q4_0": gguf.TypeQ4_0, "q5_0": gguf.TypeQ5_0, "q5_1": gguf.TypeQ5_1, "q8_0": gguf.TypeQ8_0,
		"q4_k": gguf.TypeQ4_K, "q5_k": gguf.TypeQ5_K, "q6_k": gguf.TypeQ6_K}
	f32bytes := func(v []float32) []byte {
		b := make([]byte, 4*len(v))
		for i, f := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
		}
		return b
	}
	for name, x := range inputs {
		if err := os.WriteFile(filepath.Join(dir, name+".f32"), f32bytes(x), 0o644); err != nil {
			t.Fatal(err)
		}
		for tn, ty := range types {
			size, err := gguf.ByteSize(ty, []uint64{uint64(len(x))})
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, size)
			if err := gguf.Encode(ty, b, x); err != nil {
				t.Fatal(err)
			}
			y := make([]float32, len(x))
			if err := gguf.Decode(ty, y, b); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name+"."+tn), b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name+"."+tn+".f32"), f32bytes(y), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd := exec.Command(python, "testdata/ggml_quants.py", libs[0], dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ggml_quants.py: %v\n%s", err, stderr.String())
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r struct {
			Case        string `json:"case"`
			Type        string `json:"type"`
			Blocks      int    `json:"blocks"`
			BytesEqual  bool   `json:"bytes_equal"`
			FirstDiff   int    `json:"first_diff"`
			ValuesEqual *bool  `json:"values_equal"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		checked++
		if !r.BytesEqual {
			t.Errorf("%s %s: ggml's quantize_row_%s_ref differs from gguf.Encode at byte %d", r.Case, r.Type, r.Type, r.FirstDiff)
		}
		if r.ValuesEqual == nil || !*r.ValuesEqual {
			t.Errorf("%s %s: ggml's dequantize_row differs from gguf.Decode", r.Case, r.Type)
		}
	}
	if checked != len(inputs)*len(types) {
		t.Errorf("%d results, want %d", checked, len(inputs)*len(types))
	}
	t.Logf("%d tensors x %d types: bytes and values equal to ggml's (%s)", len(inputs), len(types), libs[0])
}
