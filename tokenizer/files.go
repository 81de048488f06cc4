package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoTokenizer reports a model directory without tokenizer files.
var ErrNoTokenizer = errors.New("no tokenizer")

// LoadDir loads the tokenizer of a model directory: tokenizer.json, else
// vocab.txt (BERT WordPiece) or vocab.json + merges.txt (GPT-2 / RoBERTa
// byte-level BPE), configured from tokenizer_config.json the way
// transformers converts these files.
func LoadDir(dir string) (*Tokenizer, error) {
	p := filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(p); err == nil {
		return LoadFile(p)
	}
	bert := exists(filepath.Join(dir, "vocab.txt"))
	if !bert && !(exists(filepath.Join(dir, "vocab.json")) && exists(filepath.Join(dir, "merges.txt"))) {
		return nil, fmt.Errorf("%s: %w (no tokenizer.json, vocab.txt or vocab.json + merges.txt)", dir, ErrNoTokenizer)
	}
	cfg, err := readTokenizerConfig(dir)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if bert {
		doc, err = bertDocument(dir, cfg)
	} else {
		doc, err = byteLevelBPEDocument(dir, cfg)
	}
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	t, err := Load(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return t, nil
}

// FileNames are the files of a model directory LoadDir may read (and the
// tokenizer files a model repo may have beside them: special_tokens_map.json,
// added_tokens.json, SentencePiece's tokenizer.model), for fetching a
// model's tokenizer without its weights.
func FileNames() []string {
	return []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
		"vocab.txt", "vocab.json", "merges.txt", "tokenizer.model"}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// tokenizerConfig is what LoadDir reads of tokenizer_config.json.
type tokenizerConfig struct {
	raw   map[string]json.RawMessage
	class string
}

func readTokenizerConfig(dir string) (*tokenizerConfig, error) {
	c := &tokenizerConfig{raw: map[string]json.RawMessage{}}
	p := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &c.raw); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	_ = json.Unmarshal(c.raw["tokenizer_class"], &c.class)
	return c, nil
}

func (c *tokenizerConfig) boolOr(key string, def bool) bool {
	var b *bool
	if json.Unmarshal(c.raw[key], &b) != nil || b == nil {
		return def
	}
	return *b
}

// token returns a special token setting: a string or an AddedToken object.
func (c *tokenizerConfig) token(key, def string) map[string]any {
	t := map[string]any{"content": def, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
	raw, ok := c.raw[key]
	if !ok {
		if def == "" {
			return nil
		}
		return t
	}
	var s *string
	if json.Unmarshal(raw, &s) == nil {
		if s == nil {
			return nil
		}
		t["content"] = *s
		return t
	}
	var obj map[string]any
	if json.Unmarshal(raw, &obj) != nil {
		return t
	}
	for _, k := range []string{"content", "single_word", "lstrip", "rstrip", "normalized"} {
		if v, ok := obj[k]; ok {
			t[k] = v
		}
	}
	return t
}

// addedTokens lists the special tokens of the config plus its
// added_tokens_decoder, in id order for the latter.
func (c *tokenizerConfig) addedTokens(specials []map[string]any) []map[string]any {
	var out []map[string]any
	seen := map[string]bool{}
	var dec map[string]map[string]any
	if json.Unmarshal(c.raw["added_tokens_decoder"], &dec) == nil && len(dec) > 0 {
		ids := make([]int, 0, len(dec))
		byID := map[int]map[string]any{}
		for k, v := range dec {
			id, err := strconv.Atoi(k)
			if err != nil {
				continue
			}
			ids = append(ids, id)
			byID[id] = v
		}
		sort.Ints(ids)
		for _, id := range ids {
			v := byID[id]
			v["id"] = id
			if s, ok := v["content"].(string); ok && !seen[s] {
				seen[s] = true
				out = append(out, v)
			}
		}
	}
	for _, t := range specials {
		if t == nil {
			continue
		}
		s, _ := t["content"].(string)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, t)
	}
	return out
}

func readVocabTxt(p string) (map[string]int, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vocab := map[string]int{}
	r := bufio.NewReader(f)
	for i := 0; ; i++ {
		line, err := r.ReadString('\n')
		if line == "" && err != nil {
			break
		}
		line = strings.TrimSuffix(line, "\n")
		vocab[line] = i
		if err != nil {
			break
		}
	}
	return vocab, nil
}

