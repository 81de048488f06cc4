package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// span is a byte range [0]..[1].
type span [2]int

// normString is a text under normalization that keeps, for every byte of the
// normalized text, the byte range of the original text it comes from, so that
// token offsets can be mapped back to the input after normalizers changed it.
// It follows the alignment rules of the tokenizers library.
type normString struct {
	original string
	norm     string
	align    []span // one per byte of norm, ranges into original
	shift    int    // offset of original within the whole input
}

func newNormString(s string) *normString {
	n := &normString{original: s, norm: s, align: make([]span, len(s))}
	for i, r := range s {
		l := utf8.RuneLen(r)
		if r == utf8.RuneError {
			_, l = utf8.DecodeRuneInString(s[i:])
		}
		for k := 0; k < l; k++ {
			n.align[i+k] = span{i, i + l}
		}
	}
	return n
}

// change is one rune of a transformation: delta > 0 inserts the rune,
// delta == 0 replaces the next rune, delta < 0 replaces the next rune and
// removes -delta runes after it.
type change struct {
	r     rune
	delta int
}

// originalRange maps a normalized byte range to the original string
// (relative to n.original).
func (n *normString) originalRange(start, end int) (int, int, bool) {
	if start == end {
		return start, end, true
	}
	if start > end || end > len(n.align) || start < 0 {
		return 0, 0, false
	}
	return n.align[start][0], n.align[end-1][1], true
}

// transformRange replaces the normalized bytes [start,end) by the runes of
// dest, skipping initialOffset runes at the start of the range.
func (n *normString) transformRange(start, end int, dest []change, initialOffset int) {
	old := n.norm[start:end]
	pos := 0 // byte position in old of the next rune not yet consumed
	consume := func(k int) int {
		total := 0
		for ; k > 0 && pos < len(old); k-- {
			_, l := utf8.DecodeRuneInString(old[pos:])
			pos += l
			total += l
		}
		return total
	}
	offset := start + consume(initialOffset)
	var sb strings.Builder
	sb.Grow(end - start)
	aligns := make([]span, 0, end-start)
	for _, c := range dest {
		var a span
		if c.delta > 0 {
			if offset >= 1 && offset-1 < len(n.align) {
				a = n.align[offset-1]
			}
		} else if offset < len(n.align) {
			a = n.align[offset]
		} else if len(n.align) > 0 {
			a = n.align[len(n.align)-1]
		}
		if c.delta <= 0 {
			offset += consume(1)
		}
		if c.delta < 0 {
			offset += consume(-c.delta)
		}
		l := utf8.RuneLen(c.r)
		if l < 0 {
			c.r, l = utf8.RuneError, 3
		}
		sb.WriteRune(c.r)
		for k := 0; k < l; k++ {
			aligns = append(aligns, a)
		}
	}
	newAlign := make([]span, 0, len(n.align)-(end-start)+len(aligns))
	newAlign = append(newAlign, n.align[:start]...)
	newAlign = append(newAlign, aligns...)
	newAlign = append(newAlign, n.align[end:]...)
	n.align = newAlign
	n.norm = n.norm[:start] + sb.String() + n.norm[end:]
}

func (n *normString) transform(dest []change, initialOffset int) {
	n.transformRange(0, len(n.norm), dest, initialOffset)
}

// filter keeps the runes for which keep is true.
func (n *normString) filter(keep func(rune) bool) {
	all := true
	for _, r := range n.norm {
		if !keep(r) {
			all = false
			break
		}
	}
	if all {
		return // nothing removed: the transformation would change nothing
	}
	dest := make([]change, 0, len(n.norm))
	removed := 0
	removedStart := 0
	var last rune
	have := false
	for _, r := range n.norm {
		if keep(r) {
			if have {
				dest = append(dest, change{last, -removed})
			} else {
				removedStart = removed
			}
			last, have = r, true
			removed = 0
		} else {
			removed++
		}
	}
	if have {
		dest = append(dest, change{last, -removed})
	}
	n.transform(dest, removedStart)
}

// mapEach replaces every rune by exactly one rune.
func (n *normString) mapEach(f func(rune) rune) {
	same := true
	for _, r := range n.norm {
		if f(r) != r {
			same = false
			break
		}
	}
	if same {
		return
	}
	dest := make([]change, 0, len(n.norm))
	for _, r := range n.norm {
		dest = append(dest, change{f(r), 0})
	}
	n.transform(dest, 0)
}

