package llamacpp_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/tokenizer"
	"github.com/hubmirror/hubmirror/weights"
)

// An encoderCase is an encoder fixture and its tokenizer.
type encoderCase struct {
	fixture string
	// tokenizer: "wordpiece" (bert-cls-st's), "roberta" (a byte-level
	// BPE with RobertaProcessing: <s>=0 <pad>=1 </s>=2 <unk>=3), "unigram"
	// (a SentencePiece Unigram with its precompiled charsmap, laid out as
	// XLM-RoBERTa's: <s>=0 <pad>=1 </s>=2 <unk>=3) or "modernbert" (a
	// byte-level BPE with a [CLS] $A [SEP] template, the specials at ids
	// 100 to 103 as the fixtures have them).
	tokenizer string
	types     []string
	// config are fields of config.json replaced.
	config map[string]any
}

// The encoder texts: embedded (short enough for every fixture's
// positions), then tokenized only.
const encoderText = "A case and an id, in 42 words!"

var encoderMoreTexts = []string{
	"The quick brown fox jumps over the lazy dog.\nShe said: \"Hello, 42!\"",
	"UPPER lower MiXeD 3.14 + 2,718 = 5.86 -- (approx.) it's we'll",
	"two  spaces, a\ttab and\nnewlines",
}

// Texts for the WordPiece and Unigram tokenizers only: characters outside
// the vocabulary (unknown tokens), accents that BertNormalizer strips,
// full-width letters that the Unigram's charsmap maps to ASCII.
var encoderUnknownTexts = []string{
	"caf\u00e9 na\u00efve \u00c9cole",
	"\uff21\uff22\uff23 full width and \u65e5\u672c chars",
}

var encoderCases = []encoderCase{
	{fixture: "bert-cls-st", tokenizer: "wordpiece", types: []string{"f32", "f16", "bf16", "q8_0"}},
	// Old gamma/beta names; 24 wide: Q8_0 falls back to F16.
	{fixture: "bert-oldnames-bin", tokenizer: "wordpiece"},
	{fixture: "distilbert-model-st", tokenizer: "wordpiece"},
	// Its classification head is dropped; relu (the fixture's) is
	// refused (TestGGUFEncoderRefusals).
	{fixture: "distilbert-cls-bin", tokenizer: "wordpiece", config: map[string]any{"activation": "gelu"}},
	{fixture: "roberta-mlm-st", tokenizer: "roberta"},
	// gelu_new.
	{fixture: "roberta-cls-bin", tokenizer: "roberta"},
	{fixture: "xlmr-model-st", tokenizer: "unigram"},
	{fixture: "camembert-mlm-bin", tokenizer: "unigram"},
	// Windows of 4 (|i - j| <= 2) on layers 1 and 2, global layer 0.
	{fixture: "modernbert-model-st", tokenizer: "modernbert"},
	// Windows of 8, global layers 0 and 3, RoPE bases 160000 and 10000.
	{fixture: "modernbert-mlm-st", tokenizer: "modernbert"},
	// Its classifier (mean pooling, head, classifier) as llama.cpp's
	// rank pooling.
	{fixture: "modernbert-cls-st", tokenizer: "modernbert"},
}

// minCosine is the least cosine of llama.cpp's embedding and ours per
// type: 0.999 for Q8_0 (llama.cpp also quantizes the activations to 8
// bits in its products), 0.99999 for the float types (where the two differ
// by the order of sums and llama.cpp's tanh approximation of GELU: the
// fixtures give 0.999997 or more; a RoPE base off on the sliding-window
// layers of a ModernBERT already gives 0.99998).
var minCosine = map[string]float64{"f32": 0.99999, "f16": 0.99999, "bf16": 0.99999, "q8_0": 0.999}

// rankTolerance is the largest difference of llama.cpp's classifier
// scores and ours (times the largest score when above 1) per file type:
// the fixtures give 4e-4 (f32), 8e-4 (f16), 4e-3 (bf16) and 1.5e-2
// (q8_0); the dense layer and tanh or GELU of the head amplify the
// differences of the embeddings.
var rankTolerance = map[string]float64{"ALL_F32": 1e-3, "MOSTLY_F16": 2e-3, "MOSTLY_BF16": 1e-2, "MOSTLY_Q8_0": 3e-2}

