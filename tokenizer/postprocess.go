package tokenizer

import (
	"encoding/json"
	"fmt"
)

// trimByteLevelOffsets is the ByteLevel post-processor's offset trimming:
// offsets leave out the spaces at both ends of a token. The library's
// bindings trim offsets counted in characters, not bytes, so this does the
// same on e.src.
func trimByteLevelOffsets(e *Encoding, addPrefixSpace bool) {
	isSp := func(r rune) bool { return r == byteToRune[' '] || isWhitespace(r) }
	var charAt []int // byte offset -> char index, -1 inside a char
	var byteAt []int // char index -> byte offset
	for i, tok := range e.Tokens {
		runes := []rune(tok)
		lead, trail := 0, 0
		for lead < len(runes) && isSp(runes[lead]) {
			lead++
		}
		for trail < len(runes) && isSp(runes[len(runes)-1-trail]) {
			trail++
		}
		if lead == 0 && trail == 0 {
			continue
		}
		if charAt == nil {
			charAt = make([]int, len(e.src)+1)
			for k := range charAt {
				charAt[k] = -1
			}
			for b := range e.src {
				charAt[b] = len(byteAt)
				byteAt = append(byteAt, b)
			}
			charAt[len(e.src)] = len(byteAt)
			byteAt = append(byteAt, len(e.src))
		}
		off := &e.Offsets[i]
		if off[0] < 0 || off[1] > len(e.src) || charAt[off[0]] < 0 || charAt[off[1]] < 0 {
			continue
		}
		s, t := charAt[off[0]], charAt[off[1]]
		if lead > 0 {
			if (i == 0 || s == 0) && addPrefixSpace && lead == 1 {
				lead = 0
			}
			s = min(s+lead, t)
		}
		if trail > 0 && t >= trail {
			t = max(t-trail, s)
		}
		*off = [2]int{byteAt[s], byteAt[t]}
	}
}

// encodingsProcessor transforms the list of encodings (one or two); the
// result is concatenated.
type encodingsProcessor interface {
	addedTokens(isPair bool) int
	processAll(encs []*Encoding, addSpecial bool) ([]*Encoding, error)
}

type processorAdapter struct{ p encodingsProcessor }

func (a processorAdapter) addedTokens(isPair bool) int { return a.p.addedTokens(isPair) }

func (a processorAdapter) process(enc, pair *Encoding, addSpecial bool) (*Encoding, error) {
	encs := []*Encoding{enc}
	if pair != nil {
		encs = append(encs, pair)
	}
	encs, err := a.p.processAll(encs, addSpecial)
	if err != nil {
		return nil, err
	}
	if len(encs) == 1 {
		return encs[0], nil
	}
	return mergeEncodings(encs), nil
}

type byteLevelPost struct{ trimOffsets, addPrefixSpace bool }

func (byteLevelPost) addedTokens(bool) int { return 0 }
func (b byteLevelPost) processAll(encs []*Encoding, _ bool) ([]*Encoding, error) {
	if b.trimOffsets {
		for _, e := range encs {
			eachPiece(e, func(e *Encoding) { trimByteLevelOffsets(e, b.addPrefixSpace) })
		}
	}
	return encs, nil
}

type specialTok struct {
	token string
	id    int
}

// bertPost adds [CLS] A [SEP] (B [SEP]); robertaPost <s> A </s> (</s> B </s>).
type clsSepPost struct {
	cls, sep       specialTok
	roberta        bool
	trimOffsets    bool
	addPrefixSpace bool
}

func (p *clsSepPost) addedTokens(isPair bool) int {
	switch {
	case !isPair:
		return 2
	case p.roberta:
		return 4
	}
	return 3
}

