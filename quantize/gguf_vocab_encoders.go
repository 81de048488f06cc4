package quantize

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hubmirror/hubmirror/formats/gguf"
)

// ggufEncoderVocab is the vocabulary of an encoder: a ggufVocab and the
// keys llama.cpp reads for the encoders' tokenizers.
type ggufEncoderVocab struct {
	*ggufVocab
	// raw are the tokens as the tokenizer spells them, when the file
	// spells them otherwise (WordPiece's phantom-space form).
	raw   []string
	extra []gguf.KV
}

func (v *ggufEncoderVocab) metadata() []gguf.KV {
	return append(v.ggufVocab.metadata(), v.extra...)
}

// encoderPost is what readGGUFEncoderVocab reads of a post-processor:
// RobertaProcessing's cls and sep, TemplateProcessing's pair template.
type encoderPost struct {
	Type       string        `json:"type"`
	Cls        []any         `json:"cls"`
	Sep        []any         `json:"sep"`
	Pair       []templateRef `json:"pair"`
	Processors []encoderPost `json:"processors"`
}

type templateRef struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

// readGGUFEncoderVocab reads the tokenizer of an encoder (tokenizer.json,
// tokenizer_config.json) as a GGUF vocabulary of rows tokens, as
// convert_hf_to_gguf.py writes it for the bert and modern-bert
// architectures:
//   - WordPiece as tokenizer.ggml.model "bert" (llama.cpp's WPM): tokens in
//     "phantom space" form (a word-initial token gets "▁", a "##"
//     continuation loses it, special tokens stay), the BertNormalizer's
//     lowercase and strip_accents, [CLS] as bos and [SEP] as sep and eos;
//   - Unigram (XLM-RoBERTa's, CamemBERT's SentencePiece) as "t5" (llama.cpp's
//     UGM): pieces, scores, the Precompiled normalizer's charsmap,
//     remove_extra_whitespaces for a Replace of runs of spaces, the
//     Metaspace's space prefix;
//   - byte-level BPE (RoBERTa's, ModernBERT's) as "gpt2" (readGGUFVocab),
//     with RobertaProcessing's <s> and </s> added around the text.
//
// What llama.cpp's tokenizers cannot reproduce (another WordPiece prefix
// or pre-tokenizer, a Unigram with byte fallback or other normalizers) is
// refused (ErrGGUFVocab).
func readGGUFEncoderVocab(dir string, rows int) (*ggufEncoderVocab, error) {
	tj, path, err := readTokenizerJSON(dir)
	if err != nil {
		return nil, err
	}
	var model struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(tj.Model, &model); err != nil {
		return nil, fmt.Errorf("%w: %s: model: %v", ErrGGUFVocab, path, err)
	}
	var post encoderPost
	if len(tj.PostProcessor) > 0 && string(tj.PostProcessor) != "null" {
		if err := json.Unmarshal(tj.PostProcessor, &post); err != nil {
			return nil, fmt.Errorf("%w: %s: post_processor: %v", ErrGGUFVocab, path, err)
		}
	}
	var v *ggufEncoderVocab
	switch model.Type {
	case "BPE":
		base, err := readGGUFVocab(dir, rows)
		if err != nil {
			return nil, err
		}
		if base.model != "gpt2" {
			return nil, fmt.Errorf("%w: %s: a SentencePiece-style BPE: llama.cpp's encoders take WordPiece, Unigram or byte-level BPE", ErrGGUFVocab, path)
		}
		v = &ggufEncoderVocab{ggufVocab: base}
	case "WordPiece":
		if v, err = readWordPiece(dir, path, tj, rows); err != nil {
			return nil, err
		}
	case "Unigram":
		if v, err = readUnigram(dir, path, tj, rows); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: %s: model %q (GGUF output for encoders handles WordPiece, Unigram and byte-level BPE)", ErrGGUFVocab, path, model.Type)
	}
	if err := v.encoderSpecials(dir, path, &post); err != nil {
		return nil, err
	}
	return v, nil
}

