package tokenizer

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// match is one piece of a text cut by a pattern: a match or the text between
// two matches.
type match struct {
	start, end int
	isMatch    bool
}

// finder finds the non-overlapping matches of a pattern, left to right, as
// byte ranges.
type finder interface {
	find(s string, yield func(start, end int)) error
}

// findMatches cuts s into matches and gaps as the library's Pattern does.
func findMatches(f finder, s string) ([]match, error) {
	if s == "" {
		return []match{{0, 0, false}}, nil
	}
	var out []match
	prev := 0
	err := f.find(s, func(start, end int) {
		if prev != start {
			out = appendGrow(out, match{prev, start, false})
		}
		out = appendGrow(out, match{start, end, true})
		prev = end
	})
	if err != nil {
		return nil, err
	}
	if prev != len(s) {
		out = append(out, match{prev, len(s), false})
	}
	return out, nil
}

func invertMatches(ms []match) []match {
	for i := range ms {
		ms[i].isMatch = !ms[i].isMatch
	}
	return ms
}

// runeFinder matches single runes for which the predicate holds.
type runeFinder func(rune) bool

func (f runeFinder) find(s string, yield func(int, int)) error {
	for i, r := range s {
		if f(r) {
			_, l := utf8.DecodeRuneInString(s[i:])
			yield(i, i+l)
		}
	}
	return nil
}

// literalFinder matches a literal string.
type literalFinder string

func (f literalFinder) find(s string, yield func(int, int)) error {
	if f == "" {
		return nil
	}
	i := 0
	for {
		k := strings.Index(s[i:], string(f))
		if k < 0 {
			return nil
		}
		yield(i+k, i+k+len(f))
		i += k + len(f)
	}
}

// regexTimeout bounds one regex search; a pattern that backtracks
// catastrophically fails with an error instead of hanging.
const regexTimeout = 10 * time.Second

// regexFinder runs an Oniguruma-style pattern with regexp2.
type regexFinder struct {
	re *regexp2.Regexp
}

func compileRegex(pattern string) (finder, error) {
	if f := fastFinderFor(pattern); f != nil {
		return f, nil
	}
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("bad regex %q: %v", pattern, err)
	}
	re.MatchTimeout = regexTimeout
	return &regexFinder{re: re}, nil
}

func (f *regexFinder) find(s string, yield func(int, int)) error {
	runes := make([]rune, 0, len(s))
	byteAt := make([]int, 0, len(s)+1)
	for i, r := range s {
		runes = append(runes, r)
		byteAt = append(byteAt, i)
	}
	byteAt = append(byteAt, len(s))
	m, err := f.re.FindRunesMatch(runes)
	for {
		if err != nil {
			return fmt.Errorf("regex %q: %v", f.re.String(), err)
		}
		if m == nil {
			return nil
		}
		yield(byteAt[m.Index], byteAt[m.Index+m.Length])
		m, err = f.re.FindNextMatch(m)
	}
}

const (
	gpt2Pattern   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	cl100kPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	o200kPattern  = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

func fastFinderFor(pattern string) finder {
	switch pattern {
	case gpt2Pattern:
		return gpt2Finder{}
	case cl100kPattern:
		return cl100kFinder{maxDigits: 3}
	case qwen2Pattern:
		return cl100kFinder{maxDigits: 1}
	case o200kPattern:
		return o200kFinder{}
	}
	return nil
}

// isSpace is Oniguruma's \s with Unicode: the White_Space property.
func isSpace(r rune) bool { return unicode.IsSpace(r) }

func isLetter(r rune) bool { return unicode.IsLetter(r) }
func isNumber(r rune) bool { return unicode.IsNumber(r) }

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isSpace(r) && !isLetter(r) && !isNumber(r) }

func runeAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	c := s[i]
	if c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// skip advances over runes for which f holds, at most max of them (max < 0: no limit).
func skip(s string, i int, f func(rune) bool, max int) int {
	for max != 0 {
		r, l := runeAt(s, i)
		if l == 0 || !f(r) {
			break
		}
		i += l
		max--
	}
	return i
}

// contraction matches 's 't 're 've 'm 'll 'd at i (s[i] == '\”).
func contraction(s string, i int, fold bool) int {
	rest := s[i+1:]
	low := func(r rune) rune {
		if fold {
			return unicode.ToLower(r)
		}
		return r
	}
	r1, l1 := runeAt(rest, 0)
	if l1 == 0 {
		return 0
	}
	switch low(r1) {
	case 's', 't', 'm', 'd':
		return 1 + l1
	case 'r', 'v', 'l':
		r2, l2 := runeAt(rest, l1)
		if l2 == 0 {
			return 0
		}
		want := 'e'
		if low(r1) == 'l' {
			want = 'l'
		}
		if low(r2) == want {
			return 1 + l1 + l2
		}
	}
	return 0
}

// spaceRun matches \s+(?!\S)|\s+ at i, where s[i] is white space.
func spaceRun(s string, i int) int {
	end := i
	last := i
	for {
		r, l := runeAt(s, end)
		if l == 0 || !isSpace(r) {
			break
		}
		last = end
		end += l
	}
	if end == len(s) || last == i {
		return end
	}
	return last
}

// gpt2Finder is GPT-2's pre-tokenizer pattern, hand-written:
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
type gpt2Finder struct{}