func (p *clsSepPost) processAll(encs []*Encoding, addSpecial bool) ([]*Encoding, error) {
	if p.roberta {
		if p.trimOffsets {
			for _, e := range encs {
				eachPiece(e, func(e *Encoding) { trimByteLevelOffsets(e, p.addPrefixSpace) })
			}
		}
		for _, e := range encs {
			e.setTypeID(0)
		}
	}
	if !addSpecial {
		return encs, nil
	}
	out := make([]*Encoding, 0, len(encs))
	for i, e := range encs {
		typ := 0
		if i > 0 && !p.roberta {
			typ = 1
		}
		wrap := func(e *Encoding) *Encoding {
			n := newEncoding(e.len() + 2)
			if i == 0 {
				n.add(p.cls.id, p.cls.token, [2]int{}, typ, 1)
			} else if p.roberta {
				n.add(p.sep.id, p.sep.token, [2]int{}, typ, 1)
			}
			e.setTypeID(typ)
			n.appendAll(e)
			n.add(p.sep.id, p.sep.token, [2]int{}, typ, 1)
			return n
		}
		n := wrap(e)
		for _, o := range e.Overflowing {
			n.Overflowing = append(n.Overflowing, wrap(o))
		}
		out = append(out, n)
	}
	return out, nil
}

type templatePiece struct {
	special bool
	id      string // special token name, or "A"/"B"
	typeID  int
}

type templatePost struct {
	single, pair []templatePiece
	specials     map[string]struct {
		ids    []int
		tokens []string
	}
}

func (t *templatePost) addedTokens(isPair bool) int {
	tpl := t.single
	if isPair {
		tpl = t.pair
	}
	n := 0
	for _, p := range tpl {
		if p.special {
			n += len(t.specials[p.id].ids)
		}
	}
	return n
}

func (t *templatePost) processAll(encs []*Encoding, addSpecial bool) ([]*Encoding, error) {
	tpl := t.single
	if len(encs) == 2 {
		tpl = t.pair
	}
	var out []*Encoding
	for _, p := range tpl {
		if !p.special {
			i := 0
			if p.id == "B" {
				i = 1
			}
			if i >= len(encs) {
				return nil, fmt.Errorf("template uses sequence %s but only %d given", p.id, len(encs))
			}
			e := encs[i]
			e.setTypeID(p.typeID)
			out = append(out, e.clone()) // the overflowing pieces keep their type ids, as in the library
			continue
		}
		if !addSpecial {
			continue
		}
		st := t.specials[p.id]
		e := &Encoding{}
		for k, id := range st.ids {
			e.add(id, st.tokens[k], [2]int{}, p.typeID, 1)
		}
		out = append(out, e)
	}
	return out, nil
}

type sequencePost []encodingsProcessor

func (s sequencePost) addedTokens(isPair bool) int {
	n := 0
	for _, p := range s {
		n += p.addedTokens(isPair)
	}
	return n
}

func (s sequencePost) processAll(encs []*Encoding, addSpecial bool) ([]*Encoding, error) {
	var err error
	for _, p := range s {
		if encs, err = p.processAll(encs, addSpecial); err != nil {
			return nil, err
		}
	}
	return encs, nil
}

func parsePostProcessor(raw json.RawMessage, path string) (postProcessor, error) {
	if isNull(raw) {
		return nil, nil
	}
	p, err := parseEncodingsProcessor(raw, path)
	if err != nil {
		return nil, err
	}
	return processorAdapter{p}, nil
}

func parseSpecialPair(raw json.RawMessage) (specialTok, error) {
	var v [2]json.RawMessage
	var st specialTok
	if err := json.Unmarshal(raw, &v); err != nil {
		return st, err
	}
	if err := json.Unmarshal(v[0], &st.token); err != nil {
		return st, err
	}
	if err := json.Unmarshal(v[1], &st.id); err != nil {
		return st, err
	}
	return st, nil
}

