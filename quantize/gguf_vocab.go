package quantize

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hubmirror/hubmirror/formats/gguf"
)

// ErrGGUFVocab is wrapped by the errors about tokenizers that cannot be
// written as a llama.cpp vocabulary.
var ErrGGUFVocab = errors.New("quantize: tokenizer unsupported for GGUF")

// Token types of a GGUF vocabulary (tokenizer.ggml.token_type; llama.cpp's
// llama_token_type).
const (
	ggufTokenNormal      int32 = 1
	ggufTokenUnknown     int32 = 2
	ggufTokenControl     int32 = 3
	ggufTokenUserDefined int32 = 4
	ggufTokenUnused      int32 = 5
	ggufTokenByte        int32 = 6
)

// ggufPreTokenizers maps the Split regexes of a byte-level BPE
// tokenizer.json (Sequence [Split(regex), ..., ByteLevel(use_regex false)],
// the regexes joined by newlines) to the tokenizer.ggml.pre name with which
// llama.cpp (src/llama-vocab.cpp) splits text by the same expressions. The
// plain GPT-2 pre-tokenizer (ByteLevel with use_regex) is "gpt-2".
var ggufPreTokenizers = map[string]string{
	// Llama 3 (llama.cpp's LLAMA_VOCAB_PRE_TYPE_LLAMA3).
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: "llama-bpe",
	// Qwen 2, 2.5 and 3 (LLAMA_VOCAB_PRE_TYPE_QWEN2): digits one by one.
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: "qwen2",
	// Mistral's Tekken (LLAMA_VOCAB_PRE_TYPE_TEKKEN).
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`: "tekken",
	// GPT-4o's o200k (LLAMA_VOCAB_PRE_TYPE_GPT4O), used by Phi-4-mini.
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`: "gpt-4o",
	// DeepSeek V3 and R1 (LLAMA_VOCAB_PRE_TYPE_DEEPSEEK3_LLM): three Splits.
	`\p{N}{1,3}` + "\n" + "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+" + "\n" +
		"[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+": "deepseek-v3",
}

// ggufVocab is a tokenizer as a GGUF vocabulary.
type ggufVocab struct {
	// model is tokenizer.ggml.model: "llama" or "gpt2".
	model string
	// pre is tokenizer.ggml.pre (gpt2 only).
	pre    string
	tokens []string
	scores []float32 // llama only
	types  []int32
	merges []string // gpt2 only
	// special token ids, -1 when the tokenizer has none.
	bos, eos, unk, pad, sep int
	addBOS, addEOS          bool
	// addSpacePrefix is tokenizer.ggml.add_space_prefix (llama only).
	addSpacePrefix bool
	// padded is the number of [PAD<i>] tokens added to fill the embedding.
	padded int
	// templates are the chat templates: "" for tokenizer.chat_template,
	// a name for tokenizer.chat_template.<name>.
	templates map[string]string
}

// tokenizerJSON is what ggufVocab reads of tokenizer.json.
type tokenizerJSON struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         json.RawMessage `json:"model"`
}

// component is a tokenizer.json normalizer, pre-tokenizer or
// post-processor, with the fields ggufVocab looks at.
type component struct {
	Type          string          `json:"type"`
	Normalizers   []component     `json:"normalizers"`
	Pretokenizers []component     `json:"pretokenizers"`
	Pattern       json.RawMessage `json:"pattern"`
	Content       string          `json:"content"`
	Prepend       string          `json:"prepend"`
	Behavior      string          `json:"behavior"`
	Invert        bool            `json:"invert"`
	Replacement   string          `json:"replacement"`
	PrependScheme string          `json:"prepend_scheme"`
	// AddPrefixSpace is Metaspace's (before prepend_scheme) and
	// ByteLevel's.
	AddPrefixSpace *bool `json:"add_prefix_space"`
	UseRegex       *bool `json:"use_regex"`
	Single         []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
	Processors []component `json:"processors"`
}

func parseComponent(raw json.RawMessage) (*component, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	c := &component{}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, err
	}
	return c, nil
}

// flatten returns c's pre-tokenizers or normalizers, Sequences expanded.
func (c *component) flatten() []component {
	if c == nil {
		return nil
	}
	if c.Type != "Sequence" {
		return []component{*c}
	}
	var out []component
	for _, s := range append(append([]component{}, c.Pretokenizers...), c.Normalizers...) {
		out = append(out, s.flatten()...)
	}
	return out
}

