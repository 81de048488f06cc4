package tokenizer

import (
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/unicode/rangetable"
)

type normalizerFunc func(n *normString) error

func (f normalizerFunc) normalize(n *normString) error { return f(n) }

type sequenceNorm []normalizer

func (s sequenceNorm) normalize(n *normString) error {
	for _, x := range s {
		if err := x.normalize(n); err != nil {
			return err
		}
	}
	return nil
}

// unicodeForm applies a Unicode normalization form segment by segment, so
// that every output rune stays aligned with the input runes it comes from:
// an output rune made of several input runes (composition) replaces the
// first and removes the others, input runes that become several output
// runes (decomposition) are replaced by the first and followed by inserted
// ones.
func unicodeForm(f norm.Form) normalizerFunc {
	decomp := norm.NFD
	if f == norm.NFKC || f == norm.NFKD {
		decomp = norm.NFKD
	}
	dlen := func(r rune) int {
		if r < 0x80 {
			return 1
		}
		n := utf8.RuneCountInString(decomp.String(string(r)))
		if n == 0 {
			return 1
		}
		return n
	}
	return func(n *normString) error {
		s := n.norm
		if f.IsNormalString(s) {
			return nil
		}
		dest := make([]change, 0, len(s))
		for i := 0; i < len(s); {
			k := f.NextBoundaryInString(s[i:], true)
			if k <= 0 {
				k = len(s) - i
			}
			seg := s[i : i+k]
			i += k
			in := []rune(seg)
			out := []rune(f.String(seg))
			if string(in) == string(out) {
				for _, r := range in {
					dest = append(dest, change{r, 0})
				}
				continue
			}
			alignSegment(in, out, dlen, &dest)
		}
		n.transform(dest, 0)
		return nil
	}
}

// alignSegment appends the changes turning in into out, pairing runes by
// the length of their full decompositions.
func alignSegment(in, out []rune, dlen func(rune) int, dest *[]change) {
	i, j := 0, 0
	for j < len(out) {
		if i >= len(in) {
			*dest = append(*dest, change{out[j], 1})
			j++
			continue
		}
		need := dlen(out[j])
		if have := dlen(in[i]); have <= need {
			// out[j] is made of in[i:i+k]
			k, sum := 1, have
			for i+k < len(in) && sum+dlen(in[i+k]) <= need {
				sum += dlen(in[i+k])
				k++
			}
			*dest = append(*dest, change{out[j], -(k - 1)})
			i += k
			j++
			continue
		} else {
			// in[i] becomes out[j:j+m]
			*dest = append(*dest, change{out[j], 0})
			rem := have - need
			j++
			for rem > 0 && j < len(out) {
				*dest = append(*dest, change{out[j], 1})
				rem -= dlen(out[j])
				j++
			}
			i++
		}
	}
	if i < len(in) {
		if len(*dest) > 0 && (*dest)[len(*dest)-1].delta <= 0 {
			(*dest)[len(*dest)-1].delta -= len(in) - i
		} else if len(*dest) > 0 {
			// the last rune was inserted: turn it into a replacement
			// of the remaining runes
			(*dest)[len(*dest)-1].delta = -(len(in) - i - 1)
		}
	}
}

// lowercase is Rust's char::to_lowercase for every rune.
func lowercase(n *normString) {
	needs := false
	for _, r := range n.norm {
		if r == 0x130 || unicode.ToLower(r) != r {
			needs = true
			break
		}
	}
	if !needs {
		return
	}
	dest := make([]change, 0, len(n.norm))
	for _, r := range n.norm {
		if r == 0x130 { // İ lowercases to i + combining dot above
			dest = append(dest, change{'i', 0}, change{0x307, 1})
			continue
		}
		dest = append(dest, change{unicode.ToLower(r), 0})
	}
	n.transform(dest, 0)
}

// stripAccents is the StripAccents normalizer: it removes every combining
// mark (M*).
func stripAccents(n *normString) {
	n.filter(func(r rune) bool { return !unicode.Is(unicode.M, r) })
}

