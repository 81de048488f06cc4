package tokenizer

import (
	"encoding/json"
	"sort"
)

type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

func parseAddedToken(raw json.RawMessage) (addedToken, error) {
	at := addedToken{Normalized: true}
	if err := json.Unmarshal(raw, &at); err != nil {
		return at, err
	}
	var probe map[string]json.RawMessage
	_ = json.Unmarshal(raw, &probe)
	if _, ok := probe["normalized"]; !ok {
		at.Normalized = !at.Special
	}
	return at, nil
}

// byteTrie finds the longest added token starting at a position.
type byteTrie struct {
	next  map[byte]*byteTrie
	id    int
	final bool
}

func (t *byteTrie) insert(s string, id int) {
	n := t
	for i := 0; i < len(s); i++ {
		if n.next == nil {
			n.next = map[byte]*byteTrie{}
		}
		c := n.next[s[i]]
		if c == nil {
			c = &byteTrie{}
			n.next[s[i]] = c
		}
		n = c
	}
	n.final, n.id = true, id
}

// longest returns the end and id of the longest entry that starts at i.
func (t *byteTrie) longest(s string, i int) (int, int, bool) {
	n := t
	end, id, ok := 0, 0, false
	for j := i; j < len(s); j++ {
		n = n.next[s[j]]
		if n == nil {
			break
		}
		if n.final {
			end, id, ok = j+1, n.id, true
		}
	}
	return end, id, ok
}

// addedVocab holds the tokens added on top of the model and splits them out
// of the input before normalization (non-normalized ones) and after it
// (normalized ones), as the library's AddedVocabulary does.
type addedVocab struct {
	byContent  map[string]int
	byID       map[int]addedToken
	normCache  map[int]string
	special    map[string]bool
	rawTrie    *byteTrie
	normTrie   *byteTrie
	firstBytes [2][256]bool
}

func newAddedVocab(toks []addedToken, m model, norm normalizer) (*addedVocab, error) {
	v := &addedVocab{byContent: map[string]int{}, byID: map[int]addedToken{}, normCache: map[int]string{}, special: map[string]bool{}}
	nextID := m.vocabSize()
	for _, t := range toks {
		if t.Content == "" {
			continue
		}
		if id, ok := v.byContent[t.Content]; ok && v.byID[id] == t {
			continue
		}
		id, ok := v.byContent[t.Content]
		if !ok {
			id, ok = m.tokenToID(t.Content)
		}
		if !ok {
			id = nextID
			for {
				if _, used := v.byID[id]; !used {
					break
				}
				id++
			}
			nextID = id + 1
		}
		if t.Normalized && norm != nil {
			n := newNormString(t.Content)
			if err := norm.normalize(n); err != nil {
				return nil, err
			}
			if n.norm != t.Content {
				v.normCache[id] = n.norm
			}
		}
		v.byContent[t.Content] = id
		if t.Special {
			v.special[t.Content] = true
		}
		t.ID = id
		v.byID[id] = t
		if id >= nextID {
			nextID = id + 1
		}
	}
	ids := make([]int, 0, len(v.byID))
	for id := range v.byID {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		t := v.byID[id]
		pat, trie, k := t.Content, &v.rawTrie, 0
		if t.Normalized {
			trie, k = &v.normTrie, 1
			if s, ok := v.normCache[id]; ok {
				pat = s
			}
		}
		if pat == "" {
			continue
		}
		if *trie == nil {
			*trie = &byteTrie{}
		}
		(*trie).insert(pat, id)
		v.firstBytes[k][pat[0]] = true
	}
	return v, nil
}

func (v *addedVocab) idToToken(id int) (string, bool) {
	t, ok := v.byID[id]
	if !ok {
		return "", false
	}
	if s, ok := v.normCache[id]; ok {
		return s, true
	}
	return t.Content, true
}

func isWordRune(r rune) bool {
	return r == '_' || isLetter(r) || isNumber(r) || isMark(r) || isConnector(r)
}

// findAdded cuts s into pieces: added tokens (id >= 0) and the text between.
func (v *addedVocab) findAdded(s string, trie *byteTrie, first *[256]bool) []addedPiece {
	if s == "" {
		return []addedPiece{{-1, 0, 0}}
	}
	if trie == nil {
		return []addedPiece{{-1, 0, len(s)}}
	}
	var out []addedPiece
	startOffset := 0
	i := 0
	for i < len(s) {
		if !first[s[i]] {
			i++
			continue
		}
		end, id, ok := trie.longest(s, i)
		if !ok {
			i++
			continue
		}
		start, stop := i, end
		i = end
		t := v.byID[id]
		if t.SingleWord {
			r, _ := lastRune(s[:start])
			startSpace := start == 0 || !isWordRune(r)
			r2, _ := runeAt(s, stop)
			stopSpace := stop == len(s) || !isWordRune(r2)
			if !startSpace || !stopSpace {
				continue
			}
		}
		if t.LStrip {
			ns := start
			for ns > 0 {
				r, l := lastRune(s[:ns])
				if !isSpace(r) {
					break
				}
				ns -= l
			}
			start = max(ns, startOffset)
		}
		if t.RStrip {
			for stop < len(s) {
				r, l := runeAt(s, stop)
				if !isSpace(r) {
					break
				}
				stop += l
			}
			i = max(i, stop)
		}
		if startOffset < start {
			out = append(out, addedPiece{-1, startOffset, start})
		}
		out = append(out, addedPiece{id, start, stop})
		startOffset = stop
	}
	if startOffset != len(s) {
		out = append(out, addedPiece{-1, startOffset, len(s)})
	}
	return out
}

type addedPiece struct {
	id         int
	start, end int
}

func (v *addedVocab) splitWith(p *preTokenized, trie *byteTrie, first *[256]bool, norm normalizer) error {
	var out []*split
	for _, sp := range p.splits {
		if sp.tokens != nil {
			out = append(out, sp)
			continue
		}
		if norm != nil {
			if err := norm.normalize(sp.n); err != nil {
				return err
			}
		}
		for _, pc := range v.findAdded(sp.n.norm, trie, first) {
			sub := sp.n.slice(pc.start, pc.end)
			if sub.norm == "" {
				continue
			}
			ns := &split{n: sub}
			if pc.id >= 0 {
				ns.tokens = []token{{id: pc.id, value: sub.norm, start: 0, end: len(sub.norm)}}
			}
			out = append(out, ns)
		}
	}
	p.splits = out
	return nil
}

func (v *addedVocab) extractAndNormalize(norm normalizer, text string) (*preTokenized, error) {
	p := &preTokenized{original: text, splits: []*split{{n: newNormString(text)}}}
	if err := v.splitWith(p, v.rawTrie, &v.firstBytes[0], nil); err != nil {
		return nil, err
	}
	if err := v.splitWith(p, v.normTrie, &v.firstBytes[1], norm); err != nil {
		return nil, err
	}
	return p, nil
}