// poolings are the pooling types of the files llama.cpp runs: the file
// as written (no pooling_type: llama.cpp's embedding is the last token's
// hidden state), and the same file with pooling_type mean and cls.
var poolings = []struct {
	name string
	typ  uint32 // 0: as written
}{{"last", 0}, {"mean", 1}, {"cls", 2}}

// TestLlamaCppEmbedsEncoderGGUF is the cross-check of the encoder GGUF
// output with llama.cpp: for every encoder fixture llama.cpp has an
// architecture for, the file as quantize.GGUF writes it (vocabulary
// included) loads; llama.cpp tokenizes the texts to the ids of the
// tokenizer package (its special tokens added as llama_tokenize adds
// them); and its embedding of our ids agrees with the forward pass on the
// weights the file holds: the last token's hidden state (the file as
// written, no pooling type), the mean of the hidden states and the first
// token's (the file with pooling_type mean, cls), each with cosine at
// least minCosine of its type (f32, f16, bf16, q8_0); and for the
// fixtures with a sequence classification head, its scores (llama.cpp's
// rank pooling: the head on the first token for BERT and RoBERTa, on the
// mean for ModernBERT) agree with the forward pass's logits within
// rankTolerance.
func TestLlamaCppEmbedsEncoderGGUF(t *testing.T) {
	mods := modules(t)
	work := t.TempDir()
	type job struct {
		Name  string   `json:"name"`
		GGUF  string   `json:"gguf"`
		Texts []string `json:"texts"`
		IDs   []int    `json:"ids"`
		Out   string   `json:"out"`
		// Rank: the classification head's scores, not an embedding.
		Rank bool `json:"rank"`
		// ours
		pooling string
		min     float64 // the least cosine
		want    []float32
		textIDs [][]int
		report  *quantize.GGUFReport
	}
	var jobs []*job
	for _, c := range encoderCases {
		dir := encoderDir(t, work, c)
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
		texts := append([]string{encoderText}, encoderMoreTexts...)
		if c.tokenizer == "wordpiece" || c.tokenizer == "unigram" {
			texts = append(texts, encoderUnknownTexts...)
		}
		var textIDs [][]int
		for _, s := range texts {
			e, err := tok.Encode(s, true)
			if err != nil {
				t.Fatal(err)
			}
			textIDs = append(textIDs, e.IDs)
		}
		ids := textIDs[0]
		types := c.types
		if types == nil {
			types = []string{"f32", "f16", "q8_0"}
		}
		for _, typ := range types {
			gm, err := quantize.GGUF(g, cfg, quantize.GGUFOptions{Type: typ, TokenizerDir: dir, Name: c.fixture, Threads: 1})
			if err != nil {
				t.Fatalf("%s/%s: %v", c.fixture, typ, err)
			}
			outs := forwardOutputs(t, roundTrip(t, g, gm.Report), cfg, ids)
			hidden, ok := outs.Get(forward.OutputLastHiddenState)
			if !ok {
				t.Fatal("no last_hidden_state")
			}
			for _, p := range poolings {
				name := c.fixture + "/" + typ + "/" + p.name
				md := slices.Clone(gm.Metadata)
				if p.typ != 0 {
					md = append(md, gguf.KV{Key: gm.Report.Architecture + ".pooling_type", Value: p.typ})
				}
				path := filepath.Join(work, strings.ReplaceAll(name, "/", "-")+".gguf")
				if err := gguf.WriteFile(path, md, gm.Tensors); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				jobs = append(jobs, &job{Name: name, GGUF: path, Texts: texts, IDs: ids, Out: path + ".emb",
					pooling: p.name, min: minCosine[typ], want: pool(hidden, p.name), textIDs: textIDs, report: gm.Report})
			}
			// A classification head: llama.cpp's rank pooling computes
			// its scores (the file as written).
			if slices.ContainsFunc(gm.Report.Tensors, func(x quantize.GGUFTensor) bool { return x.GGUF == "cls.output.weight" }) {
				logits, ok := outs.Get("logits")
				if !ok {
					t.Fatalf("%s: no logits", c.fixture)
				}
				name := c.fixture + "/" + typ + "/rank"
				path := filepath.Join(work, strings.ReplaceAll(name, "/", "-")+".gguf")
				if err := gguf.WriteFile(path, gm.Metadata, gm.Tensors); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				jobs = append(jobs, &job{Name: name, GGUF: path, Texts: texts, IDs: ids, Out: path + ".scores", Rank: true,
					pooling: "rank", min: minCosine[typ], want: slices.Clone(logits.Data), textIDs: textIDs, report: gm.Report})
			}
		}
	}
	manifest, _ := json.Marshal(jobs)
	mp := filepath.Join(work, "manifest.json")
	if err := os.WriteFile(mp, manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "testdata/embed.mjs", mp, mods)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node embed.mjs: %v\n%s", err, stderr.String())
	}
	type result struct {
		Name      string  `json:"name"`
		Arch      string  `json:"arch"`
		VocabType string  `json:"vocabType"`
		BOS       *int    `json:"bos"`
		EOS       *int    `json:"eos"`
		SEP       *int    `json:"sep"`
		AddBOS    bool    `json:"addBos"`
		AddEOS    bool    `json:"addEos"`
		Raw       [][]int `json:"raw"`
		Input     []int   `json:"input"`
		Dims      int     `json:"dims"`
		Error     string  `json:"error"`
	}
	results := map[string]result{}
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("{")) {
			continue
		}
		var r result
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("node output %q: %v", line, err)
		}
		results[r.Name] = r
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
			// The special tokens llama_tokenize adds (add_special).
			special := func(raw []int) []int {
				out := slices.Clone(raw)
				switch r.VocabType {
				case "wpm": // always [CLS] ... [SEP]
					if r.BOS != nil && r.SEP != nil {
						out = append(append([]int{*r.BOS}, out...), *r.SEP)
					}
				default:
					if r.AddBOS && r.BOS != nil {
						out = append([]int{*r.BOS}, out...)
					}
					if r.AddEOS && r.EOS != nil {
						out = append(out, *r.EOS)
					}
				}
				return out
			}
			for i, want := range j.textIDs {
				var got []int
				if i < len(r.Raw) {
					got = special(r.Raw[i])
				}
				if !slices.Equal(got, want) {
					t.Errorf("%q: llama.cpp (%s vocabulary) tokenizes to %v\nthe tokenizer package to %v", j.Texts[i], r.VocabType, got, want)
				}
			}
			if !slices.Equal(r.Input, j.IDs) {
				t.Fatalf("llama.cpp's embedding context evaluated %v, not our %v", r.Input, j.IDs)
			}
			raw, err := os.ReadFile(j.Out)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(raw)/4)
			for i := range got {
				got[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
			if len(got) != len(j.want) {
				t.Fatalf("llama.cpp's embedding has %d dimensions, ours %d", len(got), len(j.want))
			}
			c := cosine(got, j.want)
			if j.Rank {
				var maxAbs, scale float64
				for i := range got {
					maxAbs = math.Max(maxAbs, math.Abs(float64(got[i]-j.want[i])))
					scale = math.Max(scale, math.Abs(float64(j.want[i])))
				}
				t.Logf("%s (%s, %s, %d tokens): classifier scores %v, ours %v: max |diff| %.3g",
					j.Name, j.report.Architecture, j.report.FileType, len(j.IDs), got, j.want, maxAbs)
				if tol := rankTolerance[j.report.FileType] * math.Max(1, scale); !(maxAbs <= tol) {
					t.Errorf("classifier scores differ by %.3g (> %.3g)", maxAbs, tol)
				}
				return
			}
			t.Logf("%s (%s, %s, %d tokens): %s embedding cosine %.6f; vocabulary %s",
				j.Name, j.report.Architecture, j.report.FileType, len(j.IDs), j.pooling, c, j.report.Vocabulary)
			if !(c >= j.min) {
				t.Errorf("%s embedding: cosine %.6f < %g\nllama.cpp %v\nours      %v", j.pooling, c, j.min, got, j.want)
			}
		})
	}
}