func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) || (r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) || (r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

type bertNorm struct {
	cleanText, chinese, lowercase bool
	stripAccents                  bool
}

func (b *bertNorm) normalize(n *normString) error {
	if b.cleanText {
		n.filter(func(r rune) bool {
			if r == 0 || r == 0xFFFD {
				return false
			}
			if r == '\t' || r == '\n' || r == '\r' {
				return true
			}
			if r >= 0x20 && r < 0x7F {
				return true
			}
			return !unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs) && !isUnassigned(r)
		})
		n.mapEach(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' || isWhitespace(r) {
				return ' '
			}
			return r
		})
	}
	if b.chinese {
		has := false
		for _, r := range n.norm {
			if isChineseChar(r) {
				has = true
				break
			}
		}
		if has {
			dest := make([]change, 0, len(n.norm))
			for _, r := range n.norm {
				if isChineseChar(r) {
					dest = append(dest, change{' ', 0}, change{r, 1}, change{' ', 1})
				} else {
					dest = append(dest, change{r, 0})
				}
			}
			n.transform(dest, 0)
		}
	}
	if b.stripAccents {
		if err := unicodeForm(norm.NFD)(n); err != nil {
			return err
		}
		// BertNormalizer removes nonspacing marks (Mn) only
		n.filter(func(r rune) bool { return !unicode.Is(unicode.Mn, r) })
	}
	if b.lowercase {
		lowercase(n)
	}
	return nil
}

// assigned holds every assigned code point (the complement is category Cn).
var assigned = rangetable.Assigned(unicode.Version)

// isUnassigned reports a rune of category Cn (Rust's is_other includes it).
func isUnassigned(r rune) bool {
	if r < 0x80 {
		return false
	}
	if assigned != nil {
		return !unicode.Is(assigned, r)
	}
	for _, t := range unicode.Categories {
		if unicode.Is(t, r) {
			return false
		}
	}
	return true
}

type replaceNorm struct {
	f       finder
	content string
}

func (r *replaceNorm) normalize(n *normString) error {
	ms, err := findMatches(r.f, n.norm)
	if err != nil {
		return err
	}
	n.replaceMatches(ms, r.content)
	return nil
}

func parseNormalizer(raw json.RawMessage, path string) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, path)
	if err != nil {
		return nil, err
	}
	bad := func(err error) error { return fmt.Errorf("%s (%s): %v", path, typ, err) }
	switch typ {
	case "BertNormalizer":
		v := struct {
			CleanText    *bool `json:"clean_text"`
			Chinese      *bool `json:"handle_chinese_chars"`
			StripAccents *bool `json:"strip_accents"`
			Lowercase    *bool `json:"lowercase"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		b := &bertNorm{cleanText: boolOr(v.CleanText, true), chinese: boolOr(v.Chinese, true), lowercase: boolOr(v.Lowercase, true)}
		b.stripAccents = boolOr(v.StripAccents, b.lowercase)
		return b, nil
	case "NFC":
		return unicodeForm(norm.NFC), nil
	case "NFD":
		return unicodeForm(norm.NFD), nil
	case "NFKC":
		return unicodeForm(norm.NFKC), nil
	case "NFKD":
		return unicodeForm(norm.NFKD), nil
	case "Lowercase":
		return normalizerFunc(func(n *normString) error { lowercase(n); return nil }), nil
	case "StripAccents":
		return normalizerFunc(func(n *normString) error { stripAccents(n); return nil }), nil
	case "Strip":
		v := struct {
			Left  *bool `json:"strip_left"`
			Right *bool `json:"strip_right"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		l, r := boolOr(v.Left, true), boolOr(v.Right, true)
		return normalizerFunc(func(n *normString) error { n.strip(l, r); return nil }), nil
	case "Replace":
		v := struct {
			Pattern json.RawMessage `json:"pattern"`
			Content string          `json:"content"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		f, err := parsePattern(v.Pattern, path+".pattern")
		if err != nil {
			return nil, err
		}
		return &replaceNorm{f: f, content: v.Content}, nil
	case "Prepend":
		v := struct {
			Prepend string `json:"prepend"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		return normalizerFunc(func(n *normString) error {
			if n.norm != "" {
				n.prepend(v.Prepend)
			}
			return nil
		}), nil
	case "ByteLevel":
		return normalizerFunc(func(n *normString) error { byteLevelTransform(n); return nil }), nil
	case "Precompiled":
		v := struct {
			Charsmap *string `json:"precompiled_charsmap"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		p, err := parsePrecompiled(v.Charsmap)
		if err != nil {
			return nil, fmt.Errorf("%s.precompiled_charsmap: %v", path, err)
		}
		return p, nil
	case "Sequence":
		v := struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		var seq sequenceNorm
		for i, r := range v.Normalizers {
			x, err := parseNormalizer(r, fmt.Sprintf("%s.normalizers[%d]", path, i))
			if err != nil {
				return nil, err
			}
			if x == nil {
				return nil, fmt.Errorf("%s.normalizers[%d]: null", path, i)
			}
			seq = append(seq, x)
		}
		return seq, nil
	}
	return nil, fmt.Errorf("%s: unknown type %q", path, typ)
}
