package quantize

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/formats/gguf"
)

// The encoder GGUF files are run by llama.cpp in internal/llamacpp
// (embeddings and tokenization against the forward pass and the tokenizer
// package); these tests pin what is written, without llama.cpp.

// encoderGGUF writes the GGUF of fixture with opts.
func encoderGGUF(t *testing.T, fixture string, opts GGUFOptions) *GGUFModel {
	t.Helper()
	dir := filepath.Join("../testdata/models", fixture)
	g, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	m, err := GGUF(g, cfg, opts)
	if err != nil {
		t.Fatalf("%s: %v", fixture, err)
	}
	return m
}

func kv(md []gguf.KV, key string) any {
	for _, x := range md {
		if x.Key == key {
			return x.Value
		}
	}
	return nil
}

func tensorOf(m *GGUFModel, name string) *gguf.Tensor {
	for _, t := range m.Tensors {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func TestGGUFBert(t *testing.T) {
	dir := "../testdata/models/bert-cls-st"
	m := encoderGGUF(t, "bert-cls-st", GGUFOptions{Type: "f16", TokenizerDir: dir})
	for key, want := range map[string]any{
		"general.architecture":                    "bert",
		"bert.context_length":                     uint32(40),
		"bert.embedding_length":                   uint32(32),
		"bert.feed_forward_length":                uint32(64),
		"bert.block_count":                        uint32(2),
		"bert.attention.causal":                   false,
		"bert.attention.layer_norm_epsilon":       float32(1e-12),
		"tokenizer.ggml.token_type_count":         uint32(2),
		"tokenizer.ggml.model":                    "bert",
		"tokenizer.ggml.bos_token_id":             uint32(2), // [CLS]
		"tokenizer.ggml.seperator_token_id":       uint32(3), // [SEP]
		"tokenizer.ggml.unknown_token_id":         uint32(1),
		"tokenizer.ggml.mask_token_id":            uint32(4),
		"tokenizer.ggml.normalizer.lowercase":     true,
		"tokenizer.ggml.normalizer.strip_accents": true,
	} {
		if got := kv(m.Metadata, key); got != want {
			t.Errorf("%s = %v (%T), want %v (%T)", key, got, got, want, want)
		}
	}
	if kv(m.Metadata, "bert.pooling_type") != nil {
		t.Errorf("pooling_type written without a sentence-transformers Pooling module")
	}
	// Phantom space: words start with ▁, ## continuations lose it.
	tokens := kv(m.Metadata, "tokenizer.ggml.tokens").([]string)
	for id, want := range map[int]string{0: "[PAD]", 2: "[CLS]", 5: "▁!", 42: "▁a", 71: "i", 131: "▁case", 119: "▁an"} {
		if tokens[id] != want {
			t.Errorf("token %d = %q, want %q", id, tokens[id], want)
		}
	}
	for name, want := range map[string]string{"token_embd.weight": "F16", "position_embd.weight": "F32", "token_types.weight": "F32",
		"token_embd_norm.bias": "F32", "blk.1.attn_q.weight": "F16", "blk.1.attn_output_norm.weight": "F32",
		"blk.0.ffn_up.weight": "F16", "blk.0.ffn_down.bias": "F32", "blk.1.layer_output_norm.bias": "F32"} {
		if x := tensorOf(m, name); x == nil || x.Type.String() != want {
			t.Errorf("%s: %v, want %s", name, x, want)
		}
	}
	// The sequence classification head: the pooler (dense, tanh) as cls,
	// the classifier as cls.output, which llama.cpp's rank pooling runs.
	for _, c := range []struct{ hf, gguf string }{{"bert.pooler.dense.weight", "cls.weight"}, {"bert.pooler.dense.bias", "cls.bias"},
		{"classifier.weight", "cls.output.weight"}, {"classifier.bias", "cls.output.bias"}} {
		if !slices.ContainsFunc(m.Report.Tensors, func(x GGUFTensor) bool { return x.Name == c.hf && x.GGUF == c.gguf }) {
			t.Errorf("%s not written as %s", c.hf, c.gguf)
		}
	}
	if got := kv(m.Metadata, "bert.classifier.output_labels"); !slices.Equal(got.([]string), []string{"NEGATIVE", "NEUTRAL", "POSITIVE"}) {
		t.Errorf("classifier labels %v", got)
	}
	if n := len(m.Tensors); n != 5+2*16+4 {
		t.Errorf("%d tensors, want %d", n, 5+2*16+4)
	}
	// Without a classifier the pooler is dropped.
	m = encoderGGUF(t, "bert-bin", GGUFOptions{Type: "f16", NoVocab: true})
	if !slices.Contains(m.Report.Skipped, "pooler.dense.weight") || tensorOf(m, "cls.weight") != nil ||
		kv(m.Metadata, "bert.classifier.output_labels") != nil {
		t.Errorf("BertModel: pooler written (skipped %v)", m.Report.Skipped)
	}
}

// RoBERTa's positions start at padding_idx + 1 = 2: llama.cpp's table
// starts there.
func TestGGUFRobertaPositions(t *testing.T) {
	m := encoderGGUF(t, "roberta-mlm-st", GGUFOptions{Type: "f32", NoVocab: true})
	if got := kv(m.Metadata, "bert.context_length"); got != uint32(40) {
		t.Errorf("context_length %v, want 40 (42 - 2)", got)
	}
	g, err := formats.Open("../testdata/models/roberta-mlm-st")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	src, _ := g.Tensor("roberta.embeddings.position_embeddings.weight")
	if src == nil {
		src, _ = g.Tensor("embeddings.position_embeddings.weight")
	}
	want, err := src.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	pos := tensorOf(m, "position_embd.weight")
	if pos == nil || !slices.Equal(pos.Dims, []uint64{32, 40}) {
		t.Fatalf("position_embd: %v", pos)
	}
	b, err := pos.Data.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40*32; i++ {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])); got != want[2*32+i] {
			t.Fatalf("position_embd element %d = %g, want the source's row %d: %g", i, got, 2+i/32, want[2*32+i])
		}
	}
	for _, s := range []string{"lm_head.dense.weight", "lm_head.bias"} {
		if !slices.Contains(m.Report.Skipped, s) {
			t.Errorf("%s not skipped: %v", s, m.Report.Skipped)
		}
	}
}

