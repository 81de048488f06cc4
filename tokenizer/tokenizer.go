// Package tokenizer loads Hugging Face tokenizer.json files (and the older
// vocab.txt / vocab.json + merges.txt forms) and encodes and decodes text as
// the Rust tokenizers library does, with byte offsets into the input.
package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// Encoding is the result of encoding one text or a pair of texts.
type Encoding struct {
	IDs               []int
	Tokens            []string
	Offsets           [][2]int // byte offsets into the input text (start, end)
	TypeIDs           []int
	SpecialTokensMask []int
	AttentionMask     []int
	// Overflowing holds the tokens truncation cut off, in pieces of the
	// truncation's max_length overlapping by its stride, each
	// post-processed and padded like the encoding itself.
	Overflowing []*Encoding

	src string // the text encoded, until post-processing merges encodings
}

// newEncoding returns an empty encoding with room for n tokens.
func newEncoding(n int) *Encoding {
	return &Encoding{
		IDs:               make([]int, 0, n),
		Tokens:            make([]string, 0, n),
		Offsets:           make([][2]int, 0, n),
		TypeIDs:           make([]int, 0, n),
		SpecialTokensMask: make([]int, 0, n),
		AttentionMask:     make([]int, 0, n),
	}
}

func (e *Encoding) len() int { return len(e.IDs) }

func (e *Encoding) add(id int, tok string, off [2]int, typeID, special int) {
	e.IDs = append(e.IDs, id)
	e.Tokens = append(e.Tokens, tok)
	e.Offsets = append(e.Offsets, off)
	e.TypeIDs = append(e.TypeIDs, typeID)
	e.SpecialTokensMask = append(e.SpecialTokensMask, special)
	e.AttentionMask = append(e.AttentionMask, 1)
}

func (e *Encoding) appendAll(o *Encoding) {
	e.IDs = append(e.IDs, o.IDs...)
	e.Tokens = append(e.Tokens, o.Tokens...)
	e.Offsets = append(e.Offsets, o.Offsets...)
	e.TypeIDs = append(e.TypeIDs, o.TypeIDs...)
	e.SpecialTokensMask = append(e.SpecialTokensMask, o.SpecialTokensMask...)
	e.AttentionMask = append(e.AttentionMask, o.AttentionMask...)
}

func (e *Encoding) setTypeID(t int) {
	for i := range e.TypeIDs {
		e.TypeIDs[i] = t
	}
}

// token is a model's output for one piece of a pre-tokenized text; offsets
// are byte offsets in the piece's normalized text.
type token struct {
	id         int
	value      string
	start, end int
}

type normalizer interface {
	normalize(n *normString) error
}

type preTokenizer interface {
	preTokenize(p *preTokenized) error
}

type model interface {
	tokenize(s string) ([]token, error)
	tokenToID(s string) (int, bool)
	idToToken(id int) (string, bool)
	vocabSize() int
}

type postProcessor interface {
	addedTokens(isPair bool) int
	process(enc, pair *Encoding, addSpecial bool) (*Encoding, error)
}

type decoder interface {
	decodeChain(tokens []string) ([]string, error)
}

type truncation struct {
	direction string
	maxLength int
	strategy  string
	stride    int
}

// maxPadLength bounds a padding length read from a file, so that a file
// cannot make every encoding allocate gigabytes.
const maxPadLength = 1 << 20

type padding struct {
	fixed      int // 0: BatchLongest
	direction  string
	multipleOf int
	padID      int
	padTypeID  int
	padToken   string
}

// Tokenizer encodes and decodes text. It is safe for concurrent use.
type Tokenizer struct {
	normalizer    normalizer
	preTokenizer  preTokenizer
	model         model
	postProcessor postProcessor
	decoder       decoder
	added         *addedVocab
	truncation    *truncation
	padding       *padding
}

