package tokenizer

import (
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// split is one piece of a pre-tokenized text; tokens is set once the piece
// is tokenized (added tokens are tokenized when they are split out).
type split struct {
	n      *normString
	tokens []token
}

// preTokenized is the text cut into pieces by added tokens and
// pre-tokenizers.
type preTokenized struct {
	original string
	splits   []*split
}

// splitEach replaces every untokenized piece by the pieces f returns,
// dropping empty ones.
func (p *preTokenized) splitEach(f func(n *normString) ([]*normString, error)) error {
	out := make([]*split, 0, len(p.splits))
	for _, sp := range p.splits {
		if sp.tokens != nil {
			out = appendGrow(out, sp)
			continue
		}
		parts, err := f(sp.n)
		if err != nil {
			return err
		}
		kept := 0
		for _, n := range parts {
			if n.norm != "" {
				kept++
			}
		}
		slab := make([]split, kept) // one allocation for all parts
		k := 0
		for _, n := range parts {
			if n.norm != "" {
				slab[k].n = n
				out = appendGrow(out, &slab[k])
				k++
			}
		}
	}
	p.splits = out
	return nil
}

// normalizeEach changes every untokenized piece in place.
func (p *preTokenized) normalizeEach(f func(n *normString)) {
	for _, sp := range p.splits {
		if sp.tokens == nil {
			f(sp.n)
		}
	}
}

type splitBehavior int

const (
	splitRemoved splitBehavior = iota
	splitIsolated
	splitMergedWithPrevious
	splitMergedWithNext
	splitContiguous
)

func parseBehavior(s string) (splitBehavior, error) {
	switch s {
	case "Removed":
		return splitRemoved, nil
	case "Isolated":
		return splitIsolated, nil
	case "MergedWithPrevious":
		return splitMergedWithPrevious, nil
	case "MergedWithNext":
		return splitMergedWithNext, nil
	case "Contiguous":
		return splitContiguous, nil
	}
	return 0, fmt.Errorf("unknown split behavior %q", s)
}

// splitOn splits every piece on the matches of f.
func splitOn(p *preTokenized, f finder, b splitBehavior, invert bool) error {
	return p.splitEach(func(n *normString) ([]*normString, error) {
		ms, err := findMatches(f, n.norm)
		if err != nil {
			return nil, err
		}
		if invert {
			ms = invertMatches(ms)
		}
		return n.split(ms, b), nil
	})
}

// Unicode helpers with the library's (Rust's) definitions.

func isMark(r rune) bool      { return unicode.Is(unicode.M, r) }
func isConnector(r rune) bool { return unicode.Is(unicode.Pc, r) }

// isWhitespace is Rust's char::is_whitespace (White_Space).
func isWhitespace(r rune) bool { return unicode.IsSpace(r) }

// isPunc is ASCII punctuation or a Unicode punctuation (P*) rune.
func isPunc(r rune) bool {
	if r < 128 {
		return (r >= '!' && r <= '/') || (r >= ':' && r <= '@') || (r >= '[' && r <= '`') || (r >= '{' && r <= '~')
	}
	return unicode.IsPunct(r)
}

// isRegexWord is the regex crate's Unicode \w.
func isRegexWord(r rune) bool {
	if r < 128 {
		return r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
	}
	return unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_Alphabetic, r) ||
		isMark(r) || unicode.Is(unicode.Nd, r) || isConnector(r) || r == 0x200C || r == 0x200D
}

func lastRune(s string) (rune, int) {
	if s == "" {
		return -1, 0
	}
	return utf8.DecodeLastRuneInString(s)
}

// wordFinder matches \w+|[^\w\s]+.
type wordFinder struct{}

func (wordFinder) find(s string, yield func(int, int)) error {
	i := 0
	for i < len(s) {
		r, l := runeAt(s, i)
		switch {
		case isRegexWord(r):
			end := skip(s, i+l, isRegexWord, -1)
			yield(i, end)
			i = end
		case !isSpace(r):
			end := skip(s, i+l, func(r rune) bool { return !isRegexWord(r) && !isSpace(r) }, -1)
			yield(i, end)
			i = end
		default:
			i += l
		}
	}
	return nil
}

type byteLevelPre struct {
	addPrefixSpace, trimOffsets, useRegex bool
}