// encoderSpecials completes the special tokens as gguf-py's SpecialVocab
// does for encoders: cls stands for a missing bos and sep for a missing eos,
// RobertaProcessing adds both around a text and sep between two, a
// TemplateProcessing pair with a token between the texts sets add_sep; and
// the mask token.
func (v *ggufEncoderVocab) encoderSpecials(dir, path string, post *encoderPost) error {
	ids := map[string]int{}
	for id, t := range v.rawTokens() {
		if _, ok := ids[t]; !ok {
			ids[t] = id
		}
	}
	var tc map[string]json.RawMessage
	if raw, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json")); err == nil {
		_ = json.Unmarshal(raw, &tc) // readSpecials has reported a broken file
	}
	token := func(key string) int {
		var s string
		if json.Unmarshal(tc[key], &s) != nil {
			var o struct {
				Content string `json:"content"`
			}
			if json.Unmarshal(tc[key], &o) != nil {
				return -1
			}
			s = o.Content
		}
		if id, ok := ids[s]; ok {
			return id
		}
		return -1
	}
	if v.bos < 0 {
		v.bos = token("cls_token")
	}
	if v.sep < 0 {
		v.sep = token("sep_token")
	}
	if v.eos < 0 {
		v.eos = v.sep
	}
	addSep := false
	for _, p := range append([]encoderPost{*post}, post.Processors...) {
		switch p.Type {
		case "RobertaProcessing":
			cls, okC := tokenOfPair(p.Cls, ids)
			sep, okS := tokenOfPair(p.Sep, ids)
			if !okC || !okS {
				return fmt.Errorf("%w: %s: RobertaProcessing's cls %v or sep %v is not in the vocabulary", ErrGGUFVocab, path, p.Cls, p.Sep)
			}
			v.bos, v.eos, v.sep = cls, sep, sep
			v.addBOS, v.addEOS, addSep = true, true, true
		case "TemplateProcessing":
			// A B with a special token between the texts.
			seen := false
			for _, r := range p.Pair {
				if r.Sequence != nil {
					if seen {
						break
					}
					seen = r.Sequence.ID == "A"
					continue
				}
				if seen && r.SpecialToken != nil {
					addSep = true
					if id, ok := ids[r.SpecialToken.ID]; ok && v.sep < 0 {
						v.sep = id
					}
				}
			}
		}
	}
	if m := token("mask_token"); m >= 0 {
		v.extra = append(v.extra, gguf.KV{Key: "tokenizer.ggml.mask_token_id", Value: uint32(m)})
	}
	if addSep {
		if v.sep < 0 {
			return fmt.Errorf("%w: %s: the tokenizer separates two texts with a token it does not name", ErrGGUFVocab, path)
		}
		v.extra = append(v.extra, gguf.KV{Key: "tokenizer.ggml.add_sep_token", Value: true})
	}
	if v.bos < 0 && v.model == "bert" {
		return fmt.Errorf("%w: %s: no [CLS] token (llama.cpp's WordPiece tokenizer starts every text with it)", ErrGGUFVocab, path)
	}
	if v.sep < 0 && v.model == "bert" {
		return fmt.Errorf("%w: %s: no [SEP] token (llama.cpp's WordPiece tokenizer ends every text with it)", ErrGGUFVocab, path)
	}
	return nil
}

// rawTokens are the tokens as the tokenizer spells them (a WordPiece
// vocabulary's before the phantom-space form).
func (v *ggufEncoderVocab) rawTokens() []string {
	if v.raw != nil {
		return v.raw
	}
	return v.tokens
}

// tokenOfPair returns the id of RobertaProcessing's [token, id] pair.
func tokenOfPair(p []any, ids map[string]int) (int, bool) {
	if len(p) != 2 {
		return 0, false
	}
	s, ok := p[0].(string)
	if !ok {
		return 0, false
	}
	id, ok := ids[s]
	return id, ok
}

// tokensByID lays out tokens by id in rows slots, the added tokens typed
// control (special) or user-defined; the ids nothing fills are [PAD<id>]
// tokens of type unused, as convert_hf_to_gguf.py writes them.
func tokensByID(path string, vocab map[string]int, tj *tokenizerJSON, rows int) (tokens []string, types []int32, padded int, err error) {
	tokens = make([]string, rows)
	types = make([]int32, rows)
	has := make([]bool, rows)
	put := func(tok string, id int) error {
		if id < 0 || id >= rows {
			return fmt.Errorf("%w: %s: token %q has id %d, beyond the embedding's %d rows", ErrGGUFVocab, path, tok, id, rows)
		}
		tokens[id], has[id], types[id] = tok, true, ggufTokenNormal
		return nil
	}
	for tok, id := range vocab {
		if err := put(tok, id); err != nil {
			return nil, nil, 0, err
		}
	}
	for _, a := range tj.AddedTokens {
		if err := put(a.Content, a.ID); err != nil {
			return nil, nil, 0, err
		}
		types[a.ID] = ggufTokenUserDefined
		if a.Special {
			types[a.ID] = ggufTokenControl
		}
	}
	for id := range tokens {
		if !has[id] {
			tokens[id], types[id] = fmt.Sprintf("[PAD%d]", id), ggufTokenUnused
			padded++
		}
	}
	return tokens, types, padded, nil
}