// forwardOutputs returns the forward pass's outputs on ids.
func forwardOutputs(t *testing.T, g *weights.Graph, cfg *arch.Config, ids []int) *forward.Outputs {
	t.Helper()
	m, err := forward.Load(g, cfg, forward.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Run(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pool returns the last position's, the first's or the mean of the
// hidden states h [seq, hidden].
func pool(h *forward.Output, how string) []float32 {
	width := h.Shape[len(h.Shape)-1]
	seq := len(h.Data) / width
	switch how {
	case "last":
		return slices.Clone(h.Data[(seq-1)*width:])
	case "cls":
		return slices.Clone(h.Data[:width])
	}
	out := make([]float32, width)
	for p := range seq {
		for i := range width {
			out[i] += h.Data[p*width+i] / float32(seq)
		}
	}
	return out
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

// encoderDir copies an encoder fixture into work with its tokenizer
// (see encoderCase.tokenizer) and returns the directory.
func encoderDir(t *testing.T, work string, c encoderCase) string {
	t.Helper()
	src := filepath.Join(fixtures, c.fixture)
	dir := filepath.Join(work, c.fixture)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
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
		cfg[k] = v
	}
	writeJSON(t, filepath.Join(dir, "config.json"), cfg)
	n := int(cfg["vocab_size"].(float64))
	switch c.tokenizer {
	case "wordpiece":
		for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
			b, err := os.ReadFile(filepath.Join(fixtures, "bert-cls-st", f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	case "roberta":
		specials := []string{"<s>", "<pad>", "</s>", "<unk>"}
		doc := byteLevelBPE(t, specials, n-len(specials), 0)
		doc["post_processor"] = map[string]any{"type": "RobertaProcessing", "sep": []any{"</s>", 2}, "cls": []any{"<s>", 0},
			"trim_offsets": true, "add_prefix_space": false}
		writeJSON(t, filepath.Join(dir, "tokenizer.json"), doc)
		writeJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{"tokenizer_class": "RobertaTokenizerFast",
			"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>"})
	case "modernbert":
		specials := []string{"[CLS]", "[SEP]", "[PAD]", "[MASK]"}
		doc := byteLevelBPE(t, specials, n-len(specials), n-len(specials))
		doc["post_processor"] = map[string]any{"type": "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": "[CLS]", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": "[SEP]", "type_id": 0}}},
			"pair": []any{map[string]any{"SpecialToken": map[string]any{"id": "[CLS]", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": "[SEP]", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": "[SEP]", "type_id": 0}}},
			"special_tokens": map[string]any{
				"[CLS]": map[string]any{"id": "[CLS]", "ids": []any{n - 4}, "tokens": []any{"[CLS]"}},
				"[SEP]": map[string]any{"id": "[SEP]", "ids": []any{n - 3}, "tokens": []any{"[SEP]"}}}}
		writeJSON(t, filepath.Join(dir, "tokenizer.json"), doc)
		writeJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{"tokenizer_class": "PreTrainedTokenizerFast",
			"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "mask_token": "[MASK]"})
	case "unigram":
		writeJSON(t, filepath.Join(dir, "tokenizer.json"), unigram(t, n))
		writeJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{"tokenizer_class": "XLMRobertaTokenizerFast",
			"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>"})
	default:
		t.Fatalf("tokenizer %q", c.tokenizer)
	}
	return dir
}

// byteLevelBPE returns llama-tiny-st's tokenizer (see writeTokenizer) as a
// RoBERTa-style byte-level BPE ("▁" written "Ġ", "\n" "Ċ"; ByteLevel
// pre-tokenizer with GPT-2's regex) of its first normal tokens normal (in
// its id order, which is BPE's training order: the alphabet, then the
// merges) and the merges among them, with specials added as special
// tokens at ids from at on (the normal tokens after the specials when at
// is 0, before them otherwise).
func byteLevelBPE(t *testing.T, specials []string, normal, at int) map[string]any {
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
	src := model["vocab"].(map[string]any)
	special := map[string]bool{}
	for _, a := range doc["added_tokens"].([]any) {
		special[a.(map[string]any)["content"].(string)] = true
	}
	type entry struct {
		tok string
		id  int
	}
	var order []entry
	for tok, id := range src {
		if !special[tok] {
			order = append(order, entry{tok, int(id.(float64))})
		}
	}
	slices.SortFunc(order, func(a, b entry) int { return a.id - b.id })
	rename := strings.NewReplacer("▁", "Ġ", "\n", "Ċ").Replace
	first := len(specials)
	if at != 0 {
		first = 0
	}
	vocab := map[string]any{}
	for i, e := range order[:normal] {
		vocab[rename(e.tok)] = first + i
	}
	var added []any
	for i, s := range specials {
		id := at + i
		vocab[s] = id
		added = append(added, map[string]any{"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
			"normalized": false, "special": true})
	}
	var merges []any
	for _, m := range model["merges"].([]any) {
		p := m.([]any)
		a, b := rename(p[0].(string)), rename(p[1].(string))
		if vocab[a] != nil && vocab[b] != nil && vocab[a+b] != nil {
			merges = append(merges, []any{a, b})
		}
	}
	model["vocab"], model["merges"], model["unk_token"], model["byte_fallback"] = vocab, merges, nil, false
	doc["added_tokens"] = added
	doc["normalizer"] = nil
	doc["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
	doc["decoder"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}
	return doc
}

// unigram returns the SentencePiece Unigram of the tokenizer package's
// reference (unigram-precompiled: trained by spm_train, converted by the
// tokenizers library, with its Precompiled nmt_nfkc charsmap and Replace of
// runs of spaces) cut to n pieces as XLM-RoBERTa lays them out: <s>,
// <pad>, </s>, <unk>, then the reference's single-character ASCII pieces
// and "▁", then its longer ASCII pieces in id order, with their scores;
// <s> $A </s> around a text.
func unigram(t *testing.T, n int) map[string]any {
	t.Helper()
	f, err := os.Open("../../tokenizer/testdata/reference/tokenizers/unigram-precompiled.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	model := doc["model"].(map[string]any)
	ascii := func(s string) bool {
		for _, r := range s {
			if (r < 0x20 || r > 0x7e) && r != '▁' {
				return false
			}
		}
		return true
	}
	specials := []string{"<s>", "<pad>", "</s>", "<unk>"}
	vocab := []any{}
	for _, s := range specials {
		vocab = append(vocab, []any{s, 0.0})
	}
	src := model["vocab"].([]any)
	for pass := 0; pass < 2; pass++ {
		for _, p := range src {
			piece := p.([]any)[0].(string)
			single := len([]rune(piece)) == 1
			if len(vocab) < n && ascii(piece) && !slices.Contains([]string{"<unk>", "<s>", "</s>"}, piece) && single == (pass == 0) {
				vocab = append(vocab, p)
			}
		}
	}
	if len(vocab) != n {
		t.Fatalf("unigram: %d pieces, want %d", len(vocab), n)
	}
	var added []any
	for i, s := range specials {
		added = append(added, map[string]any{"id": i, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
			"normalized": false, "special": true})
	}
	model["vocab"], model["unk_id"] = vocab, 3
	doc["added_tokens"] = added
	doc["post_processor"] = map[string]any{"type": "TemplateProcessing",
		"single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}},
			map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
			map[string]any{"SpecialToken": map[string]any{"id": "</s>", "type_id": 0}}},
		"pair": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}},
			map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
			map[string]any{"SpecialToken": map[string]any{"id": "</s>", "type_id": 0}},
			map[string]any{"SpecialToken": map[string]any{"id": "</s>", "type_id": 0}},
			map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 0}},
			map[string]any{"SpecialToken": map[string]any{"id": "</s>", "type_id": 0}}},
		"special_tokens": map[string]any{
			"<s>":  map[string]any{"id": "<s>", "ids": []any{0}, "tokens": []any{"<s>"}},
			"</s>": map[string]any{"id": "</s>", "ids": []any{2}, "tokens": []any{"</s>"}}}}
	return doc
}

