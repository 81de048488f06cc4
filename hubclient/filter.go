package hubclient

import (
	"fmt"
	"regexp"
	"strings"
)

// Filter selects repository files with huggingface_hub's allow_patterns /
// ignore_patterns semantics: a path is kept when it matches at least one
// include pattern (or there are none) and no exclude pattern. Patterns are
// Python fnmatch patterns, matched case-sensitively against the whole path:
// '*' matches any run of characters including '/', '?' one character,
// "[seq]" and "[!seq]" a character set. A pattern that ends in '/' gets '*'
// appended ("data/" selects everything under data/). Backslashes in patterns
// and paths are read as '/'.
//
// gobwas/glob was considered: it accepts only one range per bracket
// expression ("[a-z0-9]" fails to compile) and treats '{', '}' and '\' as
// syntax, so fnmatch patterns are translated to regular expressions instead.
type Filter struct {
	include, exclude []*regexp.Regexp
}

// NewFilter compiles include and exclude patterns.
func NewFilter(include, exclude []string) (*Filter, error) {
	f := &Filter{}
	var err error
	if f.include, err = compilePatterns(include); err != nil {
		return nil, err
	}
	if f.exclude, err = compilePatterns(exclude); err != nil {
		return nil, err
	}
	return f, nil
}

func compilePatterns(pats []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, p := range pats {
		p = strings.ReplaceAll(p, "\\", "/")
		if strings.HasSuffix(p, "/") {
			p += "*"
		}
		re, err := regexp.Compile(translateFnmatch(p))
		if err != nil {
			return nil, fmt.Errorf("hubclient: pattern %q: %w", p, err)
		}
		out = append(out, re)
	}
	return out, nil
}

// Match reports whether path is selected.
func (f *Filter) Match(path string) bool {
	if f == nil {
		return true
	}
	path = strings.ReplaceAll(path, "\\", "/")
	if len(f.include) > 0 {
		ok := false
		for _, re := range f.include {
			if re.MatchString(path) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, re := range f.exclude {
		if re.MatchString(path) {
			return false
		}
	}
	return true
}

// translateFnmatch turns an fnmatch pattern into an anchored RE2 expression
// with the semantics of Python's fnmatch.fnmatchcase, including its handling
// of bracket expressions: an unclosed '[' is literal, ']' right after '[' or
// "[!" is literal, "[!...]" negates, a leading '^' is literal, a '-' between
// two characters is a range, empty ranges ("z-a") are dropped, "[]" never
// matches anything and "[!]" matches any character.
func translateFnmatch(pat string) string {
	rs := []rune(pat)
	n := len(rs)
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for i := 0; i < n; {
		c := rs[i]
		i++
		switch c {
		case '*':
			for i < n && rs[i] == '*' {
				i++
			}
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i
			if j < n && rs[j] == '!' {
				j++
			}
			if j < n && rs[j] == ']' {
				j++
			}
			for j < n && rs[j] != ']' {
				j++
			}
			if j >= n {
				b.WriteString(`\[`)
				continue
			}
			b.WriteString(bracketClass(rs[i:j]))
			i = j + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`$`)
	return b.String()
}

// bracketClass translates the inside of an fnmatch bracket expression.
func bracketClass(set []rune) string {
	negate := len(set) > 0 && set[0] == '!'
	// Split into chunks at the hyphens that act as range operators, the way
	// fnmatch does: scanning starts after the first character (after "!x"
	// when negated) and skips two characters past each operator, so the
	// character after a range's upper bound is never an operator.
	var chunks [][]rune
	start := 0
	k := 1
	if negate {
		k = 2
	}
	for {
		h := -1
		for x := k; x < len(set); x++ {
			if set[x] == '-' {
				h = x
				break
			}
		}
		if h < 0 {
			break
		}
		chunks = append(chunks, set[start:h])
		start = h + 1
		k = h + 3
	}
	if rest := set[start:]; len(rest) > 0 || len(chunks) == 0 {
		chunks = append(chunks, rest)
	} else {
		// A trailing '-' is literal.
		last := len(chunks) - 1
		chunks[last] = append(append([]rune(nil), chunks[last]...), '-')
	}
	// Drop empty ranges: when a range's low bound exceeds its high bound,
	// both bounds disappear and the neighbouring chunks merge.
	for x := len(chunks) - 1; x > 0; x-- {
		prev, cur := chunks[x-1], chunks[x]
		if len(prev) > 0 && len(cur) > 0 && prev[len(prev)-1] > cur[0] {
			merged := append(append([]rune(nil), prev[:len(prev)-1]...), cur[1:]...)
			chunks[x-1] = merged
			chunks = append(chunks[:x], chunks[x+1:]...)
		}
	}
	// Collect the class items: characters inside chunks are literal; the
	// last character of one chunk and the first of the next form a range.
	type item struct{ lo, hi rune }
	var items []item
	for x, ch := range chunks {
		for y, r := range ch {
			if x > 0 && y == 0 {
				continue // upper bound of the previous range
			}
			if x < len(chunks)-1 && y == len(ch)-1 {
				items = append(items, item{r, chunks[x+1][0]})
				continue
			}
			items = append(items, item{r, r})
		}
	}
	if negate {
		items = items[1:] // the '!'
		if len(items) == 0 {
			return `.` // "[!]" after dropping ranges: any character
		}
	} else if len(items) == 0 {
		return `[^\x00-\x{10FFFF}]` // "[]" after dropping ranges: matches nothing
	}
	var b strings.Builder
	b.WriteByte('[')
	if negate {
		b.WriteByte('^')
	}
	for _, it := range items {
		fmt.Fprintf(&b, `\x{%x}`, it.lo)
		if it.hi != it.lo {
			fmt.Fprintf(&b, `-\x{%x}`, it.hi)
		}
	}
	b.WriteByte(']')
	return b.String()
}