func (gpt2Finder) find(s string, yield func(int, int)) error {
	i := 0
	for i < len(s) {
		r, l := runeAt(s, i)
		if r == '\'' {
			if n := contraction(s, i, false); n > 0 {
				yield(i, i+n)
				i += n
				continue
			}
		}
		j := i
		c, cl := r, l
		if r == ' ' {
			if r2, l2 := runeAt(s, i+1); l2 > 0 && !isSpace(r2) {
				j, c, cl = i+1, r2, l2
			}
		}
		var end int
		switch {
		case isLetter(c):
			end = skip(s, j+cl, isLetter, -1)
		case isNumber(c):
			end = skip(s, j+cl, isNumber, -1)
		case !isSpace(c):
			end = skip(s, j+cl, isOther, -1)
		default:
			end = spaceRun(s, i)
		}
		yield(i, end)
		i = end
	}
	return nil
}

// cl100kFinder is the cl100k/Llama-3 pattern (maxDigits 3) and Qwen2's
// (maxDigits 1), hand-written:
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
type cl100kFinder struct{ maxDigits int }

func isCRLF(r rune) bool { return r == '\r' || r == '\n' }

func (f cl100kFinder) find(s string, yield func(int, int)) error {
	i := 0
	for i < len(s) {
		end := f.matchAt(s, i)
		yield(i, end)
		i = end
	}
	return nil
}

func (f cl100kFinder) matchAt(s string, i int) int {
	r, l := runeAt(s, i)
	if r == '\'' {
		if n := contraction(s, i, true); n > 0 {
			return i + n
		}
	}
	if isLetter(r) {
		return skip(s, i+l, isLetter, -1)
	}
	if !isCRLF(r) && !isNumber(r) {
		if r2, l2 := runeAt(s, i+l); l2 > 0 && isLetter(r2) {
			return skip(s, i+l+l2, isLetter, -1)
		}
	}
	if isNumber(r) {
		return skip(s, i+l, isNumber, f.maxDigits-1)
	}
	j, c, cl := i, r, l
	if r == ' ' {
		if r2, l2 := runeAt(s, i+1); l2 > 0 && isOther(r2) {
			j, c, cl = i+1, r2, l2
		}
	}
	if isOther(c) {
		end := skip(s, j+cl, isOther, -1)
		return skip(s, end, isCRLF, -1)
	}
	// r is white space
	end := i
	lastNL := -1
	for {
		r, l := runeAt(s, end)
		if l == 0 || !isSpace(r) {
			break
		}
		if isCRLF(r) {
			lastNL = end + l
		}
		end += l
	}
	if lastNL > 0 {
		return lastNL
	}
	return spaceRun(s, i)
}

// o200k character classes: upper is [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}],
// lower is [\p{Ll}\p{Lm}\p{Lo}\p{M}].
func isO200kUpper(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo, unicode.M)
}

func isO200kLower(r rune) bool {
	return unicode.In(r, unicode.Ll, unicode.Lm, unicode.Lo, unicode.M)
}

// o200kFinder is GPT-4o's o200k pattern, hand-written:
// [^\r\n\p{L}\p{N}]?UPPER*LOWER+CONTRACTION?|[^\r\n\p{L}\p{N}]?UPPER+LOWER*CONTRACTION?|\p{N}{1,3}|
// ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
type o200kFinder struct{}

func (f o200kFinder) find(s string, yield func(int, int)) error {
	i := 0
	for i < len(s) {
		end := f.matchAt(s, i)
		yield(i, end)
		i = end
	}
	return nil
}

// withContraction extends a word match ending at end by an optional
// case-insensitive contraction.
func withContraction(s string, end int) int {
	if end < len(s) && s[end] == '\'' {
		if n := contraction(s, end, true); n > 0 {
			return end + n
		}
	}
	return end
}

// wordUpperLower matches UPPER*LOWER+ at j; -1 if it does not match.
func wordUpperLower(s string, j int) int {
	// the run of UPPER runes, remembering the last one that is also LOWER
	u := j
	lastBoth := -1
	for {
		r, l := runeAt(s, u)
		if l == 0 || !isO200kUpper(r) {
			break
		}
		if isO200kLower(r) {
			lastBoth = u + l
		}
		u += l
	}
	if r, l := runeAt(s, u); l > 0 && isO200kLower(r) {
		return skip(s, u+l, isO200kLower, -1)
	}
	// backtrack: LOWER+ is the last UPPER rune that is also LOWER
	return lastBoth
}

// wordUpperPlusLower matches UPPER+LOWER* at j; -1 if it does not match.
func wordUpperPlusLower(s string, j int) int {
	u := skip(s, j, isO200kUpper, -1)
	if u == j {
		return -1
	}
	return skip(s, u, isO200kLower, -1)
}

func (o200kFinder) matchAt(s string, i int) int {
	r, l := runeAt(s, i)
	prefix := !isCRLF(r) && !isLetter(r) && !isNumber(r)
	for _, word := range []func(string, int) int{wordUpperLower, wordUpperPlusLower} {
		if prefix {
			if end := word(s, i+l); end > 0 {
				return withContraction(s, end)
			}
		}
		if end := word(s, i); end > 0 {
			return withContraction(s, end)
		}
	}
	if isNumber(r) {
		return skip(s, i+l, isNumber, 2)
	}
	j, c, cl := i, r, l
	if r == ' ' {
		if r2, l2 := runeAt(s, i+1); l2 > 0 && isOther(r2) {
			j, c, cl = i+1, r2, l2
		}
	}
	if isOther(c) {
		end := skip(s, j+cl, isOther, -1)
		return skip(s, end, func(r rune) bool { return r == '\r' || r == '\n' || r == '/' }, -1)
	}
	end := i
	lastNL := -1
	for {
		r, l := runeAt(s, end)
		if l == 0 || !isSpace(r) {
			break
		}
		if isCRLF(r) {
			lastNL = end + l
		}
		end += l
	}
	if lastNL > 0 {
		return lastNL
	}
	return spaceRun(s, i)
}