func parseTemplate(raw json.RawMessage, path string) ([]templatePiece, error) {
	var items []map[string]struct {
		ID     string `json:"id"`
		TypeID int    `json:"type_id"`
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var out []templatePiece
	for i, it := range items {
		if len(it) != 1 {
			return nil, fmt.Errorf("%s[%d]: want one of SpecialToken or Sequence", path, i)
		}
		for k, v := range it {
			switch k {
			case "SpecialToken":
				out = append(out, templatePiece{special: true, id: v.ID, typeID: v.TypeID})
			case "Sequence":
				if v.ID != "A" && v.ID != "B" {
					return nil, fmt.Errorf("%s[%d].Sequence.id: want A or B, got %q", path, i, v.ID)
				}
				out = append(out, templatePiece{id: v.ID, typeID: v.TypeID})
			default:
				return nil, fmt.Errorf("%s[%d]: unknown piece %q", path, i, k)
			}
		}
	}
	return out, nil
}

func parseEncodingsProcessor(raw json.RawMessage, path string) (encodingsProcessor, error) {
	typ, err := componentType(raw, path)
	if err != nil {
		return nil, err
	}
	bad := func(err error) error { return fmt.Errorf("%s (%s): %v", path, typ, err) }
	switch typ {
	case "ByteLevel":
		v := struct {
			TrimOffsets    *bool `json:"trim_offsets"`
			AddPrefixSpace *bool `json:"add_prefix_space"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		return byteLevelPost{trimOffsets: boolOr(v.TrimOffsets, true), addPrefixSpace: boolOr(v.AddPrefixSpace, true)}, nil
	case "BertProcessing", "RobertaProcessing":
		v := struct {
			Sep            json.RawMessage `json:"sep"`
			Cls            json.RawMessage `json:"cls"`
			TrimOffsets    *bool           `json:"trim_offsets"`
			AddPrefixSpace *bool           `json:"add_prefix_space"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		p := &clsSepPost{roberta: typ == "RobertaProcessing", trimOffsets: boolOr(v.TrimOffsets, true), addPrefixSpace: boolOr(v.AddPrefixSpace, true)}
		if p.sep, err = parseSpecialPair(v.Sep); err != nil {
			return nil, fmt.Errorf("%s.sep: want [token, id]: %v", path, err)
		}
		if p.cls, err = parseSpecialPair(v.Cls); err != nil {
			return nil, fmt.Errorf("%s.cls: want [token, id]: %v", path, err)
		}
		return p, nil
	case "TemplateProcessing":
		v := struct {
			Single   json.RawMessage `json:"single"`
			Pair     json.RawMessage `json:"pair"`
			Specials map[string]struct {
				ID     string   `json:"id"`
				IDs    []int    `json:"ids"`
				Tokens []string `json:"tokens"`
			} `json:"special_tokens"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		t := &templatePost{specials: map[string]struct {
			ids    []int
			tokens []string
		}{}}
		if t.single, err = parseTemplate(v.Single, path+".single"); err != nil {
			return nil, err
		}
		if t.pair, err = parseTemplate(v.Pair, path+".pair"); err != nil {
			return nil, err
		}
		for k, s := range v.Specials {
			if len(s.IDs) != len(s.Tokens) {
				return nil, fmt.Errorf("%s.special_tokens[%q]: %d ids but %d tokens", path, k, len(s.IDs), len(s.Tokens))
			}
			t.specials[k] = struct {
				ids    []int
				tokens []string
			}{s.IDs, s.Tokens}
		}
		for _, tpl := range [][]templatePiece{t.single, t.pair} {
			for _, p := range tpl {
				if _, ok := t.specials[p.id]; p.special && !ok {
					return nil, fmt.Errorf("%s: special token %q used in a template but missing from special_tokens", path, p.id)
				}
			}
		}
		return t, nil
	case "Sequence":
		v := struct {
			Processors []json.RawMessage `json:"processors"`
		}{}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, bad(err)
		}
		var seq sequencePost
		for i, r := range v.Processors {
			p, err := parseEncodingsProcessor(r, fmt.Sprintf("%s.processors[%d]", path, i))
			if err != nil {
				return nil, err
			}
			seq = append(seq, p)
		}
		return seq, nil
	}
	return nil, fmt.Errorf("%s: unknown type %q", path, typ)
}
