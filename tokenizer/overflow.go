package tokenizer

import "fmt"

// Truncation with a stride and the overflowing pieces, as the library's
// Encoding::truncate, merge_with and pad do them.

// clone copies e and its overflowing pieces.
func (e *Encoding) clone() *Encoding {
	c := newEncoding(e.len())
	c.appendAll(e)
	c.src = e.src
	for _, o := range e.Overflowing {
		c.Overflowing = append(c.Overflowing, o.clone())
	}
	return c
}

// part copies tokens [start,stop) of e, without overflowing pieces.
func (e *Encoding) part(start, stop int) *Encoding {
	c := newEncoding(stop - start)
	c.IDs = append(c.IDs, e.IDs[start:stop]...)
	c.Tokens = append(c.Tokens, e.Tokens[start:stop]...)
	c.Offsets = append(c.Offsets, e.Offsets[start:stop]...)
	c.TypeIDs = append(c.TypeIDs, e.TypeIDs[start:stop]...)
	c.SpecialTokensMask = append(c.SpecialTokensMask, e.SpecialTokensMask[start:stop]...)
	c.AttentionMask = append(c.AttentionMask, e.AttentionMask[start:stop]...)
	c.src = e.src
	return c
}

// truncate keeps maxLen tokens of e (the first ones, or the last ones for
// direction "Left") and makes the rest overflowing pieces of maxLen tokens
// that overlap their neighbours by stride tokens; the overflowing pieces e
// had are dropped, as the library drops them.
func truncate(e *Encoding, maxLen, stride int, direction string) error {
	n := e.len()
	if maxLen >= n {
		return nil
	}
	if maxLen == 0 {
		whole := *e
		*e = Encoding{src: e.src, Overflowing: []*Encoding{&whole}}
		return nil
	}
	if stride >= maxLen {
		return fmt.Errorf("truncation: stride %d must be less than the max_length %d (less the special tokens)", stride, maxLen)
	}
	step := maxLen - stride
	var parts [][2]int
	if direction == "Left" {
		for stop := n; stop > 0; stop -= step {
			start := max(stop-maxLen, 0)
			parts = append(parts, [2]int{start, stop})
			if start == 0 {
				break
			}
		}
	} else {
		for start := 0; start < n; start += step {
			stop := min(start+maxLen, n)
			parts = append(parts, [2]int{start, stop})
			if stop == n {
				break
			}
		}
	}
	first := e.part(parts[0][0], parts[0][1])
	for _, p := range parts[1:] {
		first.Overflowing = append(first.Overflowing, e.part(p[0], p[1]))
	}
	*e = *first
	return nil
}

// mergeWith appends pair to e; the overflowing pieces combine as the
// library combines them: each of e's with pair and with each of pair's,
// then e with each of pair's.
func (e *Encoding) mergeWith(pair *Encoding) {
	var over []*Encoding
	for _, o := range e.Overflowing {
		n := o.clone()
		n.mergeWith(pair.clone())
		over = append(over, n)
		for _, po := range pair.Overflowing {
			n := o.clone()
			n.mergeWith(po.clone())
			over = append(over, n)
		}
	}
	for _, po := range pair.Overflowing {
		n := e.clone()
		n.mergeWith(po.clone())
		over = append(over, n)
	}
	e.appendAll(pair)
	e.Overflowing = over
}

// mergeEncodings is the library's Encoding::merge: the encodings one after
// the other, starting from an empty one.
func mergeEncodings(encs []*Encoding) *Encoding {
	out := &Encoding{}
	for _, e := range encs {
		out.mergeWith(e)
	}
	return out
}

// eachPiece calls f on e and on each of its overflowing pieces.
func eachPiece(e *Encoding, f func(*Encoding)) {
	f(e)
	for _, o := range e.Overflowing {
		f(o)
	}
}

// Truncation is how Encode cuts long encodings: to MaxLength tokens, the
// special tokens included, the rest going to the encoding's Overflowing
// pieces of MaxLength tokens overlapping by Stride tokens. Strategy is
// "LongestFirst" (the default), "OnlyFirst" or "OnlySecond" (which sequence
// of a pair is cut); Direction "Right" (the default: keep the first tokens)
// or "Left".
type Truncation struct {
	MaxLength, Stride   int
	Strategy, Direction string
}

// WithTruncation returns a copy of t that truncates as tr says (replacing
// the truncation of its file), as the library's Tokenizer::with_truncation.
func (t *Tokenizer) WithTruncation(tr Truncation) (*Tokenizer, error) {
	tc, err := newTruncation(tr)
	if err != nil {
		return nil, err
	}
	c := *t
	c.truncation = tc
	return &c, nil
}

// newTruncation checks tr (the file's truncation or one given in code)
// with the library's defaults: strategy LongestFirst, direction Right.
func newTruncation(tr Truncation) (*truncation, error) {
	if tr.Strategy == "" {
		tr.Strategy = "LongestFirst"
	}
	if tr.Direction == "" {
		tr.Direction = "Right"
	}
	switch tr.Strategy {
	case "LongestFirst", "OnlyFirst", "OnlySecond":
	default:
		return nil, fmt.Errorf("truncation.strategy: unknown %q (LongestFirst, OnlyFirst or OnlySecond)", tr.Strategy)
	}
	if tr.Direction != "Right" && tr.Direction != "Left" {
		return nil, fmt.Errorf("truncation.direction: unknown %q (Right or Left)", tr.Direction)
	}
	if tr.MaxLength < 0 || tr.Stride < 0 {
		return nil, fmt.Errorf("truncation: negative max_length %d or stride %d", tr.MaxLength, tr.Stride)
	}
	return &truncation{direction: tr.Direction, maxLength: tr.MaxLength, strategy: tr.Strategy, stride: tr.Stride}, nil
}