// LoadFile reads a tokenizer.json file; a name ending in .gz is gunzipped.
func LoadFile(path string) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var r io.Reader = f
	size := st.Size()
	if strings.HasSuffix(path, ".gz") {
		size = gzipSizeHint(f, size)
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	data, err := readAllSized(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t, err := loadBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// gzipSizeHint reads the uncompressed size a gzip file records in its last
// four bytes (modulo 4 GiB; only a hint), then rewinds f.
func gzipSizeHint(f *os.File, size int64) int64 {
	defer f.Seek(0, io.SeekStart)
	var b [4]byte
	if size < 18 {
		return 0
	}
	if _, err := f.ReadAt(b[:], size-4); err != nil {
		return 0
	}
	n := int64(b[0]) | int64(b[1])<<8 | int64(b[2])<<16 | int64(b[3])<<24
	return min(n, 1<<30)
}

// readAllSized reads r to the end into a buffer sized for hint bytes.
func readAllSized(r io.Reader, hint int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, max(hint, 0)+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// Load reads a tokenizer.json document.
func Load(r io.Reader) (*Tokenizer, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	return loadBytes(data)
}

// tokenizerDoc is the top level of a tokenizer.json.
type tokenizerDoc struct {
	Version       *string
	Truncation    json.RawMessage
	Padding       json.RawMessage
	AddedTokens   []json.RawMessage
	Normalizer    json.RawMessage
	PreTokenizer  json.RawMessage
	Model         *modelDoc
	PostProcessor json.RawMessage
	Decoder       json.RawMessage
}

// parseTokenizerDoc splits the top-level object into its values
// (jsonskip.go), reading the model's fields itself.
func parseTokenizerDoc(data []byte) (*tokenizerDoc, error) {
	doc := &tokenizerDoc{}
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		if _, err := skipValue(data, 0, 0); err != nil {
			return nil, fmt.Errorf("tokenizer.json: %w", err)
		}
		return nil, fmt.Errorf("tokenizer.json: not a JSON object")
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			if i >= len(data) || data[i] != '"' {
				return nil, fmt.Errorf("tokenizer.json: %w", jsonError(data, i, "want an object key"))
			}
			end, err := skipString(data, i)
			if err != nil {
				return nil, fmt.Errorf("tokenizer.json: %w", err)
			}
			key, err := decodeString(data[i:end])
			if err != nil {
				return nil, fmt.Errorf("tokenizer.json: %w", err)
			}
			i = skipWS(data, end)
			if i >= len(data) || data[i] != ':' {
				return nil, fmt.Errorf("tokenizer.json: %w", jsonError(data, i, "want ':' after an object key"))
			}
			i = skipWS(data, i+1)
			start := i
			if key == "model" {
				doc.Model = &modelDoc{}
				if i, err = doc.Model.parse(data, i); err != nil {
					return nil, fmt.Errorf("model: %w", err)
				}
			} else {
				if i, err = skipValue(data, i, 0); err != nil {
					return nil, fmt.Errorf("%s: %w", key, err)
				}
				var dst any
				switch key {
				case "version":
					dst = &doc.Version
				case "truncation":
					dst = &doc.Truncation
				case "padding":
					dst = &doc.Padding
				case "added_tokens":
					dst = &doc.AddedTokens
				case "normalizer":
					dst = &doc.Normalizer
				case "pre_tokenizer":
					dst = &doc.PreTokenizer
				case "post_processor":
					dst = &doc.PostProcessor
				case "decoder":
					dst = &doc.Decoder
				}
				if dst != nil {
					if err := json.Unmarshal(data[start:i], dst); err != nil {
						return nil, fmt.Errorf("%s: %w", key, err)
					}
				}
			}
			i = skipWS(data, i)
			if i < len(data) && data[i] == ',' {
				i = skipWS(data, i+1)
				continue
			}
			if i < len(data) && data[i] == '}' {
				i++
				break
			}
			return nil, fmt.Errorf("tokenizer.json: %w", jsonError(data, i, "want ',' or '}'"))
		}
	}
	if i = skipWS(data, i); i != len(data) {
		return nil, fmt.Errorf("tokenizer.json: %w", jsonError(data, i, "data after the top-level object"))
	}
	return doc, nil
}

func loadBytes(data []byte) (*Tokenizer, error) {
	doc, err := parseTokenizerDoc(data)
	if err != nil {
		return nil, err
	}
	if doc.Version != nil && *doc.Version != "1.0" {
		return nil, fmt.Errorf("version: unknown tokenizer version %q", *doc.Version)
	}
	t := &Tokenizer{}
	if t.normalizer, err = parseNormalizer(doc.Normalizer, "normalizer"); err != nil {
		return nil, err
	}
	if t.preTokenizer, err = parsePreTokenizer(doc.PreTokenizer, "pre_tokenizer"); err != nil {
		return nil, err
	}
	if doc.Model == nil {
		return nil, fmt.Errorf("model: missing")
	}
	if t.model, err = parseModel(doc.Model, "model"); err != nil {
		return nil, err
	}
	if t.postProcessor, err = parsePostProcessor(doc.PostProcessor, "post_processor"); err != nil {
		return nil, err
	}
	if t.decoder, err = parseDecoder(doc.Decoder, "decoder"); err != nil {
		return nil, err
	}
	if t.truncation, err = parseTruncation(doc.Truncation); err != nil {
		return nil, err
	}
	if t.padding, err = parsePadding(doc.Padding); err != nil {
		return nil, err
	}
	var toks []addedToken
	for i, raw := range doc.AddedTokens {
		at, err := parseAddedToken(raw)
		if err != nil {
			return nil, fmt.Errorf("added_tokens[%d]: %w", i, err)
		}
		toks = append(toks, at)
	}
	t.added, err = newAddedVocab(toks, t.model, t.normalizer)
	if err != nil {
		return nil, fmt.Errorf("added_tokens: %w", err)
	}
	return t, nil
}

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

func parseTruncation(raw json.RawMessage) (*truncation, error) {
	if isNull(raw) {
		return nil, nil
	}
	var v struct {
		Direction string `json:"direction"`
		MaxLength int    `json:"max_length"`
		Strategy  string `json:"strategy"`
		Stride    int    `json:"stride"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("truncation: %w", err)
	}
	return newTruncation(Truncation{MaxLength: v.MaxLength, Stride: v.Stride, Strategy: v.Strategy, Direction: v.Direction})
}

func parsePadding(raw json.RawMessage) (*padding, error) {
	if isNull(raw) {
		return nil, nil
	}
	var v struct {
		Strategy   json.RawMessage `json:"strategy"`
		Direction  string          `json:"direction"`
		MultipleOf *int            `json:"pad_to_multiple_of"`
		PadID      int             `json:"pad_id"`
		PadTypeID  int             `json:"pad_type_id"`
		PadToken   *string         `json:"pad_token"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("padding: %w", err)
	}
	p := &padding{direction: v.Direction, padID: v.PadID, padTypeID: v.PadTypeID, padToken: "[PAD]"}
	if p.direction == "" {
		p.direction = "Right"
	}
	if p.direction != "Right" && p.direction != "Left" {
		return nil, fmt.Errorf("padding.direction: unknown %q", v.Direction)
	}
	if v.PadToken != nil {
		p.padToken = *v.PadToken
	}
	if v.MultipleOf != nil {
		p.multipleOf = *v.MultipleOf
	}
	if !isNull(v.Strategy) {
		var s string
		if json.Unmarshal(v.Strategy, &s) == nil {
			if s != "BatchLongest" {
				return nil, fmt.Errorf("padding.strategy: unknown %q", s)
			}
		} else {
			var f struct {
				Fixed *int `json:"Fixed"`
			}
			if err := json.Unmarshal(v.Strategy, &f); err != nil || f.Fixed == nil || *f.Fixed < 0 {
				return nil, fmt.Errorf("padding.strategy: want \"BatchLongest\" or {\"Fixed\": n}")
			}
			p.fixed = *f.Fixed
		}
	}
	if p.fixed > maxPadLength || p.multipleOf < 0 || p.multipleOf > maxPadLength {
		return nil, fmt.Errorf("padding: length above the %d tokens this package pads to", maxPadLength)
	}
	return p, nil
}

// VocabSize is the size of the model's vocabulary with the added tokens.
func (t *Tokenizer) VocabSize() int {
	n := t.model.vocabSize()
	for id := range t.added.byID {
		if _, ok := t.model.idToToken(id); !ok {
			n++
		}
	}
	return n
}

// Encode encodes one text; addSpecial adds the post-processor's special tokens.
func (t *Tokenizer) Encode(text string, addSpecial bool) (*Encoding, error) {
	e, err := t.encodeSequence(text, 0)
	if err != nil {
		return nil, err
	}
	return t.postProcess(e, nil, addSpecial)
}

// EncodePair encodes a pair of texts (offsets of b are offsets into b).
func (t *Tokenizer) EncodePair(a, b string, addSpecial bool) (*Encoding, error) {
	e1, err := t.encodeSequence(a, 0)
	if err != nil {
		return nil, err
	}
	e2, err := t.encodeSequence(b, 1)
	if err != nil {
		return nil, err
	}
	return t.postProcess(e1, e2, addSpecial)
}

func (t *Tokenizer) encodeSequence(text string, typeID int) (*Encoding, error) {
	if len(text) > maxText {
		return nil, fmt.Errorf("text of %d bytes: longer than the %d bytes this package encodes", len(text), maxText)
	}
	p, err := t.added.extractAndNormalize(t.normalizer, text)
	if err != nil {
		return nil, err
	}
	if t.preTokenizer != nil {
		if err := t.preTokenizer.preTokenize(p); err != nil {
			return nil, err
		}
	}
	splits := p.splits
	if tr := t.truncation; tr != nil && (tr.strategy != "OnlySecond" || typeID != 0) {
		// as the library does, stop tokenizing once max_length tokens are
		// there (this decides which sequence of a pair is longer)
		total := 0
		if tr.direction == "Left" {
			first := len(splits)
			for i := len(splits) - 1; i >= 0; i-- {
				pre := splits[i].tokens != nil
				if err := t.tokenizeSplit(splits[i]); err != nil {
					return nil, err
				}
				total += len(splits[i].tokens)
				first = i
				if !pre && total >= tr.maxLength {
					break
				}
			}
			splits = splits[first:]
		} else {
			last := 0
			for i := range splits {
				pre := splits[i].tokens != nil
				if err := t.tokenizeSplit(splits[i]); err != nil {
					return nil, err
				}
				total += len(splits[i].tokens)
				last = i + 1
				if !pre && total >= tr.maxLength {
					break
				}
			}
			splits = splits[:last]
		}
	}
	count := 0
	for _, sp := range splits {
		if err := t.tokenizeSplit(sp); err != nil {
			return nil, err
		}
		count += len(sp.tokens)
	}
	e := newEncoding(count)
	e.src = text
	for _, sp := range splits {
		for _, tk := range sp.tokens {
			off := [2]int{tk.start, tk.end}
			if s, e, ok := sp.n.originalRange(tk.start, tk.end); ok {
				off = [2]int{sp.n.shift + s, sp.n.shift + e}
			}
			e.add(tk.id, tk.value, off, typeID, 0)
		}
	}
	return e, nil
}

func (t *Tokenizer) tokenizeSplit(sp *split) error {
	if sp.tokens != nil {
		return nil
	}
	toks, err := t.model.tokenize(sp.n.norm)
	if err != nil {
		return err
	}
	if toks == nil {
		toks = []token{}
	}
	sp.tokens = toks
	return nil
}

func (t *Tokenizer) postProcess(e, pair *Encoding, addSpecial bool) (*Encoding, error) {
	if tr := t.truncation; tr != nil {
		params := *tr
		if n := t.nAddedTokens(pair != nil); addSpecial && n > 0 {
			params.maxLength -= n
			if params.maxLength < 0 {
				return nil, fmt.Errorf("truncation: max_length %d is smaller than the %d special tokens", tr.maxLength, n)
			}
		}
		if err := truncateEncodings(e, pair, &params); err != nil {
			return nil, err
		}
	}
	var out *Encoding
	if t.postProcessor != nil {
		var err error
		if out, err = t.postProcessor.process(e, pair, addSpecial); err != nil {
			return nil, err
		}
	} else {
		out = e
		if pair != nil {
			out = mergeEncodings([]*Encoding{e, pair})
		}
	}
	if p := t.padding; p != nil {
		n := out.len()
		if p.fixed > 0 {
			n = p.fixed
		}
		if p.multipleOf > 0 && n%p.multipleOf > 0 {
			n += p.multipleOf - n%p.multipleOf
		}
		out = padTo(out, n, p)
	}
	eachPiece(out, func(e *Encoding) { e.src = "" })
	return out, nil
}

// padTo pads e and its overflowing pieces to n tokens.
func padTo(e *Encoding, n int, p *padding) *Encoding {
	for i, o := range e.Overflowing {
		e.Overflowing[i] = padTo(o, n, p)
	}
	k := n - e.len()
	if k <= 0 {
		return e
	}
	pad := newEncoding(n)
	for i := 0; i < k; i++ {
		pad.add(p.padID, p.padToken, [2]int{}, p.padTypeID, 1)
		pad.AttentionMask[i] = 0
	}
	if p.direction == "Left" {
		pad.appendAll(e)
		pad.Overflowing, pad.src = e.Overflowing, e.src
		return pad
	}
	e.appendAll(pad)
	return e
}

func (t *Tokenizer) nAddedTokens(isPair bool) int {
	if t.postProcessor == nil {
		return 0
	}
	return t.postProcessor.addedTokens(isPair)
}

func truncateEncodings(e, pair *Encoding, p *truncation) error {
	if p.maxLength == 0 {
		if err := truncate(e, 0, p.stride, p.direction); err != nil {
			return err
		}
		if pair != nil {
			return truncate(pair, 0, p.stride, p.direction)
		}
		return nil
	}
	total := e.len()
	if pair != nil {
		total += pair.len()
	}
	if total <= p.maxLength {
		return nil
	}
	toRemove := total - p.maxLength
	switch p.strategy {
	case "LongestFirst":
		if pair == nil {
			return truncate(e, total-toRemove, p.stride, p.direction)
		}
		n1, n2 := e.len(), pair.len()
		swap := n1 > n2
		if swap {
			n1, n2 = n2, n1
		}
		if n1 > p.maxLength {
			n2 = n1
		} else {
			n2 = max(n1, p.maxLength-n1)
		}
		if n1+n2 > p.maxLength {
			n1 = p.maxLength / 2
			n2 = n1 + p.maxLength%2
		}
		if swap {
			n1, n2 = n2, n1
		}
		if err := truncate(e, n1, p.stride, p.direction); err != nil {
			return err
		}
		if err := truncate(pair, n2, p.stride, p.direction); err != nil {
			return err
		}
	default:
		target := e
		if p.strategy == "OnlySecond" {
			if pair == nil {
				return fmt.Errorf("truncation: OnlySecond needs a pair of sequences")
			}
			target = pair
		}
		if target.len() <= toRemove {
			return fmt.Errorf("truncation: sequence too short to remove %d tokens", toRemove)
		}
		if err := truncate(target, target.len()-toRemove, p.stride, p.direction); err != nil {
			return err
		}
	}
	return nil
}

// Decode turns ids back into text; skipSpecial drops special tokens.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) (string, error) {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		s, ok := t.added.idToToken(id)
		if !ok {
			s, ok = t.model.idToToken(id)
		}
		if !ok {
			continue
		}
		if skipSpecial && t.added.special[s] {
			continue
		}
		tokens = append(tokens, s)
	}
	if t.decoder == nil {
		return strings.Join(tokens, " "), nil
	}
	parts, err := t.decoder.decodeChain(tokens)
	if err != nil {
		return "", err
	}
	return strings.Join(parts, ""), nil
}

// TokenToID returns the id of a token of the vocabulary or added tokens.
func (t *Tokenizer) TokenToID(s string) (int, bool) {
	if id, ok := t.added.byContent[s]; ok {
		return id, true
	}
	return t.model.tokenToID(s)
}

// IDToToken returns the token of an id of the vocabulary or added tokens.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if s, ok := t.added.idToToken(id); ok {
		return s, true
	}
	return t.model.idToToken(id)
}