// readWordPiece reads a WordPiece tokenizer as llama.cpp's "bert"
// vocabulary.
func readWordPiece(dir, path string, tj *tokenizerJSON, rows int) (*ggufEncoderVocab, error) {
	var model struct {
		Vocab    map[string]int `json:"vocab"`
		UnkToken string         `json:"unk_token"`
		Prefix   *string        `json:"continuing_subword_prefix"`
	}
	if err := json.Unmarshal(tj.Model, &model); err != nil {
		return nil, fmt.Errorf("%w: %s: model: %v", ErrGGUFVocab, path, err)
	}
	if model.Prefix != nil && *model.Prefix != "##" {
		return nil, fmt.Errorf("%w: %s: WordPiece continuing_subword_prefix %q: llama.cpp's takes \"##\"", ErrGGUFVocab, path, *model.Prefix)
	}
	pre, err := parseComponent(tj.PreTokenizer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: pre_tokenizer: %v", ErrGGUFVocab, path, err)
	}
	if parts := pre.flatten(); len(parts) != 1 || parts[0].Type != "BertPreTokenizer" {
		return nil, fmt.Errorf("%w: %s: a WordPiece tokenizer without BertPreTokenizer: llama.cpp's splits words as BertPreTokenizer does", ErrGGUFVocab, path)
	}
	// The BertNormalizer's lowercase and strip_accents (null: as lowercase).
	var norm struct {
		Type         string `json:"type"`
		Lowercase    *bool  `json:"lowercase"`
		StripAccents *bool  `json:"strip_accents"`
	}
	lower, strip := false, false
	if len(tj.Normalizer) > 0 && string(tj.Normalizer) != "null" {
		if err := json.Unmarshal(tj.Normalizer, &norm); err != nil {
			return nil, fmt.Errorf("%w: %s: normalizer: %v", ErrGGUFVocab, path, err)
		}
		if norm.Type != "BertNormalizer" {
			return nil, fmt.Errorf("%w: %s: a WordPiece tokenizer with normalizer %s: llama.cpp's normalizes as BertNormalizer does", ErrGGUFVocab, path, norm.Type)
		}
		lower = norm.Lowercase == nil || *norm.Lowercase
		strip = lower
		if norm.StripAccents != nil {
			strip = *norm.StripAccents
		}
	}
	tokens, types, padded, err := tokensByID(path, model.Vocab, tj, rows)
	if err != nil {
		return nil, err
	}
	v := &ggufVocab{model: "bert", pre: "default", types: types, padded: padded,
		bos: -1, eos: -1, unk: -1, pad: -1, sep: -1, templates: map[string]string{}, tokens: tokens}
	if id, ok := model.Vocab[model.UnkToken]; ok {
		v.unk = id
	}
	post, err := parseComponent(tj.PostProcessor)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: post_processor: %v", ErrGGUFVocab, path, err)
	}
	if err := v.readSpecials(dir, tokens, post); err != nil {
		return nil, err
	}
	// Phantom space: llama.cpp's WPM puts "▁" before each word and looks
	// the pieces up as such.
	phantom := make([]string, len(tokens))
	for id, t := range tokens {
		switch {
		case types[id] == ggufTokenControl:
			phantom[id] = t
		case strings.HasPrefix(t, "##"):
			phantom[id] = t[2:]
		default:
			phantom[id] = "▁" + t
		}
	}
	v.tokens = phantom
	return &ggufEncoderVocab{ggufVocab: v, raw: tokens, extra: []gguf.KV{
		{Key: "tokenizer.ggml.normalizer.lowercase", Value: lower},
		{Key: "tokenizer.ggml.normalizer.strip_accents", Value: strip},
	}}, nil
}