var gpt2Finder0 finder = gpt2Finder{}

func (b *byteLevelPre) preTokenize(p *preTokenized) error {
	err := p.splitEach(func(n *normString) ([]*normString, error) {
		if b.addPrefixSpace && (n.norm == "" || n.norm[0] != ' ') {
			n.prepend(" ")
		}
		if !b.useRegex {
			return []*normString{n}, nil
		}
		ms, err := findMatches(gpt2Finder0, n.norm)
		if err != nil {
			return nil, err
		}
		return n.split(ms, splitIsolated), nil
	})
	if err != nil {
		return err
	}
	p.normalizeEach(byteLevelTransform)
	return nil
}

// byteLevelTransform maps every byte to its byte-level rune.
func byteLevelTransform(n *normString) { n.byteLevel() }

var byteToRune, runeToByte = byteLevelTables()

// byteToRuneLen is the UTF-8 length of byteToRune's runes.
var byteToRuneLen = func() (t [256]int) {
	for b, r := range byteToRune {
		t[b] = utf8.RuneLen(r)
	}
	return
}()

func byteLevelTables() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := map[rune]byte{}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = rune(256 + n)
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}

type metaspacePre struct {
	replacement rune
	rep         string
	scheme      string // "always", "first", "never"
	split       bool
}

func (m *metaspacePre) preTokenize(p *preTokenized) error {
	return p.splitEach(func(n *normString) ([]*normString, error) {
		ms, _ := findMatches(runeFinder(func(r rune) bool { return r == ' ' }), n.norm)
		n.replaceMatches(ms, m.rep)
		r, _ := runeAt(n.norm, 0)
		switch m.scheme {
		case "always":
			if r != m.replacement {
				n.prepend(m.rep)
			}
		case "first":
			if r != m.replacement && n.shift == 0 {
				n.prepend(m.rep)
			}
		}
		if !m.split {
			return []*normString{n}, nil
		}
		ms, _ = findMatches(runeFinder(func(r rune) bool { return r == m.replacement }), n.norm)
		return n.split(ms, splitMergedWithNext), nil
	})
}

type splitPre struct {
	f        finder
	behavior splitBehavior
	invert   bool
}

func (s *splitPre) preTokenize(p *preTokenized) error {
	return splitOn(p, s.f, s.behavior, s.invert)
}

type bertPre struct{}

func (bertPre) preTokenize(p *preTokenized) error {
	if err := splitOn(p, runeFinder(isWhitespace), splitRemoved, false); err != nil {
		return err
	}
	return splitOn(p, runeFinder(isPunc), splitIsolated, false)
}

type whitespacePre struct{}

func (whitespacePre) preTokenize(p *preTokenized) error {
	return splitOn(p, wordFinder{}, splitRemoved, true)
}

type runeSplitPre struct {
	f        runeFinder
	behavior splitBehavior
}

func (s *runeSplitPre) preTokenize(p *preTokenized) error {
	return splitOn(p, s.f, s.behavior, false)
}

type sequencePre []preTokenizer

func (s sequencePre) preTokenize(p *preTokenized) error {
	for _, x := range s {
		if err := x.preTokenize(p); err != nil {
			return err
		}
	}
	return nil
}

type typed struct {
	Type string `json:"type"`
}

func componentType(raw json.RawMessage, path string) (string, error) {
	var t typed
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", fmt.Errorf("%s: %v", path, err)
	}
	if t.Type == "" {
		return "", fmt.Errorf("%s: missing \"type\"", path)
	}
	return t.Type, nil
}

func parsePattern(raw json.RawMessage, path string) (finder, error) {
	var pat struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	}
	if err := json.Unmarshal(raw, &pat); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	switch {
	case pat.String != nil:
		return literalFinder(*pat.String), nil
	case pat.Regex != nil:
		f, err := compileRegex(*pat.Regex)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("%s: want {\"String\": ...} or {\"Regex\": ...}", path)
}