// TestGGUFEncoderRefusals: what llama.cpp has no architecture for, or
// whose graph computes otherwise, is refused with ErrGGUFUnsupported
// (no llama.cpp needed).
func TestGGUFEncoderRefusals(t *testing.T) {
	for _, c := range []struct {
		fixture string
		config  map[string]any
		want    string
	}{
		{"mpnet-model-f16-st", nil, "no MPNet architecture"},
		{"modernbert-bias-st", nil, "biases"},
		{"modernbert-model-st", map[string]any{"layer_types": []string{"full_attention", "full_attention", "sliding_attention"}}, "layer 2's RoPE base"},
		{"distilbert-cls-bin", nil, `activation "relu"`},
		{"bert-cls-st", map[string]any{"hidden_act": "relu"}, `activation "relu"`},
		{"bert-cls-st", map[string]any{"position_embedding_type": "relative_key"}, "absolute position"},
		{"distilbert-model-st", map[string]any{"activation": "relu"}, `activation "relu"`},
	} {
		raw, err := os.ReadFile(filepath.Join(fixtures, c.fixture, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range c.config {
			m[k] = v
		}
		raw, _ = json.Marshal(m)
		cfg, err := arch.ParseConfig(raw)
		if err != nil {
			t.Fatalf("%s: %v", c.fixture, err)
		}
		g, err := formats.Open(filepath.Join(fixtures, c.fixture))
		if err != nil {
			t.Fatal(err)
		}
		_, err = quantize.GGUF(g, cfg, quantize.GGUFOptions{Type: "f16", NoVocab: true})
		g.Close()
		if !errors.Is(err, quantize.ErrGGUFUnsupported) || !strings.Contains(fmt.Sprint(err), c.want) {
			t.Errorf("%s %v: %v, want ErrGGUFUnsupported saying %q", c.fixture, c.config, err, c.want)
		}
	}
	// A mix of llama-quantize's is for decoders.
	g, err := formats.Open(filepath.Join(fixtures, "bert-cls-st"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := quantize.GGUF(g, cfg, quantize.GGUFOptions{Type: "q4_k_m", NoVocab: true}); !errors.Is(err, quantize.ErrGGUFUnsupported) {
		t.Errorf("q4_k_m for BERT: %v, want ErrGGUFUnsupported", err)
	}
}

// TestLlamaCppTokenizesLikeTokenizers checks the encoder vocabularies
// against the tokenizers library itself on real tokenizers: for BERT's
// uncased and cased WordPiece, RoBERTa's byte-level BPE and a
// SentencePiece Unigram with its precompiled charsmap (the tokenizer
// package's reference files, tokenizer/testdata/reference: tokenizer.json
// and the ids the tokenizers library gives for each line of a
// multilingual corpus), the GGUF vocabulary that quantize.GGUF writes for
// a model of the family (a one-layer model of zeros, which llama.cpp loads
// vocabulary only) makes llama.cpp tokenize every corpus line to the
// library's ids, special tokens added as llama_tokenize adds them.
func TestLlamaCppTokenizesLikeTokenizers(t *testing.T) {
	mods := modules(t)
	work := t.TempDir()
	ref := "../../tokenizer/testdata/reference"
	type job struct {
		Name         string   `json:"name"`
		GGUF         string   `json:"gguf"`
		Texts        []string `json:"texts"`
		IDs          []int    `json:"ids"`
		VocabOnly    bool     `json:"vocabOnly"`
		ParseSpecial bool     `json:"parseSpecial"`
		want         [][]int
	}
	var jobs []*job
	for _, c := range []struct {
		name, modelType, class string
	}{
		{"bert-uncased", "bert", "BertModel"},
		{"bert-cased", "bert", "BertModel"},
		{"roberta", "roberta", "RobertaModel"},
		{"unigram-precompiled", "xlm-roberta", "XLMRobertaModel"},
	} {
		dir := filepath.Join(work, c.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		raw := gunzip(t, filepath.Join(ref, "tokenizers", c.name+".json.gz"))
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(ref, "dirs", c.name, "tokenizer_config.json")); err == nil {
			if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var tj struct {
			Model struct {
				Vocab json.RawMessage `json:"vocab"`
			} `json:"model"`
			AddedTokens []struct {
				ID int `json:"id"`
			} `json:"added_tokens"`
		}
		if err := json.Unmarshal(raw, &tj); err != nil {
			t.Fatal(err)
		}
		vocab := 0
		var byName map[string]int
		var list [][2]any
		if json.Unmarshal(tj.Model.Vocab, &byName) == nil {
			for _, id := range byName {
				vocab = max(vocab, id+1)
			}
		} else if err := json.Unmarshal(tj.Model.Vocab, &list); err == nil {
			vocab = len(list)
		} else {
			t.Fatalf("%s: model.vocab: %v", c.name, err)
		}
		for _, a := range tj.AddedTokens {
			vocab = max(vocab, a.ID+1)
		}
		pad := 0
		if c.modelType != "bert" {
			pad = 1
			if c.name == "roberta" {
				pad = 50258 // <pad> after GPT-2's vocabulary
			}
		}
		cfg := map[string]any{"architectures": []string{c.class}, "model_type": c.modelType, "vocab_size": vocab,
			"hidden_size": 32, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 1,
			"max_position_embeddings": pad + 2 + 64, "type_vocab_size": 1, "pad_token_id": pad, "hidden_act": "gelu"}
		g := zeroEncoder(t, cfg)
		pcfg, err := arch.ParseConfig(g.Config)
		if err != nil {
			t.Fatal(err)
		}
		gm, err := quantize.GGUF(g, pcfg, quantize.GGUFOptions{Type: "f32", TokenizerDir: dir, Name: c.name})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		path := filepath.Join(work, c.name+".gguf")
		if err := gguf.WriteFile(path, gm.Metadata, gm.Tensors); err != nil {
			t.Fatal(err)
		}
		j := &job{Name: c.name, GGUF: path, VocabOnly: true, ParseSpecial: true, IDs: []int{}}
		for _, line := range bytes.Split(gunzip(t, filepath.Join(ref, "expected", c.name+".jsonl.gz")), []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var e struct {
				A       string  `json:"a"`
				B       *string `json:"b"`
				Special bool    `json:"special"`
				IDs     []int   `json:"ids"`
			}
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatal(err)
			}
			if e.B == nil && e.Special {
				j.Texts = append(j.Texts, e.A)
				j.want = append(j.want, e.IDs)
			}
		}
		jobs = append(jobs, j)
	}
	corpus := map[string]bool{}
	for _, line := range strings.Split(string(readFile(t, filepath.Join(ref, "corpus.txt"))), "\n") {
		corpus[line] = true
	}
	manifest, _ := json.Marshal(jobs)
	mp := filepath.Join(work, "manifest.json")
	if err := os.WriteFile(mp, manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "testdata/embed.mjs", mp, mods)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node embed.mjs: %v\n%s", err, stderr.String())
	}
	results := map[string]struct {
		VocabType string  `json:"vocabType"`
		BOS       *int    `json:"bos"`
		EOS       *int    `json:"eos"`
		SEP       *int    `json:"sep"`
		AddBOS    bool    `json:"addBos"`
		AddEOS    bool    `json:"addEos"`
		Raw       [][]int `json:"raw"`
		Error     string  `json:"error"`
	}{}
	for _, line := range bytes.Split(stdout, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("{")) {
			continue
		}
		var r struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("node output %q: %v", line, err)
		}
		x := results[r.Name]
		if err := json.Unmarshal(line, &x); err != nil {
			t.Fatal(err)
		}
		results[r.Name] = x
	}
	for _, j := range jobs {
		t.Run(j.Name, func(t *testing.T) {
			r, ok := results[j.Name]
			switch {
			case !ok:
				t.Fatalf("llama.cpp did not report (stderr: %s)", stderr.String())
			case r.Error != "":
				t.Fatalf("llama.cpp: %s", r.Error)
			}
			bad, checked, same := 0, 0, 0
			for i, want := range j.want {
				var got []int
				if i < len(r.Raw) {
					got = slices.Clone(r.Raw[i])
				}
				if r.VocabType == "wpm" && r.BOS != nil && r.SEP != nil {
					got = append(append([]int{*r.BOS}, got...), *r.SEP)
				} else {
					if r.AddBOS && r.BOS != nil {
						got = append([]int{*r.BOS}, got...)
					}
					if r.AddEOS && r.EOS != nil {
						got = append(got, *r.EOS)
					}
				}
				if slices.Equal(got, want) {
					same++
				}
				if !corpus[j.Texts[i]] || llamaCppDiffers(r.VocabType, j.Texts[i]) != "" {
					continue
				}
				checked++
				if !slices.Equal(got, want) {
					if bad++; bad <= 10 {
						t.Errorf("%q: llama.cpp (%s) tokenizes to %v\nthe tokenizers library to %v", j.Texts[i], r.VocabType, got, want)
					}
				}
			}
			t.Logf("%s (%s vocabulary): %d of the %d corpus lines checked tokenized alike; of all %d texts (the generated ones too) %d alike",
				j.Name, r.VocabType, checked-bad, checked, len(j.want), same)
			if checked < 30 {
				t.Errorf("only %d corpus lines checked", checked)
			}
		})
	}
}

// llamaCppDiffers says why llama.cpp's tokenizer of a vocabulary type
// tokenizes text otherwise than the tokenizers library, whatever the GGUF
// file says ("" when it does not):
//   - special tokens written in the text: llama.cpp parses its control
//     tokens and more (GPT-2's <|endoftext|>, a normal token in RoBERTa's
//     vocabulary) and ignores lstrip (RoBERTa's <mask>);
//   - WordPiece (llama_vocab's WPM): no limit on the length of a word (the
//     library gives [UNK] beyond 100 characters), no decomposition of
//     Hangul syllables in its NFD, accents stripped by its own
//     classification of marks (the library strips category Mn after NFD);
//   - Unigram (UGM): leading and trailing whitespace removed as
//     SentencePiece does (the library's Replace and Metaspace keep a
//     trailing ▁), and stacked combining marks normalized otherwise by the
//     charsmap.
func llamaCppDiffers(vocabType, text string) string {
	if strings.ContainsAny(text, "<[") {
		return "special tokens in the text"
	}
	switch vocabType {
	case "wpm":
		for _, w := range strings.Fields(text) {
			if len([]rune(w)) > 100 {
				return "a word of more than 100 characters"
			}
		}
		for _, r := range text {
			switch {
			case r >= 0xAC00 && r <= 0xD7A3:
				return "Hangul syllables"
			case unicode.Is(unicode.Mc, r) || (unicode.Is(unicode.Mn, r) && (r < 0x300 || r > 0x36F)):
				return "marks outside the Latin combining diacritics"
			}
		}
	case "ugm":
		if strings.TrimSpace(text) != text {
			return "leading or trailing whitespace"
		}
		prev := false
		for _, r := range text {
			mark := unicode.Is(unicode.Mn, r)
			if mark && prev {
				return "stacked combining marks"
			}
			prev = mark
		}
	}
	return ""
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// zeroEncoder returns a one-layer BERT-layout model of zeros with the
// config cfg (hidden_size, intermediate_size, vocab_size,
// max_position_embeddings, type_vocab_size).
func zeroEncoder(t *testing.T, cfg map[string]any) *weights.Graph {
	t.Helper()
	h, ff := int64(cfg["hidden_size"].(int)), int64(cfg["intermediate_size"].(int))
	shapes := map[string][]int64{
		"embeddings.word_embeddings.weight":       {int64(cfg["vocab_size"].(int)), h},
		"embeddings.position_embeddings.weight":   {int64(cfg["max_position_embeddings"].(int)), h},
		"embeddings.token_type_embeddings.weight": {int64(cfg["type_vocab_size"].(int)), h},
		"embeddings.LayerNorm.weight":             {h},
		"embeddings.LayerNorm.bias":               {h},
	}
	for _, n := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
		shapes["encoder.layer.0."+n+".weight"], shapes["encoder.layer.0."+n+".bias"] = []int64{h, h}, []int64{h}
	}
	for _, n := range []string{"attention.output.LayerNorm", "output.LayerNorm"} {
		shapes["encoder.layer.0."+n+".weight"], shapes["encoder.layer.0."+n+".bias"] = []int64{h}, []int64{h}
	}
	shapes["encoder.layer.0.intermediate.dense.weight"], shapes["encoder.layer.0.intermediate.dense.bias"] = []int64{ff, h}, []int64{ff}
	shapes["encoder.layer.0.output.dense.weight"], shapes["encoder.layer.0.output.dense.bias"] = []int64{h, ff}, []int64{h}
	g := weights.NewGraph()
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		size := int64(1)
		for _, d := range shapes[n] {
			size *= d
		}
		x, err := weights.FromFloat32(n, weights.F32, shapes[n], make([]float32, size))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := json.Marshal(cfg)
	g.Config = raw
	return g
}