func TestGGUFModernBert(t *testing.T) {
	m := encoderGGUF(t, "modernbert-mlm-st", GGUFOptions{Type: "q8_0", NoVocab: true})
	for key, want := range map[string]any{
		"general.architecture":                         "modern-bert",
		"modern-bert.attention.sliding_window":         uint32(8),
		"modern-bert.attention.sliding_window_pattern": uint32(3),
		"modern-bert.rope.freq_base":                   float32(160000),
		"modern-bert.rope.freq_base_swa":               float32(10000),
		"modern-bert.feed_forward_length":              uint32(48),
		"modern-bert.attention.layer_norm_epsilon":     float32(1e-5),
		"modern-bert.attention.causal":                 false,
		"modern-bert.hidden_activation":                "gelu",
		"modern-bert.vocab_size":                       uint32(104),
		"modern-bert.context_length":                   uint32(64),
		"tokenizer.ggml.model":                         "no_vocab",
	} {
		if got := kv(m.Metadata, key); got != want {
			t.Errorf("%s = %v (%T), want %v (%T)", key, got, got, want, want)
		}
	}
	if tensorOf(m, "blk.0.attn_norm.weight") != nil || tensorOf(m, "blk.1.attn_norm.weight") == nil {
		t.Errorf("attn_norm: layer 0 has none (identity), the others one")
	}
	if x := tensorOf(m, "blk.2.ffn_up.weight"); x == nil || !slices.Equal(x.Dims, []uint64{32, 96}) || x.Type != gguf.TypeQ8_0 {
		t.Errorf("ffn_up (GeGLU input and gate halves): %v", x)
	}
	// Rows of 48 do not split into Q8_0 blocks: F16.
	if x := tensorOf(m, "blk.2.ffn_down.weight"); x == nil || x.Type != gguf.TypeF16 {
		t.Errorf("ffn_down: %v", x)
	}
	if tensorOf(m, "output_norm.weight") == nil || !slices.Contains(m.Report.Skipped, "head.dense.weight") {
		t.Errorf("final_norm not written as output_norm or head not skipped: %v", m.Report.Skipped)
	}
}