func parsePreTokenizer(raw json.RawMessage, path string) (preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, path)
	if err != nil {
		return nil, err
	}
	bad := func(err error) error { return fmt.Errorf("%s (%s): %v", path, typ, err) }
	switch typ {
	case "ByteLevel":
		v := struct {
			AddPrefixSpace *bool `json:"add_prefix_space"`
			TrimOffsets    *bool `json:"trim_offsets"`
			UseRegex       *bool `json:"use_regex"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		return &byteLevelPre{addPrefixSpace: boolOr(v.AddPrefixSpace, true), trimOffsets: boolOr(v.TrimOffsets, true), useRegex: boolOr(v.UseRegex, true)}, nil
	case "Metaspace":
		m, err := parseMetaspace(raw)
		if err != nil {
			return nil, bad(err)
		}
		return m, nil
	case "Split":
		v := struct {
			Pattern  json.RawMessage `json:"pattern"`
			Behavior string          `json:"behavior"`
			Invert   bool            `json:"invert"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		f, err := parsePattern(v.Pattern, path+".pattern")
		if err != nil {
			return nil, err
		}
		b, err := parseBehavior(v.Behavior)
		if err != nil {
			return nil, fmt.Errorf("%s.behavior: %v", path, err)
		}
		return &splitPre{f: f, behavior: b, invert: v.Invert}, nil
	case "BertPreTokenizer":
		return bertPre{}, nil
	case "Whitespace":
		return whitespacePre{}, nil
	case "WhitespaceSplit":
		return &runeSplitPre{f: isWhitespace, behavior: splitRemoved}, nil
	case "Punctuation":
		v := struct {
			Behavior *string `json:"behavior"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		b := splitIsolated
		if v.Behavior != nil {
			if b, err = parseBehavior(*v.Behavior); err != nil {
				return nil, fmt.Errorf("%s.behavior: %v", path, err)
			}
		}
		return &runeSplitPre{f: isPunc, behavior: b}, nil
	case "Digits":
		v := struct {
			Individual bool `json:"individual_digits"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		b := splitContiguous
		if v.Individual {
			b = splitIsolated
		}
		return &runeSplitPre{f: unicode.IsNumber, behavior: b}, nil
	case "CharDelimiterSplit":
		v := struct {
			Delimiter string `json:"delimiter"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		if utf8.RuneCountInString(v.Delimiter) != 1 {
			return nil, fmt.Errorf("%s.delimiter: want one character, got %q", path, v.Delimiter)
		}
		d, _ := utf8.DecodeRuneInString(v.Delimiter)
		return &runeSplitPre{f: func(r rune) bool { return r == d }, behavior: splitRemoved}, nil
	case "UnicodeScripts":
		return unicodeScriptsPre{}, nil
	case "Sequence":
		v := struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		var seq sequencePre
		for i, r := range v.PreTokenizers {
			p, err := parsePreTokenizer(r, fmt.Sprintf("%s.pretokenizers[%d]", path, i))
			if err != nil {
				return nil, err
			}
			if p == nil {
				return nil, fmt.Errorf("%s.pretokenizers[%d]: null", path, i)
			}
			seq = append(seq, p)
		}
		return seq, nil
	}
	return nil, fmt.Errorf("%s: unknown type %q", path, typ)
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

func parseMetaspace(raw json.RawMessage) (*metaspacePre, error) {
	v := struct {
		Replacement    string  `json:"replacement"`
		AddPrefixSpace *bool   `json:"add_prefix_space"`
		PrependScheme  *string `json:"prepend_scheme"`
		Split          *bool   `json:"split"`
	}{}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(v.Replacement) != 1 {
		return nil, fmt.Errorf("replacement: want one character, got %q", v.Replacement)
	}
	m := &metaspacePre{rep: v.Replacement, scheme: "always", split: boolOr(v.Split, true)}
	m.replacement, _ = utf8.DecodeRuneInString(v.Replacement)
	if v.PrependScheme != nil {
		switch *v.PrependScheme {
		case "always", "first", "never":
			m.scheme = *v.PrependScheme
		default:
			return nil, fmt.Errorf("prepend_scheme: unknown %q", *v.PrependScheme)
		}
	}
	if v.AddPrefixSpace != nil && !*v.AddPrefixSpace {
		if v.PrependScheme == nil {
			m.scheme = "never"
		}
		if m.scheme != "never" {
			return nil, fmt.Errorf("add_prefix_space does not match declared prepend_scheme")
		}
	}
	return m, nil
}
