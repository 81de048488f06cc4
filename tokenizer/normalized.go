package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// span is a byte range [0]..[1] of the whole input text. 32 bits keep the
// alignments of a long text small (Encode refuses texts of 2 GiB and more).
type span [2]int32

// maxText is the length of the longest text Encode takes: a span holds
// offsets in 32 bits.
const maxText = 1<<31 - 1

// normString is a text under normalization that keeps, for every byte of the
// normalized text, the byte range of the input it comes from, so that token
// offsets can be mapped back to the input after normalizers changed it. It
// follows the alignment rules of the tokenizers library.
//
// The library gives every piece its own original text and alignments
// relative to it; here alignments are ranges of the whole input and shift is
// where the piece's original starts, so that cutting a text into pieces
// shares the alignments instead of copying them (slice is O(1)). An
// alignment array is never changed in place: transformations make new ones.
type normString struct {
	norm  string
	align []span // one per byte of norm, ranges into the whole input
	shift int    // offset of the piece's original text within the whole input
}

func newNormString(s string) *normString {
	n := &normString{norm: s, align: make([]span, len(s))}
	for i := 0; i < len(s); {
		l := 1
		if s[i] >= utf8.RuneSelf {
			_, l = utf8.DecodeRuneInString(s[i:])
		}
		a := span{int32(i), int32(i + l)}
		for k := 0; k < l; k++ {
			n.align[i+k] = a
		}
		i += l
	}
	return n
}

// appendGrow appends x to s, doubling the capacity when s is full: append
// grows a long slice by a quarter only, which copies the slices of a long
// text several times over.
func appendGrow[T any](s []T, x T) []T {
	if len(s) == cap(s) {
		ns := make([]T, len(s), max(2*cap(s), 16))
		copy(ns, s)
		s = ns
	}
	return append(s, x)
}

// origin is the alignment the library gives to text inserted where there
// is nothing to align with: the start of the piece's original.
func (n *normString) origin() span { return span{int32(n.shift), int32(n.shift)} }

// change is one rune of a transformation: delta > 0 inserts the rune,
// delta == 0 replaces the next rune, delta < 0 replaces the next rune and
// removes -delta runes after it.
type change struct {
	r     rune
	delta int
}

// originalRange maps a normalized byte range to the piece's original text
// (relative to n.shift).
func (n *normString) originalRange(start, end int) (int, int, bool) {
	if start == end {
		return start, end, true
	}
	if start > end || end > len(n.align) || start < 0 {
		return 0, 0, false
	}
	return int(n.align[start][0]) - n.shift, int(n.align[end-1][1]) - n.shift, true
}

// transformRange replaces the normalized bytes [start,end) by the runes of
// dest, skipping initialOffset runes at the start of the range.
func (n *normString) transformRange(start, end int, dest []change, initialOffset int) {
	old := n.norm[start:end]
	pos := 0 // byte position in old of the next rune not yet consumed
	consume := func(k int) int {
		total := 0
		for ; k > 0 && pos < len(old); k-- {
			l := 1
			if old[pos] >= utf8.RuneSelf {
				_, l = utf8.DecodeRuneInString(old[pos:])
			}
			pos += l
			total += l
		}
		return total
	}
	size := len(n.norm) - (end - start)
	for _, c := range dest {
		if l := utf8.RuneLen(c.r); l > 0 {
			size += l
		} else {
			size += 3
		}
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.WriteString(n.norm[:start])
	newAlign := make([]span, 0, size)
	newAlign = append(newAlign, n.align[:start]...)
	offset := start + consume(initialOffset)
	for _, c := range dest {
		a := n.origin()
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
			newAlign = append(newAlign, a)
		}
	}
	sb.WriteString(n.norm[end:])
	newAlign = append(newAlign, n.align[end:]...)
	n.align = newAlign
	n.norm = sb.String()
}

// byteLevel maps every byte to its byte-level rune: the first byte of an
// input rune replaces it, the others are inserted after it. It is
// transform with those changes, without building them.
func (n *normString) byteLevel() {
	s := n.norm
	size := 0
	for i := 0; i < len(s); i++ {
		size += byteToRuneLen[s[i]]
	}
	var sb strings.Builder
	sb.Grow(size)
	al := make([]span, 0, size)
	for i := 0; i < len(s); {
		l := 1
		if s[i] >= utf8.RuneSelf {
			_, l = utf8.DecodeRuneInString(s[i:])
		}
		for k := 0; k < l; k++ {
			a := n.align[i+l-1]
			if k == 0 {
				a = n.align[i]
			}
			r := byteToRune[s[i+k]]
			sb.WriteRune(r)
			al = append(al, a)
			if byteToRuneLen[s[i+k]] == 2 {
				al = append(al, a)
			}
		}
		i += l
	}
	n.norm = sb.String()
	n.align = al
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
	size := len(n.norm)
	for _, m := range matches {
		if m.isMatch {
			size += len(content) - (m.end - m.start)
		}
	}
	var sb strings.Builder
	sb.Grow(size)
	newAlign := make([]span, 0, size)
	last := 0
	for _, m := range matches {
		if !m.isMatch {
			continue
		}
		sb.WriteString(n.norm[last:m.start])
		newAlign = append(newAlign, n.align[last:m.start]...)
		a := n.origin()
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

// slice returns the part of n for the normalized byte range [start,end);
// it shares n's alignments.
func (n *normString) slice(start, end int) *normString {
	s := n.sliceValue(start, end)
	return &s
}

func (n *normString) sliceValue(start, end int) normString {
	os, _, ok := n.originalRange(start, end)
	if !ok {
		return normString{shift: n.shift}
	}
	if start == end {
		os = 0
		if start < len(n.align) {
			os = int(n.align[start][0]) - n.shift
		} else if len(n.align) > 0 {
			os = int(n.align[len(n.align)-1][1]) - n.shift
		}
	}
	return normString{
		norm:  n.norm[start:end],
		align: n.align[start:end:end],
		shift: n.shift + os,
	}
}

// split splits n on the matches with the given behaviour.
func (n *normString) split(matches []match, behavior splitBehavior) []*normString {
	type piece struct {
		start, end int
		remove     bool
	}
	pieces := make([]piece, 0, len(matches))
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
	kept := 0
	for _, p := range pieces {
		if !p.remove {
			kept++
		}
	}
	out := make([]*normString, kept)
	slab := make([]normString, kept) // one allocation for all pieces
	k := 0
	for _, p := range pieces {
		if !p.remove {
			slab[k] = n.sliceValue(p.start, p.end)
			out[k] = &slab[k]
			k++
		}
	}
	return out
}