// The pooling of a sentence-transformers model is llama.cpp's
// pooling_type; a pooling llama.cpp does not have is refused.
func TestGGUFEncoderPooling(t *testing.T) {
	m := encoderGGUF(t, "st-bert-mean", GGUFOptions{Type: "f32", NoVocab: true, TokenizerDir: "../testdata/models/st-bert-mean"})
	if got := kv(m.Metadata, "bert.pooling_type"); got != uint32(1) {
		t.Errorf("pooling_type %v, want 1 (mean)", got)
	}
	dir := "../testdata/models/st-bert-wmean-dense"
	g, err := formats.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GGUF(g, cfg, GGUFOptions{Type: "f32", NoVocab: true, TokenizerDir: dir}); !errors.Is(err, ErrGGUFUnsupported) {
		t.Errorf("weighted mean pooling: %v, want ErrGGUFUnsupported", err)
	}
}

// A Unigram tokenizer is llama.cpp's t5 vocabulary: pieces and scores,
// the Precompiled normalizer's charsmap, the whitespace flags.
func TestGGUFUnigramVocab(t *testing.T) {
	f, err := os.Open("../tokenizer/testdata/reference/tokenizers/unigram-precompiled.json.gz")
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
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Normalizer struct {
			Normalizers []struct {
				Charsmap string `json:"precompiled_charsmap"`
			} `json:"normalizers"`
		} `json:"normalizer"`
		Model struct {
			Vocab [][2]any `json:"vocab"`
		} `json:"model"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	v, err := readGGUFEncoderVocab(dir, 610)
	if err != nil {
		t.Fatal(err)
	}
	md := v.metadata()
	charsmap, _ := base64.StdEncoding.DecodeString(doc.Normalizer.Normalizers[0].Charsmap)
	if got, _ := kv(md, "tokenizer.ggml.precompiled_charsmap").([]byte); len(charsmap) == 0 || !slices.Equal(got, charsmap) {
		t.Errorf("precompiled_charsmap: %d bytes, want the normalizer's %d", len(got), len(charsmap))
	}
	for key, want := range map[string]any{
		"tokenizer.ggml.model":                    "t5",
		"tokenizer.ggml.add_space_prefix":         true, // prepend_scheme always
		"tokenizer.ggml.remove_extra_whitespaces": true, // Replace " {2,}" -> " "
		"tokenizer.ggml.unknown_token_id":         uint32(0),
		"tokenizer.ggml.eos_token_id":             uint32(2),
		"tokenizer.ggml.add_eos_token":            true, // $A </s>
		"tokenizer.ggml.add_bos_token":            false,
	} {
		if got := kv(md, key); got != want {
			t.Errorf("%s = %v (%T), want %v (%T)", key, got, got, want, want)
		}
	}
	tokens := kv(md, "tokenizer.ggml.tokens").([]string)
	scores := kv(md, "tokenizer.ggml.scores").([]float32)
	types := kv(md, "tokenizer.ggml.token_type").([]int32)
	for id, p := range doc.Model.Vocab {
		if tokens[id] != p[0].(string) || scores[id] != float32(p[1].(float64)) {
			t.Fatalf("piece %d: %q %g, want %q %g", id, tokens[id], scores[id], p[0], p[1])
		}
	}
	if types[0] != ggufTokenUnknown || types[2] != ggufTokenControl || types[3] != ggufTokenNormal || types[605] != ggufTokenUnused || tokens[605] != "[PAD605]" {
		t.Errorf("types %v (tokens 605: %q)", []int32{types[0], types[2], types[3], types[605]}, tokens[605])
	}
}

// Tokenizers llama.cpp's encoder tokenizers cannot reproduce are refused.
func TestGGUFEncoderVocabRefusals(t *testing.T) {
	raw, err := os.ReadFile("../testdata/models/bert-cls-st/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(doc map[string]any){
		"prefix":       func(doc map[string]any) { doc["model"].(map[string]any)["continuing_subword_prefix"] = "@@" },
		"pretokenizer": func(doc map[string]any) { doc["pre_tokenizer"] = map[string]any{"type": "Whitespace"} },
		"normalizer":   func(doc map[string]any) { doc["normalizer"] = map[string]any{"type": "NFKC"} },
		"no cls": func(doc map[string]any) {
			doc["post_processor"] = nil
			m := doc["model"].(map[string]any)["vocab"].(map[string]any)
			delete(m, "[CLS]")
			doc["added_tokens"] = []any{}
		},
	} {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		change(doc)
		dir := t.TempDir()
		b, _ := json.Marshal(doc)
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readGGUFEncoderVocab(dir, 150); !errors.Is(err, ErrGGUFVocab) {
			t.Errorf("%s: %v, want ErrGGUFVocab", name, err)
		}
	}
}