// prepend inserts s before the normalized text (nothing when it is empty).
func (n *normString) prepend(s string) {
	if n.norm == "" {
		return
	}
	first, l := utf8.DecodeRuneInString(n.norm)
	var dest []change
	i := 0
	for _, r := range s {
		d := 1
		if i == 0 {
			d = 0
		}
		dest = append(dest, change{r, d})
		i++
	}
	dest = append(dest, change{first, 1})
	n.transformRange(0, l, dest, 0)
}

// replaceMatches replaces each match range by content, as the library's
// NormalizedString::replace does.
func (n *normString) replaceMatches(matches []match, content string) {
	var sb strings.Builder
	newAlign := make([]span, 0, len(n.align))
	last := 0
	for _, m := range matches {
		if !m.isMatch {
			continue
		}
		sb.WriteString(n.norm[last:m.start])
		newAlign = append(newAlign, n.align[last:m.start]...)
		var a span
		if m.end >= 1 {
			a = n.align[m.end-1]
		}
		for _, r := range content {
			sb.WriteRune(r)
			for k := utf8.RuneLen(r); k > 0; k-- {
				newAlign = append(newAlign, a)
			}
		}
		last = m.end
	}
	sb.WriteString(n.norm[last:])
	newAlign = append(newAlign, n.align[last:]...)
	n.norm = sb.String()
	n.align = newAlign
}

// strip removes leading and/or trailing white space.
func (n *normString) strip(left, right bool) {
	runes := []rune(n.norm)
	lead, trail := 0, 0
	if left {
		for lead < len(runes) && isWhitespace(runes[lead]) {
			lead++
		}
	}
	if right {
		for trail < len(runes)-lead && isWhitespace(runes[len(runes)-1-trail]) {
			trail++
		}
	}
	if lead == 0 && trail == 0 {
		return
	}
	count := len(runes)
	var dest []change
	for i, r := range runes {
		if i < lead || i >= count-trail {
			continue
		}
		if i == count-trail-1 {
			dest = append(dest, change{r, -trail})
		} else {
			dest = append(dest, change{r, 0})
		}
	}
	n.transform(dest, lead)
}

// slice returns the part of n for the normalized byte range [start,end).
func (n *normString) slice(start, end int) *normString {
	os, oe, ok := n.originalRange(start, end)
	if !ok {
		return &normString{shift: n.shift}
	}
	if start == end {
		os, oe = 0, 0
		if start < len(n.align) {
			os = n.align[start][0]
			oe = os
		} else if len(n.align) > 0 {
			os = n.align[len(n.align)-1][1]
			oe = os
		}
	}
	al := make([]span, end-start)
	for i, a := range n.align[start:end] {
		al[i] = span{a[0] - os, a[1] - os}
	}
	return &normString{
		original: n.original[os:oe],
		norm:     n.norm[start:end],
		align:    al,
		shift:    n.shift + os,
	}
}

// split splits n on the matches with the given behaviour.
func (n *normString) split(matches []match, behavior splitBehavior) []*normString {
	type piece struct {
		start, end int
		remove     bool
	}
	var pieces []piece
	switch behavior {
	case splitIsolated:
		for _, m := range matches {
			pieces = append(pieces, piece{m.start, m.end, false})
		}
	case splitRemoved:
		for _, m := range matches {
			pieces = append(pieces, piece{m.start, m.end, m.isMatch})
		}
	case splitContiguous:
		prev := false
		for _, m := range matches {
			if m.isMatch == prev && len(pieces) > 0 {
				pieces[len(pieces)-1].end = m.end
			} else {
				pieces = append(pieces, piece{m.start, m.end, false})
			}
			prev = m.isMatch
		}
	case splitMergedWithPrevious:
		prev := false
		for _, m := range matches {
			if m.isMatch && !prev && len(pieces) > 0 {
				pieces[len(pieces)-1].end = m.end
			} else {
				pieces = append(pieces, piece{m.start, m.end, false})
			}
			prev = m.isMatch
		}
	case splitMergedWithNext:
		prev := false
		for i := len(matches) - 1; i >= 0; i-- {
			m := matches[i]
			if m.isMatch && !prev && len(pieces) > 0 {
				pieces[len(pieces)-1].start = m.start
			} else {
				pieces = append(pieces, piece{m.start, m.end, false})
			}
			prev = m.isMatch
		}
		for i, j := 0, len(pieces)-1; i < j; i, j = i+1, j-1 {
			pieces[i], pieces[j] = pieces[j], pieces[i]
		}
	}
	out := make([]*normString, 0, len(pieces))
	for _, p := range pieces {
		if !p.remove {
			out = append(out, n.slice(p.start, p.end))
		}
	}
	return out
}
