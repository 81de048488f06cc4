package quantize

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/formats/gguf"
)

// The GGUF vocabulary is checked against llama.cpp itself by
// internal/llamacpp (same ids for a text); these tests pin what is written.

func metadataOf(md []gguf.KV) map[string]any {
	m := map[string]any{}
	for _, kv := range md {
		m[kv.Key] = kv.Value
	}
	return m
}

// byteFallbackDir writes llama-tiny-st's tokenizer with byte fallback:
// the byte tokens <0x00>..<0xFF> at ids 256..511 (without bytes: drop
// byte tokens from missing on).
func byteFallbackDir(t *testing.T, fallback bool, missing int) string {
	t.Helper()
	src := filepath.Join("..", "testdata", "models", "llama-tiny-st")
	raw, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	model := doc["model"].(map[string]any)
	vocab := model["vocab"].(map[string]any)
	for b := 0; b < missing; b++ {
		vocab[fmt.Sprintf("<0x%02X>", b)] = 256 + b
	}
	model["byte_fallback"] = fallback
	dir := t.TempDir()
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	tc, err := os.ReadFile(filepath.Join(src, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), tc, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestGGUFVocabSentencePieceStyle(t *testing.T) {
	dir := byteFallbackDir(t, true, 256)
	v, err := readGGUFVocab(dir, 516) // 4 rows more than the tokenizer's 512
	if err != nil {
		t.Fatal(err)
	}
	if v.model != "llama" || v.pre != "" || len(v.tokens) != 516 || v.padded != 4 || v.merges != nil {
		t.Fatalf("model %q pre %q, %d tokens (%d padded), %d merges", v.model, v.pre, len(v.tokens), v.padded, len(v.merges))
	}
	if v.tokens[0] != "<unk>" || v.types[0] != ggufTokenUnknown || v.types[1] != ggufTokenControl || v.types[2] != ggufTokenControl ||
		v.types[100] != ggufTokenNormal || v.tokens[513] != "[PAD513]" || v.types[513] != ggufTokenUnused ||
		v.tokens[256+9] != "<0x09>" || v.types[256+9] != ggufTokenByte {
		t.Errorf("tokens %q types %v ... %q %v, %q %v", v.tokens[:3], v.types[:3], v.tokens[513], v.types[513], v.tokens[265], v.types[265])
	}
	if v.bos != 1 || v.eos != 2 || v.unk != 0 || !v.addBOS || v.addEOS || !v.addSpacePrefix {
		t.Errorf("bos %d eos %d unk %d add_bos %v add_eos %v add_space_prefix %v", v.bos, v.eos, v.unk, v.addBOS, v.addEOS, v.addSpacePrefix)
	}
	// A token made by merge r scores -r, so that llama.cpp's
	// highest-score-first merging follows the merge order.
	var doc struct {
		Model struct {
			Vocab  map[string]int `json:"vocab"`
			Merges [][2]string    `json:"merges"`
		} `json:"model"`
	}
	raw, _ := os.ReadFile(filepath.Join("..", "testdata", "models", "llama-tiny-st", "tokenizer.json"))
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for r, m := range doc.Model.Merges[:20] {
		id := doc.Model.Vocab[m[0]+m[1]]
		if v.scores[id] != -float32(r) {
			t.Errorf("merge %d (%q) makes token %d, scored %v", r, m[0]+m[1], id, v.scores[id])
		}
	}
	md := metadataOf(v.metadata())
	for _, k := range []string{"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
		"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token",
		"tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix"} {
		if _, ok := md[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	if _, ok := md["tokenizer.ggml.merges"]; ok {
		t.Error("merges written for a SentencePiece-style vocabulary")
	}
}

// byteLevelDir writes a byte-level BPE tokenizer (Qwen 2 style) with the
// pre-tokenizer pre and a tokenizer_config.json.
func byteLevelDir(t *testing.T, pre string, extra map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	doc := map[string]any{
		"version": "1.0",
		"added_tokens": []any{
			map[string]any{"id": 5, "content": "<|endoftext|>", "special": true},
			map[string]any{"id": 6, "content": "<tool>", "special": false},
		},
		"normalizer":     map[string]any{"type": "NFC"},
		"pre_tokenizer":  json.RawMessage(pre),
		"post_processor": map[string]any{"type": "ByteLevel"},
		"model": map[string]any{"type": "BPE", "vocab": map[string]int{"a": 0, "b": 1, "Ġ": 2, "ab": 3, "Ġab": 4},
			"merges": []string{"a b", "Ġ ab"}},
	}
	for k, v := range extra {
		doc[k] = v
	}
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	tc := `{"eos_token":"<|endoftext|>","pad_token":{"content":"<|endoftext|>"},"bos_token":null,
		"chat_template":[{"name":"default","template":"{{ messages }}"},{"name":"tool_use","template":"{{ tools }}"}]}`
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(tc), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const qwen2Pre = `{"type":"Sequence","pretokenizers":[
	{"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},
	{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}]}`

func TestGGUFVocabByteLevel(t *testing.T) {
	v, err := readGGUFVocab(byteLevelDir(t, qwen2Pre, nil), 8)
	if err != nil {
		t.Fatal(err)
	}
	if v.model != "gpt2" || v.pre != "qwen2" || !slices.Equal(v.merges, []string{"a b", "Ġ ab"}) || v.scores != nil {
		t.Fatalf("model %q pre %q merges %q scores %v", v.model, v.pre, v.merges, v.scores)
	}
	if v.types[5] != ggufTokenControl || v.types[6] != ggufTokenUserDefined || v.types[7] != ggufTokenUnused || v.types[3] != ggufTokenNormal {
		t.Errorf("types %v", v.types)
	}
	if v.eos != 5 || v.pad != 5 || v.bos != -1 || v.addBOS || v.addEOS {
		t.Errorf("eos %d pad %d bos %d add_bos %v add_eos %v", v.eos, v.pad, v.bos, v.addBOS, v.addEOS)
	}
	md := metadataOf(v.metadata())
	if md["tokenizer.chat_template"] != "{{ messages }}" || md["tokenizer.chat_template.tool_use"] != "{{ tools }}" ||
		!slices.Equal(md["tokenizer.chat_templates"].([]string), []string{"tool_use"}) {
		t.Errorf("chat templates: %v %v %v", md["tokenizer.chat_template"], md["tokenizer.chat_template.tool_use"], md["tokenizer.chat_templates"])
	}
	if _, ok := md["tokenizer.ggml.bos_token_id"]; ok {
		t.Error("bos id written for a tokenizer without one")
	}
	if _, ok := md["tokenizer.ggml.add_space_prefix"]; ok {
		t.Error("add_space_prefix written for gpt2")
	}

	// The plain GPT-2 pre-tokenizer, and Llama 3's.
	if v, err := readGGUFVocab(byteLevelDir(t, `{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}`, nil), 8); err != nil || v.pre != "gpt-2" {
		t.Errorf("GPT-2: %v %v", v, err)
	}
	llama3 := strings.Replace(qwen2Pre, `\\p{N}|`, `\\p{N}{1,3}|`, 1)
	if v, err := readGGUFVocab(byteLevelDir(t, llama3, nil), 8); err != nil || v.pre != "llama-bpe" {
		t.Errorf("Llama 3: %v %v", v, err)
	}
}

func TestGGUFVocabRefusals(t *testing.T) {
	unknown := strings.Replace(qwen2Pre, `\\p{N}|`, `\\p{N}{1,5}|`, 1)
	for name, c := range map[string]struct {
		dir  string
		rows int
		msg  string
	}{
		"unknown regex":    {byteLevelDir(t, unknown, nil), 8, `\p{N}{1,5}`},
		"prefix space":     {byteLevelDir(t, `{"type":"ByteLevel","add_prefix_space":true}`, nil), 8, "add_prefix_space"},
		"whitespace split": {byteLevelDir(t, `{"type":"Whitespace"}`, nil), 8, "neither a ByteLevel"},
		"too few rows":     {byteLevelDir(t, qwen2Pre, nil), 5, "beyond the embedding's 5 rows"},
		"wordpiece":        {byteLevelDir(t, qwen2Pre, map[string]any{"model": map[string]any{"type": "WordPiece", "vocab": map[string]int{}}}), 8, `model "WordPiece"`},
		"no tokenizer":     {t.TempDir(), 8, "no tokenizer.json"},
		// llama.cpp aborts on characters outside an SPM vocabulary
		// without byte tokens.
		"no byte fallback": {byteFallbackDir(t, false, 0), 512, "without byte_fallback"},
		"no byte 0x80":     {byteFallbackDir(t, true, 0x80), 512, "<0x80>"},
	} {
		_, err := readGGUFVocab(c.dir, c.rows)
		if !errors.Is(err, ErrGGUFVocab) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v (want %q)", name, err, c.msg)
		}
	}
}

// TestGGUFFamilies checks each family's layout: llama.cpp's architecture
// and tensor names, q/k permuted for the llama architecture only, Gemma's
// norms shifted by one, its hyperparameters.
func TestGGUFFamilies(t *testing.T) {
	for _, c := range []struct {
		fixture, arch string
		config        map[string]any
		permuted      bool
		shifted       float32
		names         []string
		keys          map[string]any
	}{
		{"mistral-bin", "llama", map[string]any{"sliding_window": nil}, true, 0, []string{"blk.0.attn_q.weight", "output.weight"},
			map[string]any{"llama.attention.key_length": uint32(16), "llama.attention.head_count_kv": uint32(1)}},
		{"qwen2-bias-st", "qwen2", nil, false, 0, []string{"blk.1.attn_k.bias", "blk.0.ffn_norm.weight"},
			map[string]any{"qwen2.rope.freq_base": float32(1e6)}},
		{"qwen3-st", "qwen3", map[string]any{"use_sliding_window": false}, false, 0, []string{"blk.0.attn_q_norm.weight", "blk.2.attn_k_norm.weight"},
			map[string]any{"qwen3.attention.key_length": uint32(16)}},
		{"gemma-st", "gemma", nil, false, 1, []string{"blk.0.attn_norm.weight", "blk.0.ffn_norm.weight"},
			map[string]any{"gemma.attention.head_count_kv": uint32(1)}},
		{"gemma2-st", "gemma2", map[string]any{"query_pre_attn_scalar": 16}, false, 1,
			[]string{"blk.0.post_attention_norm.weight", "blk.0.ffn_norm.weight", "blk.0.post_ffw_norm.weight"},
			map[string]any{"gemma2.attn_logit_softcapping": float32(3), "gemma2.final_logit_softcapping": float32(4), "gemma2.attention.sliding_window": uint32(4)}},
		{"gemma3-st", "gemma3", map[string]any{"sliding_window_pattern": 6, "rope_local_base_freq": 10000}, false, 1,
			[]string{"blk.3.attn_q_norm.weight", "blk.3.post_ffw_norm.weight"},
			map[string]any{"gemma3.rope.freq_base": float32(1e6), "gemma3.rope.scaling.type": "linear", "gemma3.rope.scaling.factor": float32(4),
				"gemma3.attention.sliding_window": uint32(5)}},
	} {
		t.Run(c.fixture, func(t *testing.T) {
			g, err := formats.Open(filepath.Join("..", "testdata", "models", c.fixture))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			var raw map[string]any
			if err := json.Unmarshal(g.Config, &raw); err != nil {
				t.Fatal(err)
			}
			for k, v := range c.config {
				if v == nil {
					delete(raw, k)
				} else {
					raw[k] = v
				}
			}
			b, _ := json.Marshal(raw)
			cfg, err := arch.ParseConfig(b)
			if err != nil {
				t.Fatal(err)
			}
			m, err := GGUF(g, cfg, GGUFOptions{NoVocab: true, Type: "f16"})
			if err != nil {
				t.Fatal(err)
			}
			md := metadataOf(m.Metadata)
			if md["general.architecture"] != c.arch || m.Report.Architecture != c.arch {
				t.Errorf("architecture %v", md["general.architecture"])
			}
			for k, want := range c.keys {
				if md[k] != want {
					t.Errorf("%s = %v (%T), want %v", k, md[k], md[k], want)
				}
			}
			var names []string
			for _, x := range m.Report.Tensors {
				names = append(names, x.GGUF)
				isQK := strings.Contains(x.Name, "q_proj") || strings.Contains(x.Name, "k_proj")
				if x.Permuted != (isQK && c.permuted) {
					t.Errorf("%s permuted %v", x.Name, x.Permuted)
				}
				isNorm := len(x.Shape) == 1 && strings.HasSuffix(x.Name, "norm.weight")
				if want := map[bool]float32{true: c.shifted}[isNorm]; x.Shifted != want {
					t.Errorf("%s shifted by %v, want %v", x.Name, x.Shifted, want)
				}
				if len(x.Shape) == 2 && x.To != "F16" || len(x.Shape) == 1 && x.To != "F32" {
					t.Errorf("%s %v is %s", x.Name, x.Shape, x.To)
				}
			}
			for _, n := range c.names {
				if !slices.Contains(names, n) {
					t.Errorf("no %s in %v", n, names)
				}
			}
		})
	}
}

// TestGGUFPreTokenizerNames reads the pre-tokenizers of the reference
// tokenizers (tokenizer/testdata: the real models' tokenizer.json files)
// and checks the llama.cpp names they get, and the space prefix of the
// SentencePiece-style ones.
func TestGGUFPreTokenizerNames(t *testing.T) {
	for name, want := range map[string]string{
		"llama3": "llama-bpe", "qwen3": "qwen2", "gpt2": "gpt-2", "gpt4o": "gpt-4o", "deepseek_v3": "deepseek-v3",
		"llama2": "spm prefix", "gemma3": "spm",
	} {
		f, err := os.Open(filepath.Join("..", "tokenizer", "testdata", "reference", "tokenizers", name+".json.gz"))
		if err != nil {
			t.Fatal(err)
		}
		z, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Normalizer   json.RawMessage `json:"normalizer"`
			PreTokenizer json.RawMessage `json:"pre_tokenizer"`
		}
		err = json.NewDecoder(z).Decode(&doc)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		pre, err1 := parseComponent(doc.PreTokenizer)
		norm, err2 := parseComponent(doc.Normalizer)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		var got string
		switch {
		case hasType(pre, "ByteLevel"):
			if got, err = ggufPreName(pre); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case hasType(pre, "Metaspace") || hasReplaceSpace(norm):
			got = "spm"
			if spacePrefix(pre, norm) {
				got += " prefix"
			}
		}
		if got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}