func bertDocument(dir string, cfg *tokenizerConfig) (map[string]any, error) {
	vocab, err := readVocabTxt(filepath.Join(dir, "vocab.txt"))
	if err != nil {
		return nil, err
	}
	tok := func(key, def string) map[string]any { return cfg.token(key, def) }
	unk, sep, pad, cls, mask := tok("unk_token", "[UNK]"), tok("sep_token", "[SEP]"), tok("pad_token", "[PAD]"), tok("cls_token", "[CLS]"), tok("mask_token", "[MASK]")
	lower := cfg.boolOr("do_lower_case", true)
	var strip any
	if json.Unmarshal(cfg.raw["strip_accents"], &strip) != nil {
		strip = nil
	}
	content := func(t map[string]any) string { s, _ := t["content"].(string); return s }
	idOf := func(t map[string]any) (int, error) {
		id, ok := vocab[content(t)]
		if !ok {
			return 0, fmt.Errorf("%s: special token %q not in vocab.txt", dir, content(t))
		}
		return id, nil
	}
	clsID, err := idOf(cls)
	if err != nil {
		return nil, err
	}
	sepID, err := idOf(sep)
	if err != nil {
		return nil, err
	}
	special := func(s string, id int) map[string]any {
		return map[string]any{"id": s, "ids": []int{id}, "tokens": []string{s}}
	}
	piece := func(kind, id string, typ int) map[string]any {
		return map[string]any{kind: map[string]any{"id": id, "type_id": typ}}
	}
	c, s := content(cls), content(sep)
	return map[string]any{
		"version":      "1.0",
		"added_tokens": cfg.addedTokens([]map[string]any{pad, unk, cls, sep, mask}),
		"normalizer": map[string]any{"type": "BertNormalizer", "clean_text": true,
			"handle_chinese_chars": cfg.boolOr("tokenize_chinese_chars", true), "strip_accents": strip, "lowercase": lower},
		"pre_tokenizer": map[string]any{"type": "BertPreTokenizer"},
		"model": map[string]any{"type": "WordPiece", "unk_token": content(unk), "continuing_subword_prefix": "##",
			"max_input_chars_per_word": 100, "vocab": vocab},
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single":         []any{piece("SpecialToken", c, 0), piece("Sequence", "A", 0), piece("SpecialToken", s, 0)},
			"pair":           []any{piece("SpecialToken", c, 0), piece("Sequence", "A", 0), piece("SpecialToken", s, 0), piece("Sequence", "B", 1), piece("SpecialToken", s, 1)},
			"special_tokens": map[string]any{c: special(c, clsID), s: special(s, sepID)}},
		"decoder": map[string]any{"type": "WordPiece", "prefix": "##", "cleanup": true},
	}, nil
}

func byteLevelBPEDocument(dir string, cfg *tokenizerConfig) (map[string]any, error) {
	data, err := os.ReadFile(filepath.Join(dir, "vocab.json"))
	if err != nil {
		return nil, err
	}
	var vocab map[string]int
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "vocab.json"), err)
	}
	mdata, err := os.ReadFile(filepath.Join(dir, "merges.txt"))
	if err != nil {
		return nil, err
	}
	var merges []string
	for i, line := range strings.Split(string(mdata), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || (i == 0 && strings.HasPrefix(line, "#version")) {
			continue
		}
		merges = append(merges, line)
	}
	prefixSpace := cfg.boolOr("add_prefix_space", false)
	class := strings.ToLower(cfg.class)
	roberta := strings.Contains(class, "roberta") || strings.Contains(class, "bart") || strings.Contains(class, "longformer")
	doc := map[string]any{
		"version":       "1.0",
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": prefixSpace, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "continuing_subword_prefix": "", "end_of_word_suffix": "",
			"fuse_unk": false, "vocab": vocab, "merges": merges},
		"decoder": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
	}
	content := func(t map[string]any) string { s, _ := t["content"].(string); return s }
	if roberta {
		bos, eos, sep, cls := cfg.token("bos_token", "<s>"), cfg.token("eos_token", "</s>"), cfg.token("sep_token", "</s>"), cfg.token("cls_token", "<s>")
		unk, pad, mask := cfg.token("unk_token", "<unk>"), cfg.token("pad_token", "<pad>"), cfg.token("mask_token", "<mask>")
		if mask != nil {
			if _, set := cfg.raw["mask_token"]; !set || mask["lstrip"] == false {
				mask["lstrip"] = true
			}
		}
		sepID, ok1 := vocab[content(sep)]
		clsID, ok2 := vocab[content(cls)]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s: sep %q or cls %q not in vocab.json", dir, content(sep), content(cls))
		}
		doc["added_tokens"] = cfg.addedTokens([]map[string]any{bos, pad, eos, unk, mask})
		doc["post_processor"] = map[string]any{"type": "RobertaProcessing", "sep": []any{content(sep), sepID},
			"cls": []any{content(cls), clsID}, "trim_offsets": cfg.boolOr("trim_offsets", true), "add_prefix_space": prefixSpace}
	} else {
		bos, eos, unk := cfg.token("bos_token", "<|endoftext|>"), cfg.token("eos_token", "<|endoftext|>"), cfg.token("unk_token", "<|endoftext|>")
		doc["added_tokens"] = cfg.addedTokens([]map[string]any{bos, eos, unk, cfg.token("pad_token", "")})
		if cfg.boolOr("add_bos_token", false) {
			b := content(bos)
			id, ok := vocab[b]
			if !ok {
				return nil, fmt.Errorf("%s: bos token %q not in vocab.json", dir, b)
			}
			piece := func(kind, id string, typ int) map[string]any {
				return map[string]any{kind: map[string]any{"id": id, "type_id": typ}}
			}
			doc["post_processor"] = map[string]any{"type": "TemplateProcessing",
				"single":         []any{piece("SpecialToken", b, 0), piece("Sequence", "A", 0)},
				"pair":           []any{piece("SpecialToken", b, 0), piece("Sequence", "A", 0), piece("Sequence", "B", 1)},
				"special_tokens": map[string]any{b: map[string]any{"id": b, "ids": []int{id}, "tokens": []string{b}}}}
		} else {
			doc["post_processor"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}
		}
	}
	return doc, nil
}
