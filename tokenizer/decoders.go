package tokenizer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type decoderFunc func(tokens []string) ([]string, error)

func (f decoderFunc) decodeChain(tokens []string) ([]string, error) { return f(tokens) }

func byteLevelDecode(tokens []string) ([]string, error) {
	var buf []byte
	for _, t := range tokens {
		start := len(buf)
		ok := true
		for _, r := range t {
			b, found := runeToByte[r]
			if !found {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if !ok {
			buf = append(buf[:start], t...)
		}
	}
	return []string{lossyUTF8(buf)}, nil
}

// lossyUTF8 is Rust's String::from_utf8_lossy: one U+FFFD per maximal
// invalid sequence.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, l := utf8.DecodeRune(b)
		if r == utf8.RuneError && l <= 1 {
			// skip the maximal prefix of a valid sequence
			n := invalidPrefixLen(b)
			sb.WriteRune(utf8.RuneError)
			b = b[n:]
			continue
		}
		sb.Write(b[:l])
		b = b[l:]
	}
	return sb.String()
}

// invalidPrefixLen is the length of the maximal prefix of b that could start
// a valid UTF-8 sequence (at least 1), as the Unicode substitution practice
// Rust follows counts it.
func invalidPrefixLen(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if k > 0 {
			lo, hi = 0x80, 0xBF
		}
		if x < lo || x > hi {
			break
		}
		n++
	}
	return n
}

func wordPieceCleanup(s string) string {
	// the library applies the replacements one after the other
	for _, p := range [][2]string{{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}} {
		s = strings.ReplaceAll(s, p[0], p[1])
	}
	return s
}

func parseDecoder(raw json.RawMessage, path string) (decoder, error) {
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
		return decoderFunc(byteLevelDecode), nil
	case "WordPiece":
		v := struct {
			Prefix  *string `json:"prefix"`
			Cleanup *bool   `json:"cleanup"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		prefix := "##"
		if v.Prefix != nil {
			prefix = *v.Prefix
		}
		cleanup := boolOr(v.Cleanup, true)
		return decoderFunc(func(tokens []string) ([]string, error) {
			out := make([]string, len(tokens))
			for i, t := range tokens {
				if i != 0 {
					if strings.HasPrefix(t, prefix) {
						t = strings.Replace(t, prefix, "", 1)
					} else {
						t = " " + t
					}
				}
				if cleanup {
					t = wordPieceCleanup(t)
				}
				out[i] = t
			}
			return out, nil
		}), nil
	case "Metaspace":
		m, err := parseMetaspace(raw)
		if err != nil {
			return nil, bad(err)
		}
		return decoderFunc(func(tokens []string) ([]string, error) {
			out := make([]string, len(tokens))
			for i, t := range tokens {
				var sb strings.Builder
				for _, r := range t {
					if r == m.replacement {
						if i == 0 && m.scheme != "never" {
							continue
						}
						r = ' '
					}
					sb.WriteRune(r)
				}
				out[i] = sb.String()
			}
			return out, nil
		}), nil
	case "BPEDecoder":
		v := struct {
			Suffix *string `json:"suffix"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		suffix := "</w>"
		if v.Suffix != nil {
			suffix = *v.Suffix
		}
		return decoderFunc(func(tokens []string) ([]string, error) {
			out := make([]string, len(tokens))
			for i, t := range tokens {
				rep := " "
				if i == len(tokens)-1 {
					rep = ""
				}
				if suffix != "" {
					t = strings.ReplaceAll(t, suffix, rep)
				}
				out[i] = t
			}
			return out, nil
		}), nil
	case "ByteFallback":
		return decoderFunc(byteFallbackDecode), nil
	case "Fuse":
		return decoderFunc(func(tokens []string) ([]string, error) {
			return []string{strings.Join(tokens, "")}, nil
		}), nil
	case "Strip":
		v := struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		if utf8.RuneCountInString(v.Content) != 1 {
			return nil, fmt.Errorf("%s.content: want one character, got %q", path, v.Content)
		}
		c, _ := utf8.DecodeRuneInString(v.Content)
		return decoderFunc(func(tokens []string) ([]string, error) {
			out := make([]string, len(tokens))
			for i, t := range tokens {
				runes := []rune(t)
				s, e := 0, len(runes)
				for k := 0; k < v.Start && s < len(runes) && runes[s] == c; k++ {
					s++
				}
				for k := 0; k < v.Stop && e > s && runes[e-1] == c; k++ {
					e--
				}
				out[i] = string(runes[s:e])
			}
			return out, nil
		}), nil
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
		rn := &replaceNorm{f: f, content: v.Content}
		return decoderFunc(func(tokens []string) ([]string, error) {
			out := make([]string, len(tokens))
			for i, t := range tokens {
				n := newNormString(t)
				if err := rn.normalize(n); err != nil {
					return nil, err
				}
				out[i] = n.norm
			}
			return out, nil
		}), nil
	case "CTC":
		v := struct {
			Pad       *string `json:"pad_token"`
			Delimiter *string `json:"word_delimiter_token"`
			Cleanup   *bool   `json:"cleanup"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		pad, delim := "<pad>", "|"
		if v.Pad != nil {
			pad = *v.Pad
		}
		if v.Delimiter != nil {
			delim = *v.Delimiter
		}
		cleanup := boolOr(v.Cleanup, true)
		return decoderFunc(func(tokens []string) ([]string, error) {
			var out []string
			for i, t := range tokens {
				if i > 0 && tokens[i-1] == t {
					continue
				}
				t = strings.ReplaceAll(t, pad, "")
				if cleanup {
					t = strings.ReplaceAll(wordPieceCleanup(t), delim, " ")
				}
				if t != "" {
					out = append(out, t)
				}
			}
			return out, nil
		}), nil
	case "Sequence":
		v := struct {
			Decoders []json.RawMessage `json:"decoders"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		var seq []decoder
		for i, r := range v.Decoders {
			d, err := parseDecoder(r, fmt.Sprintf("%s.decoders[%d]", path, i))
			if err != nil {
				return nil, err
			}
			if d == nil {
				return nil, fmt.Errorf("%s.decoders[%d]: null", path, i)
			}
			seq = append(seq, d)
		}
		return decoderFunc(func(tokens []string) ([]string, error) {
			var err error
			for _, d := range seq {
				if tokens, err = d.decodeChain(tokens); err != nil {
					return nil, err
				}
			}
			return tokens, nil
		}), nil
	}
	return nil, fmt.Errorf("%s: unknown type %q", path, typ)
}

func byteFallbackDecode(tokens []string) ([]string, error) {
	var out []string
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range tokens {
		if len(t) == 6 && strings.HasPrefix(t, "<0x") && t[5] == '>' {
			if b, err := strconv.ParseUint(t[3:5], 16, 8); err == nil {
				pending = append(pending, byte(b))
				continue
			}
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out, nil
}