// readGGUFVocab reads the tokenizer of a model directory (tokenizer.json,
// tokenizer_config.json, config.json for missing special ids) as a GGUF
// vocabulary of rows tokens (the embedding's rows: the ids the tokenizer
// leaves unused are filled with [PAD<id>] tokens, as llama.cpp's converter
// does).
func readGGUFVocab(dir string, rows int) (*ggufVocab, error) {
	tj, path, err := readTokenizerJSON(dir)
	if err != nil {
		return nil, err
	}
	var model struct {
		Type         string          `json:"type"`
		Vocab        json.RawMessage `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		UnkToken     *string         `json:"unk_token"`
		ByteFallback bool            `json:"byte_fallback"`
	}
	if err := json.Unmarshal(tj.Model, &model); err != nil {
		return nil, fmt.Errorf("%w: %s: model: %v", ErrGGUFVocab, path, err)
	}
	if model.Type != "BPE" {
		return nil, fmt.Errorf("%w: %s: model %q (GGUF output handles BPE tokenizers: SentencePiece-style or byte-level)", ErrGGUFVocab, path, model.Type)
	}
	var vocab map[string]int
	if err := json.Unmarshal(model.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("%w: %s: model.vocab: %v", ErrGGUFVocab, path, err)
	}
	merges, err := parseMerges(model.Merges)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: model.merges: %v", ErrGGUFVocab, path, err)
	}
	norm, err := parseComponent(tj.Normalizer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: normalizer: %v", ErrGGUFVocab, path, err)
	}
	pre, err := parseComponent(tj.PreTokenizer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: pre_tokenizer: %v", ErrGGUFVocab, path, err)
	}
	post, err := parseComponent(tj.PostProcessor)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: post_processor: %v", ErrGGUFVocab, path, err)
	}

	v := &ggufVocab{bos: -1, eos: -1, unk: -1, pad: -1, sep: -1, templates: map[string]string{}}
	switch {
	case hasType(pre, "ByteLevel"):
		v.model = "gpt2"
		if v.pre, err = ggufPreName(pre); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrGGUFVocab, path, err)
		}
	case hasType(pre, "Metaspace") || hasReplaceSpace(norm):
		v.model = "llama"
		v.addSpacePrefix = spacePrefix(pre, norm)
		// llama.cpp's SentencePiece tokenizer spells a character outside
		// the vocabulary with the byte tokens <0x00>..<0xFF>, and aborts
		// (std::out_of_range) when they are missing; the tokenizers library
		// gives <unk> there instead.
		if !model.ByteFallback {
			return nil, fmt.Errorf("%w: %s: a SentencePiece-style BPE without byte_fallback: llama.cpp aborts on any character outside its vocabulary", ErrGGUFVocab, path)
		}
		for b := 0; b < 256; b++ {
			if _, ok := vocab[fmt.Sprintf("<0x%02X>", b)]; !ok {
				return nil, fmt.Errorf("%w: %s: byte_fallback without the byte token <0x%02X>: llama.cpp aborts on text that needs it", ErrGGUFVocab, path, b)
			}
		}
	default:
		return nil, fmt.Errorf("%w: %s: a BPE tokenizer with neither a ByteLevel pre-tokenizer (GPT-2 style) nor Metaspace or a ▁ normalizer (SentencePiece style)", ErrGGUFVocab, path)
	}

	// Tokens by id: the vocabulary, then the added tokens.
	n := rows
	byID := make([]string, n)
	has := make([]bool, n)
	put := func(tok string, id int) error {
		if id < 0 || id >= n {
			return fmt.Errorf("%w: %s: token %q has id %d, beyond the embedding's %d rows", ErrGGUFVocab, path, tok, id, n)
		}
		byID[id], has[id] = tok, true
		return nil
	}
	for tok, id := range vocab {
		if err := put(tok, id); err != nil {
			return nil, err
		}
	}
	types := make([]int32, n)
	for i := range types {
		types[i] = ggufTokenNormal
	}
	for _, a := range tj.AddedTokens {
		if err := put(a.Content, a.ID); err != nil {
			return nil, err
		}
		if a.Special {
			types[a.ID] = ggufTokenControl
		} else {
			types[a.ID] = ggufTokenUserDefined
		}
	}
	for id := range byID {
		if !has[id] {
			byID[id] = fmt.Sprintf("[PAD%d]", id)
			types[id] = ggufTokenUnused
			v.padded++
		}
	}
	v.tokens, v.types = byID, types
	if model.UnkToken != nil {
		if id, ok := vocab[*model.UnkToken]; ok {
			v.unk = id
			types[id] = ggufTokenUnknown
		}
	}

	if v.model == "llama" {
		// llama.cpp's SentencePiece tokenizer merges the adjacent pair whose
		// concatenation is the token of highest score: scoring each token by
		// minus the rank of the first merge that makes it repeats the BPE
		// merge order. Tokens no merge makes score below every merge.
		v.scores = make([]float32, n)
		rank := map[string]int{}
		for i, m := range merges {
			t := m[0] + m[1]
			if _, ok := rank[t]; !ok {
				rank[t] = i
			}
		}
		byteTok := regexp.MustCompile(`^<0x[0-9A-F]{2}>$`)
		for id, tok := range byID {
			switch {
			case types[id] == ggufTokenUnused:
				v.scores[id] = -1000
			case model.ByteFallback && byteTok.MatchString(tok) && types[id] == ggufTokenNormal:
				types[id] = ggufTokenByte
			}
			if r, ok := rank[tok]; ok && types[id] == ggufTokenNormal {
				v.scores[id] = -float32(r)
			} else if types[id] != ggufTokenUnused && len([]rune(tok)) > 1 {
				v.scores[id] = -float32(len(merges)) - 1
			}
		}
	} else {
		v.merges = make([]string, len(merges))
		for i, m := range merges {
			if strings.Contains(m[0], " ") || strings.Contains(m[1], " ") {
				return nil, fmt.Errorf("%w: %s: merge %d (%q, %q) has a space, which GGUF's \"a b\" merges cannot hold", ErrGGUFVocab, path, i, m[0], m[1])
			}
			v.merges[i] = m[0] + " " + m[1]
		}
	}

	if err := v.readSpecials(dir, byID, post); err != nil {
		return nil, err
	}
	return v, nil
}

// parseMerges reads BPE merges written as "a b" strings or as [a, b] pairs.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, len(strs))
		for i, s := range strs {
			a, b, ok := strings.Cut(s, " ")
			if !ok {
				return nil, fmt.Errorf("merge %d %q is not two tokens", i, s)
			}
			out[i] = [2]string{a, b}
		}
		return out, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, err
	}
	out := make([][2]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("merge %d has %d parts", i, len(p))
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

func hasType(c *component, typ string) bool {
	for _, s := range c.flatten() {
		if s.Type == typ {
			return true
		}
	}
	return false
}

// hasReplaceSpace reports a normalizer that writes spaces as "▁" (the
// SentencePiece-converted tokenizers of Llama 2, Mistral and Gemma).
func hasReplaceSpace(c *component) bool {
	for _, s := range c.flatten() {
		if s.Type == "Replace" && s.Content == "▁" && strings.Contains(string(s.Pattern), `" "`) {
			return true
		}
	}
	return false
}

// spacePrefix reports whether the tokenizer puts a "▁" before the text:
// a Prepend("▁") normalizer or a Metaspace that prepends.
func spacePrefix(pre, norm *component) bool {
	for _, s := range norm.flatten() {
		if s.Type == "Prepend" && s.Prepend == "▁" {
			return true
		}
	}
	for _, s := range pre.flatten() {
		if s.Type != "Metaspace" {
			continue
		}
		switch s.PrependScheme {
		case "first", "always":
			return true
		case "never":
			return false
		}
		return s.AddPrefixSpace == nil || *s.AddPrefixSpace
	}
	return false
}

// ggufPreName returns the tokenizer.ggml.pre of a byte-level pre-tokenizer.
func ggufPreName(pre *component) (string, error) {
	parts := pre.flatten()
	if len(parts) == 1 && parts[0].Type == "ByteLevel" {
		if parts[0].UseRegex != nil && !*parts[0].UseRegex {
			return "", fmt.Errorf("a ByteLevel pre-tokenizer without its regex has no llama.cpp equivalent")
		}
		if parts[0].AddPrefixSpace != nil && *parts[0].AddPrefixSpace {
			return "", fmt.Errorf("ByteLevel add_prefix_space has no llama.cpp equivalent")
		}
		return "gpt-2", nil
	}
	if n := len(parts); n >= 2 && parts[n-1].Type == "ByteLevel" && parts[n-1].UseRegex != nil && !*parts[n-1].UseRegex &&
		(parts[n-1].AddPrefixSpace == nil || !*parts[n-1].AddPrefixSpace) {
		var regexes []string
		for _, sp := range parts[:n-1] {
			var p struct {
				Regex *string `json:"Regex"`
			}
			// Isolated keeps matches and the text between them; Removed
			// with invert keeps matches only, the same split when the
			// regex matches everything (o200k's does).
			split := sp.Type == "Split" && ((sp.Behavior == "Isolated" || sp.Behavior == "") && !sp.Invert || sp.Behavior == "Removed" && sp.Invert)
			if !split || json.Unmarshal(sp.Pattern, &p) != nil || p.Regex == nil {
				regexes = nil
				break
			}
			regexes = append(regexes, *p.Regex)
		}
		if regexes != nil {
			if name, ok := ggufPreTokenizers[strings.Join(regexes, "\n")]; ok {
				return name, nil
			}
			return "", fmt.Errorf("pre-tokenizer Split regex %q matches none llama.cpp knows (%s)", strings.Join(regexes, `", "`), knownPre())
		}
	}
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = p.Type
	}
	return "", fmt.Errorf("pre-tokenizer %s: llama.cpp's byte-level BPE takes ByteLevel, or Split(regex) then ByteLevel", strings.Join(names, " + "))
}

func knownPre() string {
	var names []string
	for _, n := range ggufPreTokenizers {
		names = append(names, n)
	}
	sort.Strings(names)
	return "known: gpt-2, " + strings.Join(names, ", ")
}

// readSpecials sets the special token ids, the add_bos/add_eos flags and
// the chat templates from tokenizer_config.json, the post-processor and
// config.json.
func (v *ggufVocab) readSpecials(dir string, byID []string, post *component) error {
	ids := map[string]int{}
	for id, t := range byID {
		if _, ok := ids[t]; !ok {
			ids[t] = id
		}
	}
	var tc map[string]json.RawMessage
	if raw, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json")); err == nil {
		if err := json.Unmarshal(raw, &tc); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrGGUFVocab, filepath.Join(dir, "tokenizer_config.json"), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tokenOf := func(raw json.RawMessage) (string, bool) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, true
		}
		var o struct {
			Content string `json:"content"`
		}
		if json.Unmarshal(raw, &o) == nil && o.Content != "" {
			return o.Content, true
		}
		return "", false
	}
	for _, f := range []struct {
		key string
		dst *int
	}{{"bos_token", &v.bos}, {"eos_token", &v.eos}, {"unk_token", &v.unk}, {"pad_token", &v.pad}, {"sep_token", &v.sep}} {
		if s, ok := tokenOf(tc[f.key]); ok {
			if id, ok := ids[s]; ok {
				*f.dst = id
			}
		}
	}
	// config.json's ids where tokenizer_config.json names none.
	var cfg map[string]json.RawMessage
	if raw, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		_ = json.Unmarshal(raw, &cfg)
	}
	for _, f := range []struct {
		key string
		dst *int
	}{{"bos_token_id", &v.bos}, {"eos_token_id", &v.eos}, {"pad_token_id", &v.pad}} {
		var id int
		if *f.dst < 0 && json.Unmarshal(cfg[f.key], &id) == nil && id >= 0 && id < len(byID) && cfg[f.key] != nil {
			*f.dst = id
		}
	}

	// add_bos / add_eos: what the post-processor adds to one text (what
	// the tokenizers library does), else tokenizer_config.json's flags.
	if single, ok := templateSingle(post); ok {
		if len(single) > 0 && single[0] != "" {
			if id, ok := ids[single[0]]; ok {
				v.addBOS, v.bos = true, id
			}
		}
		if last := single[len(single)-1]; len(single) > 1 && last != "" {
			if id, ok := ids[last]; ok {
				v.addEOS, v.eos = true, id
			}
		}
	} else {
		_ = json.Unmarshal(tc["add_bos_token"], &v.addBOS)
		_ = json.Unmarshal(tc["add_eos_token"], &v.addEOS)
	}
	if (v.addBOS && v.bos < 0) || (v.addEOS && v.eos < 0) {
		return fmt.Errorf("%w: %s: the tokenizer adds a bos/eos token it does not name", ErrGGUFVocab, dir)
	}

	// Chat templates: tokenizer_config.json's chat_template (a string, or
	// a list of named templates), else chat_template.jinja.
	if raw, ok := tc["chat_template"]; ok && string(raw) != "null" {
		var s string
		var named []struct {
			Name     string `json:"name"`
			Template string `json:"template"`
		}
		switch {
		case json.Unmarshal(raw, &s) == nil:
			v.templates[""] = s
		case json.Unmarshal(raw, &named) == nil:
			for _, t := range named {
				if t.Name == "default" {
					v.templates[""] = t.Template
				} else {
					v.templates[t.Name] = t.Template
				}
			}
		default:
			return fmt.Errorf("%w: tokenizer_config.json chat_template is neither a string nor a list of named templates", ErrGGUFVocab)
		}
	} else if b, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
		v.templates[""] = string(b)
	}
	return nil
}

// templateSingle returns the single-text template of a TemplateProcessing
// post-processor (inside a Sequence too): one entry per piece, the special
// token's content or "" for the text. ok is false without one.
func templateSingle(post *component) (pieces []string, ok bool) {
	if post == nil {
		return nil, false
	}
	for _, p := range append([]component{*post}, post.Processors...) {
		if p.Type != "TemplateProcessing" {
			continue
		}
		for _, s := range p.Single {
			if s.SpecialToken != nil {
				pieces = append(pieces, s.SpecialToken.ID)
			} else {
				pieces = append(pieces, "")
			}
		}
		return pieces, len(pieces) > 0
	}
	return nil, false
}

// metadata returns the tokenizer.* keys of the vocabulary.
func (v *ggufVocab) metadata() []gguf.KV {
	md := []gguf.KV{{Key: "tokenizer.ggml.model", Value: v.model}}
	if v.pre != "" {
		md = append(md, gguf.KV{Key: "tokenizer.ggml.pre", Value: v.pre})
	}
	md = append(md, gguf.KV{Key: "tokenizer.ggml.tokens", Value: v.tokens})
	if v.scores != nil {
		md = append(md, gguf.KV{Key: "tokenizer.ggml.scores", Value: v.scores})
	}
	md = append(md, gguf.KV{Key: "tokenizer.ggml.token_type", Value: v.types})
	if v.merges != nil {
		md = append(md, gguf.KV{Key: "tokenizer.ggml.merges", Value: v.merges})
	}
	for _, s := range []struct {
		key string
		id  int
	}{{"bos", v.bos}, {"eos", v.eos}, {"unknown", v.unk}, {"padding", v.pad}, {"seperator", v.sep}} {
		// "seperator" is llama.cpp's spelling of the key.
		if s.id >= 0 {
			md = append(md, gguf.KV{Key: "tokenizer.ggml." + s.key + "_token_id", Value: uint32(s.id)})
		}
	}
	md = append(md,
		gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: v.addBOS},
		gguf.KV{Key: "tokenizer.ggml.add_eos_token", Value: v.addEOS})
	if v.model == "llama" {
		md = append(md, gguf.KV{Key: "tokenizer.ggml.add_space_prefix", Value: v.addSpacePrefix})
	}
	names := make([]string, 0, len(v.templates))
	for n := range v.templates {
		names = append(names, n)
	}
	sort.Strings(names)
	var named []string
	for _, n := range names {
		if n == "" {
			md = append(md, gguf.KV{Key: "tokenizer.chat_template", Value: v.templates[n]})
			continue
		}
		named = append(named, n)
		key := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			if r >= 'A' && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return '_'
		}, n)
		md = append(md, gguf.KV{Key: "tokenizer.chat_template." + key, Value: v.templates[n]})
	}
	if len(named) > 0 {
		md = append(md, gguf.KV{Key: "tokenizer.chat_templates", Value: named})
	}
	return md
}

// describe says in a line what the vocabulary holds (for GGUFReport).
func (v *ggufVocab) describe() string {
	s := fmt.Sprintf("%s, %d tokens", v.model, len(v.tokens))
	if v.pre != "" {
		s += ", pre-tokenizer " + v.pre
	}
	if v.merges != nil {
		s += fmt.Sprintf(", %d merges", len(v.merges))
	}
	if v.padded > 0 {
		s += fmt.Sprintf(" (%d [PAD] tokens fill the embedding)", v.padded)
	}
	if v.addBOS {
		s += ", adds bos"
	}
	if v.addEOS {
		s += ", adds eos"
	}
	if len(v.templates) > 0 {
		s += ", chat template"
	}
	return s
}

// readTokenizerJSON reads the tokenizer.json of the model directory dir,
// and its path.
func readTokenizerJSON(dir string) (*tokenizerJSON, string, error) {
	path := filepath.Join(dir, "tokenizer.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, path, fmt.Errorf("%w: %s has no tokenizer.json (llama.cpp needs the vocabulary; --no-vocab writes the file without one)", ErrGGUFVocab, dir)
		}
		return nil, path, err
	}
	var tj tokenizerJSON
	if err := json.Unmarshal(raw, &tj); err != nil {
		return nil, path, fmt.Errorf("%w: %s: %v", ErrGGUFVocab, path, err)
	}
	return &tj, path, nil
}