// readUnigram reads a Unigram (SentencePiece) tokenizer as llama.cpp's
// "t5" vocabulary.
func readUnigram(dir, path string, tj *tokenizerJSON, rows int) (*ggufEncoderVocab, error) {
	var model struct {
		Vocab        [][2]any `json:"vocab"`
		UnkID        *int     `json:"unk_id"`
		ByteFallback bool     `json:"byte_fallback"`
	}
	if err := json.Unmarshal(tj.Model, &model); err != nil {
		return nil, fmt.Errorf("%w: %s: model: %v", ErrGGUFVocab, path, err)
	}
	if model.ByteFallback {
		return nil, fmt.Errorf("%w: %s: a Unigram tokenizer with byte_fallback: llama.cpp's gives the unknown token instead of byte tokens", ErrGGUFVocab, path)
	}
	vocab := map[string]int{}
	scores := make([]float32, rows)
	for i := range scores {
		scores[i] = -10000
	}
	for id, p := range model.Vocab {
		piece, ok1 := p[0].(string)
		score, ok2 := p[1].(float64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: %s: model.vocab[%d] is not [piece, score]", ErrGGUFVocab, path, id)
		}
		if id >= rows {
			return nil, fmt.Errorf("%w: %s: piece %q has id %d, beyond the embedding's %d rows", ErrGGUFVocab, path, piece, id, rows)
		}
		if _, ok := vocab[piece]; !ok {
			vocab[piece] = id
		}
		scores[id] = float32(score)
	}
	tokens, types, padded, err := tokensByID(path, vocab, tj, rows)
	if err != nil {
		return nil, err
	}
	// A piece spelled twice: tokensByID kept the first id; give the
	// others their spelling back.
	for id, p := range model.Vocab {
		tokens[id] = p[0].(string)
	}
	v := &ggufVocab{model: "t5", pre: "default", tokens: tokens, scores: scores, types: types, padded: padded,
		bos: -1, eos: -1, unk: -1, pad: -1, sep: -1, templates: map[string]string{}}
	if model.UnkID != nil && *model.UnkID >= 0 && *model.UnkID < rows {
		v.unk = *model.UnkID
		types[v.unk] = ggufTokenUnknown
	}

	// Normalizers: Precompiled (its charsmap) and a Replace of runs of
	// spaces by one (SentencePiece's remove_extra_whitespaces), nothing
	// else.
	var charsmap []byte
	removeExtra := false
	norm, err := parseComponent(tj.Normalizer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: normalizer: %v", ErrGGUFVocab, path, err)
	}
	var rawNorms []json.RawMessage
	if norm != nil {
		var seq struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if norm.Type == "Sequence" {
			_ = json.Unmarshal(tj.Normalizer, &seq)
			rawNorms = seq.Normalizers
		} else {
			rawNorms = []json.RawMessage{tj.Normalizer}
		}
	}
	for _, rn := range rawNorms {
		var n struct {
			Type     string          `json:"type"`
			Charsmap *string         `json:"precompiled_charsmap"`
			Pattern  json.RawMessage `json:"pattern"`
			Content  string          `json:"content"`
		}
		if err := json.Unmarshal(rn, &n); err != nil {
			return nil, fmt.Errorf("%w: %s: normalizer: %v", ErrGGUFVocab, path, err)
		}
		switch {
		case n.Type == "Precompiled" && n.Charsmap != nil:
			if charsmap, err = base64.StdEncoding.DecodeString(*n.Charsmap); err != nil {
				return nil, fmt.Errorf("%w: %s: precompiled_charsmap: %v", ErrGGUFVocab, path, err)
			}
			if len(charsmap) > 0 && len(charsmap) < 5 {
				return nil, fmt.Errorf("%w: %s: precompiled_charsmap of %d bytes", ErrGGUFVocab, path, len(charsmap))
			}
		case n.Type == "Replace" && n.Content == " " && strings.Contains(string(n.Pattern), `" {2,}"`):
			removeExtra = true
		default:
			return nil, fmt.Errorf("%w: %s: a Unigram tokenizer with normalizer %s: llama.cpp's normalizes with the precompiled charsmap and whitespace rules only", ErrGGUFVocab, path, n.Type)
		}
	}
	pre, err := parseComponent(tj.PreTokenizer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: pre_tokenizer: %v", ErrGGUFVocab, path, err)
	}
	parts := pre.flatten()
	if len(parts) != 1 || parts[0].Type != "Metaspace" || (parts[0].Replacement != "" && parts[0].Replacement != "▁") {
		return nil, fmt.Errorf("%w: %s: a Unigram tokenizer without a Metaspace(▁) pre-tokenizer: llama.cpp's writes spaces as ▁", ErrGGUFVocab, path)
	}
	prefix := spacePrefix(pre, nil)

	post, err := parseComponent(tj.PostProcessor)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: post_processor: %v", ErrGGUFVocab, path, err)
	}
	if err := v.readSpecials(dir, tokens, post); err != nil {
		return nil, err
	}
	extra := []gguf.KV{
		{Key: "tokenizer.ggml.add_space_prefix", Value: prefix},
		{Key: "tokenizer.ggml.remove_extra_whitespaces", Value: removeExtra},
	}
	if len(charsmap) > 0 {
		extra = append(extra, gguf.KV{Key: "tokenizer.ggml.precompiled_charsmap", Value: charsmap})
	}
	return &ggufEncoderVocab{ggufVocab: v, extra: extra}, nil
}
