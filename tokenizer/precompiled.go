package tokenizer

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/clipperhouse/uax29/v2/graphemes"
)

// precompiled is SentencePiece's compiled character map: a double-array
// trie (Darts) of UTF-8 sequences whose values index NUL-terminated
// replacement strings.
type precompiled struct {
	trie       []uint32
	normalized []byte
}

func parsePrecompiled(s *string) (normalizer, error) {
	if s == nil {
		return nil, fmt.Errorf("missing")
	}
	blob, err := base64.StdEncoding.DecodeString(*s)
	if err != nil {
		return nil, fmt.Errorf("not base64: %v", err)
	}
	if len(blob) < 4 {
		return nil, fmt.Errorf("%d bytes: too short for the trie size", len(blob))
	}
	size := binary.LittleEndian.Uint32(blob)
	if size%4 != 0 || uint64(size) > uint64(len(blob)-4) {
		return nil, fmt.Errorf("trie size %d does not fit the %d bytes of the map", size, len(blob))
	}
	p := &precompiled{trie: make([]uint32, size/4), normalized: blob[4+size:]}
	for i := range p.trie {
		p.trie[i] = binary.LittleEndian.Uint32(blob[4+4*i:])
	}
	if len(p.trie) == 0 {
		return nil, fmt.Errorf("empty trie")
	}
	return p, nil
}

func dartsOffset(u uint32) uint32 { return (u >> 10) << ((u & (1 << 9)) >> 6) }
func dartsLabel(u uint32) uint32  { return u & ((1 << 31) | 0xFF) }
func dartsHasLeaf(u uint32) bool  { return (u>>8)&1 == 1 }
func dartsValue(u uint32) uint32  { return u & ((1 << 31) - 1) }

// firstPrefix returns the value of the shortest key that is a prefix of s.
func (p *precompiled) firstPrefix(s string) (uint32, bool) {
	pos := dartsOffset(p.trie[0])
	for i := 0; i < len(s); i++ {
		c := uint32(s[i])
		if c == 0 {
			break
		}
		pos ^= c
		if uint64(pos) >= uint64(len(p.trie)) {
			return 0, false
		}
		u := p.trie[pos]
		if dartsLabel(u) != c {
			return 0, false
		}
		pos ^= dartsOffset(u)
		if uint64(pos) >= uint64(len(p.trie)) {
			return 0, false
		}
		if dartsHasLeaf(u) {
			return dartsValue(p.trie[pos]), true
		}
	}
	return 0, false
}

// transform returns the replacement of chunk, if the map has one.
func (p *precompiled) transform(chunk string) (string, bool) {
	v, ok := p.firstPrefix(chunk)
	if !ok || uint64(v) > uint64(len(p.normalized)) {
		return "", false
	}
	end := int(v)
	for end < len(p.normalized) && p.normalized[end] != 0 {
		end++
	}
	out := p.normalized[v:end]
	if !utf8.Valid(out) {
		return "", false
	}
	return string(out), true
}

func precompiledReplace(dest []change, old, repl string) []change {
	diff := utf8.RuneCountInString(repl) - utf8.RuneCountInString(old)
	for _, r := range repl {
		dest = append(dest, change{r, 0})
	}
	switch {
	case diff > 0:
		for k := 0; k < diff && k < len(dest); k++ {
			dest[len(dest)-1-k].delta = 1
		}
	case diff < 0 && len(dest) > 0:
		dest[len(dest)-1].delta += diff
	}
	return dest
}

func (p *precompiled) normalize(n *normString) error {
	dest := make([]change, 0, len(n.norm))
	modified := false
	it := graphemes.FromString(n.norm)
	for it.Next() {
		g := it.Value()
		if len(g) < 6 {
			if repl, ok := p.transform(g); ok {
				modified = true
				dest = precompiledReplace(dest, g, repl)
				continue
			}
		}
		for i, r := range g {
			_, l := utf8.DecodeRuneInString(g[i:])
			part := g[i : i+l]
			if repl, ok := p.transform(part); ok {
				modified = true
				dest = precompiledReplace(dest, part, repl)
			} else {
				dest = append(dest, change{r, 0})
			}
		}
	}
	if modified {
		n.transform(dest, 0)
	}
	return nil
}
