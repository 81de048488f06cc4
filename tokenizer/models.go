package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// modelDoc is the "model" object of tokenizer.json with the fields of every
// model type, decoded in one pass (the model holds almost all of a file).
type modelDoc struct {
	Type         *string      `json:"type"`
	Dropout      *float64     `json:"dropout"`
	Unk          *string      `json:"unk_token"`
	UnkID        *int         `json:"unk_id"`
	Prefix       *string      `json:"continuing_subword_prefix"`
	Suffix       *string      `json:"end_of_word_suffix"`
	FuseUnk      bool         `json:"fuse_unk"`
	ByteFallback bool         `json:"byte_fallback"`
	IgnoreMerges bool         `json:"ignore_merges"`
	MaxChar      *int         `json:"max_input_chars_per_word"`
	Vocab        vocabField   `json:"vocab"`
	Merges       *mergesField `json:"merges"`
}

// parse reads the model object that starts at data[i] (after white space)
// and returns its end: vocab and merges go to their fast scanners
// (jsonscan.go), the other fields through json.Unmarshal; unknown fields
// are ignored. null leaves md empty.
func (md *modelDoc) parse(data []byte, i int) (int, error) {
	if i < len(data) && data[i] == 'n' {
		return skipLiteral(data, i, "null")
	}
	if i >= len(data) || data[i] != '{' {
		end, err := skipValue(data, i, 0)
		if err != nil {
			return end, err
		}
		return end, fmt.Errorf("want an object")
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return i, jsonError(data, i, "want an object key")
		}
		end, err := skipString(data, i)
		if err != nil {
			return i, err
		}
		key, err := decodeString(data[i:end])
		if err != nil {
			return i, err
		}
		i = skipWS(data, end)
		if i >= len(data) || data[i] != ':' {
			return i, jsonError(data, i, "want ':' after an object key")
		}
		start := skipWS(data, i+1)
		if i, err = skipValue(data, start, 1); err != nil {
			return i, fmt.Errorf("%s: %w", key, err)
		}
		raw := data[start:i]
		var dst any
		switch key {
		case "type":
			dst = &md.Type
		case "dropout":
			dst = &md.Dropout
		case "unk_token":
			dst = &md.Unk
		case "unk_id":
			dst = &md.UnkID
		case "continuing_subword_prefix":
			dst = &md.Prefix
		case "end_of_word_suffix":
			dst = &md.Suffix
		case "fuse_unk":
			dst = &md.FuseUnk
		case "byte_fallback":
			dst = &md.ByteFallback
		case "ignore_merges":
			dst = &md.IgnoreMerges
		case "max_input_chars_per_word":
			dst = &md.MaxChar
		case "vocab":
			md.Vocab = vocabField{}
			err = md.Vocab.UnmarshalJSON(raw)
		case "merges":
			md.Merges = nil
			if string(raw) != "null" {
				md.Merges = &mergesField{raw: raw}
			}
		}
		if dst != nil {
			err = json.Unmarshal(raw, dst)
		}
		if err != nil {
			return i, fmt.Errorf("%s: %w", key, err)
		}
		i = skipWS(data, i)
		switch {
		case i < len(data) && data[i] == ',':
			i = skipWS(data, i+1)
		case i < len(data) && data[i] == '}':
			return i + 1, nil
		default:
			return i, jsonError(data, i, "want ',' or '}'")
		}
	}
}

// vocabField is a {token: id} object or a Unigram [[piece, score], ...] list.
type vocabField struct {
	ids    map[string]int
	pieces []string
	scores []float64
	list   bool
	set    bool
}

func (v *vocabField) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	v.set = true
	if data[0] == '[' {
		v.list = true
		var items []unigramPiece
		if err := json.Unmarshal(data, &items); err != nil {
			return err
		}
		v.pieces = make([]string, len(items))
		v.scores = make([]float64, len(items))
		for i, it := range items {
			v.pieces[i], v.scores[i] = it.piece, it.score
		}
		return nil
	}
	ids, err := scanVocab(data)
	if err != nil {
		return json.Unmarshal(data, &v.ids)
	}
	v.ids = ids
	return nil
}

type unigramPiece struct {
	piece string
	score float64
}

func (u *unigramPiece) UnmarshalJSON(data []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(data, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("vocab entry %s: want [piece, score]", truncateForError(data))
	}
	if err := json.Unmarshal(pair[0], &u.piece); err != nil {
		return fmt.Errorf("vocab entry %s: %v", truncateForError(data), err)
	}
	if err := json.Unmarshal(pair[1], &u.score); err != nil {
		return fmt.Errorf("vocab entry %s: %v", truncateForError(data), err)
	}
	return nil
}

func truncateForError(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}

// mergesField holds a BPE merges list as it is in the document ("a b"
// strings or ["a", "b"] pairs); newBPE reads it with each, without making
// a string per token.
type mergesField struct {
	raw []byte // validated JSON; a slice of the document being loaded
}

// each calls visit for every merge in order; a and b are valid during the
// call only.
func (m *mergesField) each(visit func(a, b []byte) error) error {
	bad, err := scanMerges(m.raw, visit)
	if err == errScan {
		return fmt.Errorf("merges: unexpected JSON")
	}
	if err != nil {
		return err
	}
	if bad >= 0 {
		return fmt.Errorf("merges[%d]: want \"a b\" or [\"a\", \"b\"]", bad)
	}
	return nil
}

func parseModel(md *modelDoc, path string) (model, error) {
	var typ string
	if md.Type != nil {
		typ = *md.Type
	} else {
		// files without "type": guess as the library's untagged forms do
		switch {
		case md.Merges != nil:
			typ = "BPE"
		case md.MaxChar != nil || md.Prefix != nil:
			typ = "WordPiece"
		case md.Vocab.list:
			typ = "Unigram"
		default:
			typ = "WordLevel"
		}
	}
	var m model
	var err error
	switch typ {
	case "BPE":
		m, err = parseBPE(md)
	case "WordPiece":
		m, err = parseWordPiece(md)
	case "WordLevel":
		m, err = parseWordLevel(md)
	case "Unigram":
		m, err = parseUnigram(md)
	default:
		return nil, fmt.Errorf("%s: unknown type %q", path, typ)
	}
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %v", path, typ, err)
	}
	return m, nil
}

func (md *modelDoc) vocabMap() (map[string]int, error) {
	if !md.Vocab.set {
		return nil, fmt.Errorf("missing vocab")
	}
	if md.Vocab.list {
		return nil, fmt.Errorf("vocab: want an object {token: id}")
	}
	return md.Vocab.ids, nil
}

// vocabulary maps tokens to ids both ways.
type vocabulary struct {
	ids     map[string]int
	byID    []string // when ids are dense
	present []bool
	sparse  map[int]string // otherwise
}

func newVocabulary(ids map[string]int) (*vocabulary, error) {
	v := &vocabulary{ids: ids}
	maxID := -1
	for s, id := range ids {
		if id < 0 {
			return nil, fmt.Errorf("vocab: negative id %d for %q", id, s)
		}
		maxID = max(maxID, id)
	}
	if maxID < 2*len(ids)+1024 {
		v.byID = make([]string, maxID+1)
		v.present = make([]bool, maxID+1)
		for s, id := range ids {
			v.byID[id], v.present[id] = s, true
		}
		return v, nil
	}
	v.sparse = make(map[int]string, len(ids))
	for s, id := range ids {
		v.sparse[id] = s
	}
	return v, nil
}

func (v *vocabulary) tokenToID(s string) (int, bool) { id, ok := v.ids[s]; return id, ok }
func (v *vocabulary) idToToken(id int) (string, bool) {
	if v.sparse != nil {
		s, ok := v.sparse[id]
		return s, ok
	}
	if id < 0 || id >= len(v.byID) || !v.present[id] {
		return "", false
	}
	return v.byID[id], true
}
func (v *vocabulary) vocabSize() int { return len(v.ids) }

// BPE

type bpeMerge struct {
	rank, newID int
}

type bpe struct {
	*vocabulary
	merges         map[uint64]bpeMerge
	unk            *string
	prefix, suffix string
	fuseUnk        bool
	byteFallback   bool
	ignoreMerges   bool

	mu    sync.Mutex
	cache map[string][]token
}

const (
	bpeCacheCap     = 10000
	bpeCacheWordLen = 256
)

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func parseBPE(md *modelDoc) (*bpe, error) {
	vocab, err := md.vocabMap()
	if err != nil {
		return nil, err
	}
	if md.Merges == nil {
		return nil, fmt.Errorf("missing merges")
	}
	if md.Dropout != nil && (*md.Dropout < 0 || *md.Dropout > 1) {
		return nil, fmt.Errorf("dropout: %v is not in [0, 1]", *md.Dropout)
	}
	b, err := newBPE(vocab, md.Merges, strOr(md.Prefix), strOr(md.Suffix))
	if err != nil {
		return nil, err
	}
	b.unk, b.fuseUnk, b.byteFallback, b.ignoreMerges = md.Unk, md.FuseUnk, md.ByteFallback, md.IgnoreMerges
	return b, nil
}

func strOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func newBPE(vocab map[string]int, merges *mergesField, prefix, suffix string) (*bpe, error) {
	voc, err := newVocabulary(vocab)
	if err != nil {
		return nil, err
	}
	// the tokens of every merge first (slices of the document), then their
	// ids, looked up in parallel (the vocab map is only read), then the
	// map sized for them
	pairs := make([][2][]byte, 0, len(merges.raw)/16)
	if err := merges.each(func(x, y []byte) error {
		pairs = append(pairs, [2][]byte{x, y})
		return nil
	}); err != nil {
		return nil, err
	}
	ids := make([]bpeMergeIDs, len(pairs))
	workers := 1
	if len(pairs) >= 1<<15 {
		workers = min(runtime.GOMAXPROCS(0), 4)
	}
	errs := make([]error, workers)
	chunk := (len(pairs) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := min(w*chunk, len(pairs)), min((w+1)*chunk, len(pairs))
		wg.Go(func() { errs[w] = lookupMerges(vocab, pairs[lo:hi], ids[lo:hi], lo, prefix) })
	}
	wg.Wait()
	for _, err := range errs { // the first chunk's error is the first merge's
		if err != nil {
			return nil, err
		}
	}
	b := &bpe{vocabulary: voc, merges: make(map[uint64]bpeMerge, len(ids)), prefix: prefix, suffix: suffix, cache: map[string][]token{}}
	for r, m := range ids {
		// a repeated merge keeps its last rank, as the library's map does
		b.merges[m.key] = bpeMerge{r, m.id}
	}
	return b, nil
}

type bpeMergeIDs struct {
	key uint64 // pairKey of the two tokens' ids
	id  int    // the merged token's
}

// lookupMerges finds the ids of pairs, merges first..first+len(pairs)-1.
func lookupMerges(vocab map[string]int, pairs [][2][]byte, out []bpeMergeIDs, first int, prefix string) error {
	var buf []byte
	for i, p := range pairs {
		x, y := p[0], p[1]
		rank := first + i
		a, ok := vocab[string(x)]
		if !ok {
			return fmt.Errorf("merges[%d]: token %q out of vocabulary", rank, x)
		}
		c, ok := vocab[string(y)]
		if !ok {
			return fmt.Errorf("merges[%d]: token %q out of vocabulary", rank, y)
		}
		if len(y) < len(prefix) {
			return fmt.Errorf("merges[%d]: token %q shorter than the continuing_subword_prefix", rank, y)
		}
		buf = append(append(buf[:0], x...), y[len(prefix):]...)
		id, ok := vocab[string(buf)]
		if !ok {
			return fmt.Errorf("merges[%d]: merged token %q out of vocabulary", rank, buf)
		}
		out[i] = bpeMergeIDs{pairKey(a, c), id}
	}
	return nil
}

// symbol is one symbol of a word under BPE merging, in a linked list
// (prev, next: indexes, -1 at the ends); a removed symbol has start == end.
type symbol struct {
	id         int32
	prev, next int32
	start, end int32 // byte range in the word
}

func (b *bpe) tokenize(s string) ([]token, error) {
	if s == "" {
		return nil, nil
	}
	if b.ignoreMerges {
		if id, ok := b.ids[s]; ok {
			return []token{{id, s, 0, len(s)}}, nil
		}
	}
	cacheable := len(s) < bpeCacheWordLen
	if cacheable {
		b.mu.Lock()
		t, ok := b.cache[s]
		b.mu.Unlock()
		if ok {
			return append([]token(nil), t...), nil
		}
	}
	t, err := b.mergeWord(s)
	if err != nil {
		return nil, err
	}
	if cacheable {
		b.mu.Lock()
		if len(b.cache) < bpeCacheCap {
			b.cache[s] = append([]token(nil), t...)
		}
		b.mu.Unlock()
	}
	return t, nil
}

func (b *bpe) mergeWord(w string) ([]token, error) {
	if len(w) > maxText {
		return nil, fmt.Errorf("BPE: word of %d bytes is too long", len(w))
	}
	// one symbol per rune (per byte for bytes falling back), growing if
	// needed
	syms := make([]symbol, 0, utf8.RuneCountInString(w))
	add := func(id, start, end int) {
		n := int32(len(syms))
		syms = appendGrow(syms, symbol{id: int32(id), prev: n - 1, next: n + 1, start: int32(start), end: int32(end)})
	}
	unkID, unkStart, unkEnd := -1, 0, 0
	flushUnk := func() {
		if unkID >= 0 {
			add(unkID, unkStart, unkEnd)
			unkID = -1
		}
	}
	var sb strings.Builder
	for i := 0; i < len(w); {
		l := 1
		if w[i] >= utf8.RuneSelf {
			_, l = utf8.DecodeRuneInString(w[i:])
		}
		end := i + l
		s := w[i:end]
		if (i > 0 && b.prefix != "") || (end == len(w) && b.suffix != "") {
			sb.Reset()
			if i > 0 {
				sb.WriteString(b.prefix)
			}
			sb.WriteString(s)
			if end == len(w) {
				sb.WriteString(b.suffix)
			}
			s = sb.String()
		}
		if id, ok := b.ids[s]; ok {
			flushUnk()
			add(id, i, end)
			i = end
			continue
		}
		if b.byteFallback {
			ids := make([]int, 0, len(s))
			for k := 0; k < len(s); k++ {
				id, ok := b.ids[byteToken(s[k])]
				if !ok {
					break
				}
				ids = append(ids, id)
			}
			if len(ids) == len(s) {
				// the library adds one symbol of length 1 per byte of s,
				// which may be longer than the rune when a prefix or
				// suffix was added
				p := i
				for _, id := range ids {
					add(id, p, p+1)
					p++
				}
				i = end
				continue
			}
		}
		if b.unk != nil {
			uid, ok := b.ids[*b.unk]
			if unkID >= 0 && b.fuseUnk {
				unkEnd += l
			} else {
				flushUnk()
				if !ok {
					return nil, fmt.Errorf("BPE: unk token %q out of vocabulary", *b.unk)
				}
				unkID, unkStart, unkEnd = uid, i, end
			}
		}
		i = end
	}
	flushUnk()
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	b.mergeAll(syms)
	n := 0
	for i := int32(0); i >= 0 && int(i) < len(syms); i = syms[i].next {
		n++
	}
	out := make([]token, 0, n)
	// offsets: the library accumulates symbol lengths from 0
	pos := 0
	for i := int32(0); i >= 0 && int(i) < len(syms); i = syms[i].next {
		sy := syms[i]
		n := int(sy.end - sy.start)
		val, _ := b.idToToken(int(sy.id))
		out = append(out, token{int(sy.id), val, pos, pos + n})
		pos += n
	}
	return out, nil
}

// mergeHeap is a min-heap of merge candidates, each the rank of a merge in
// the high 32 bits and the position of its left symbol in the low ones:
// lowest rank first, leftmost first among equals, as the library orders
// them. Four children per node: half the depth of a binary heap, fewer
// cache misses on the long words of adversarial input.
type mergeHeap []uint64

func candidate(rank int, pos int32) uint64 { return uint64(uint32(rank))<<32 | uint64(uint32(pos)) }

func (h *mergeHeap) push(x uint64) {
	*h = append(*h, x)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 4
		if s[p] <= x {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = x
}

// down moves s[i] down to its place.
func (h mergeHeap) down(i int) {
	s := h
	n := len(s)
	x := s[i]
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if s[k] < s[m] {
				m = k
			}
		}
		if x <= s[m] {
			break
		}
		s[i] = s[m]
		i = m
	}
	s[i] = x
}

func (h mergeHeap) heapify() {
	if len(h) > 1 { // the last parent is (len-2)/4
		for i := (len(h) - 2) / 4; i >= 0; i-- {
			h.down(i)
		}
	}
}

func (h *mergeHeap) pop() uint64 {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	*h = s[:n]
	if n > 0 {
		h.down(0)
	}
	return top
}

// mergeSteps counts the candidates the merge loops took from their queues,
// for tests that check the work on a long word is linear.
var mergeSteps atomic.Int64

// longWord is the number of symbols from which mergeAll queues candidates
// in buckets by rank instead of in one heap.
const longWord = 256

// mergeAll applies the merges lowest rank first (leftmost first among
// equals), as the library does.
func (b *bpe) mergeAll(syms []symbol) {
	if len(syms) < 2 || len(b.merges) == 0 {
		return
	}
	if len(syms) < longWord {
		b.mergeAllHeap(syms)
	} else {
		b.mergeAllBuckets(syms)
	}
}

// mergeAt merges the symbol at pos with the next one if their pair is
// still the merge of the given rank (a candidate is stale once a neighbour
// merged), and then offers the new pairs on both sides to push.
func (b *bpe) mergeAt(syms []symbol, rank int, pos int32, push func(rank int, pos int32)) {
	cur := &syms[pos]
	if cur.end == cur.start || cur.next < 0 {
		return
	}
	nextPos := cur.next
	right := syms[nextPos]
	m, ok := b.merges[pairKey(int(cur.id), int(right.id))]
	if !ok || m.rank != rank {
		return // the pair changed since the candidate was queued
	}
	cur.id = int32(m.newID)
	cur.end = right.end
	cur.next = right.next
	syms[nextPos].start, syms[nextPos].end = 0, 0 // removed
	if right.next >= 0 {
		syms[right.next].prev = pos
	}
	if cur.prev >= 0 {
		if m, ok := b.merges[pairKey(int(syms[cur.prev].id), int(cur.id))]; ok {
			push(m.rank, cur.prev)
		}
	}
	if cur.next >= 0 {
		if m, ok := b.merges[pairKey(int(cur.id), int(syms[cur.next].id))]; ok {
			push(m.rank, pos)
		}
	}
}

// mergeAllHeap keeps every candidate in one heap: O(n log n), the fastest
// for the short words of ordinary text.
func (b *bpe) mergeAllHeap(syms []symbol) {
	h := make(mergeHeap, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := b.merges[pairKey(int(syms[i].id), int(syms[i+1].id))]; ok {
			h = append(h, candidate(m.rank, int32(i)))
		}
	}
	h.heapify()
	push := func(rank int, pos int32) { h.push(candidate(rank, pos)) }
	steps := int64(0)
	for len(h) > 0 {
		top := h.pop()
		steps++
		b.mergeAt(syms, int(top>>32), int32(uint32(top)), push)
	}
	mergeSteps.Add(steps)
}

// mergeAllBuckets takes the candidates in the same order from buckets of
// positions, one per rank, and a heap of the ranks that have one: a bucket
// is sorted once (its positions mostly come in order) and then read from
// left to right, so that a long word of one repeated character costs a
// few passes over arrays, not a heap operation deep in a heap of a million
// candidates per merge. A candidate of the rank being read goes to a small
// heap read along with the bucket; one of a lower rank (possible only in
// odd merge lists) puts the rest of the bucket back and the lower rank is
// read first.
func (b *bpe) mergeAllBuckets(syms []symbol) {
	var q rankBuckets
	q.index = map[int32]int{}
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := b.merges[pairKey(int(syms[i].id), int(syms[i+1].id))]; ok {
			q.add(int32(m.rank), int32(i))
		}
	}
	var extra mergeHeap // positions of the rank being read, queued while reading it
	steps := int64(0)
	for len(q.ranks) > 0 {
		r := int32(q.ranks.pop())
		bucket := q.take(r)
		sortPositions(bucket)
		extra = extra[:0]
		lower := false
		push := func(rank int, pos int32) {
			switch rk := int32(rank); {
			case rk > r:
				q.add(rk, pos)
			case rk == r:
				extra.push(uint64(uint32(pos)))
			default:
				q.add(rk, pos)
				lower = true
			}
		}
		i := 0
		for i < len(bucket) || len(extra) > 0 {
			var pos int32
			if len(extra) > 0 && (i >= len(bucket) || int32(uint32(extra[0])) < bucket[i]) {
				pos = int32(uint32(extra.pop()))
			} else {
				pos = bucket[i]
				i++
			}
			steps++
			b.mergeAt(syms, int(r), pos, push)
			if lower {
				for _, p := range bucket[i:] {
					q.add(r, p)
				}
				for _, p := range extra {
					q.add(r, int32(uint32(p)))
				}
				break
			}
		}
		q.spare = append(q.spare, bucket[:0])
	}
	mergeSteps.Add(steps)
}

// rankBuckets holds merge candidates as a bucket of positions per rank and
// a heap of the ranks that have a bucket.
type rankBuckets struct {
	ranks mergeHeap
	index map[int32]int // rank -> slot
	slots [][]int32
	free  []int     // unused slots
	spare [][]int32 // emptied buckets, for reuse
}

func (q *rankBuckets) add(rank, pos int32) {
	k, ok := q.index[rank]
	if !ok {
		var bucket []int32
		if n := len(q.spare); n > 0 {
			bucket, q.spare = q.spare[n-1], q.spare[:n-1]
		}
		if n := len(q.free); n > 0 {
			k, q.free = q.free[n-1], q.free[:n-1]
			q.slots[k] = bucket
		} else {
			k = len(q.slots)
			q.slots = append(q.slots, bucket)
		}
		q.index[rank] = k
		q.ranks.push(uint64(uint32(rank)))
	}
	q.slots[k] = appendGrow(q.slots[k], pos)
}

// take removes the bucket of rank and returns it.
func (q *rankBuckets) take(rank int32) []int32 {
	k := q.index[rank]
	delete(q.index, rank)
	bucket := q.slots[k]
	q.slots[k] = nil
	q.free = append(q.free, k)
	return bucket
}

// sortPositions sorts a bucket, which is most often sorted already.
func sortPositions(p []int32) {
	for i := 1; i < len(p); i++ {
		if p[i] < p[i-1] {
			slices.Sort(p)
			return
		}
	}
}

var byteTokens = func() (t [256]string) {
	for i := range t {
		t[i] = fmt.Sprintf("<0x%02X>", i)
	}
	return
}()

func byteToken(c byte) string { return byteTokens[c] }

// WordPiece

type wordPiece struct {
	*vocabulary
	unk      string
	prefix   string
	maxChar  int
	maxToken int // bytes of the longest vocabulary entry
}

func parseWordPiece(md *modelDoc) (*wordPiece, error) {
	vocab, err := md.vocabMap()
	if err != nil {
		return nil, err
	}
	voc, err := newVocabulary(vocab)
	if err != nil {
		return nil, err
	}
	w := &wordPiece{vocabulary: voc, unk: "[UNK]", prefix: "##", maxChar: 100}
	for s := range vocab {
		w.maxToken = max(w.maxToken, len(s))
	}
	if md.Unk != nil {
		w.unk = *md.Unk
	}
	if md.Prefix != nil {
		w.prefix = *md.Prefix
	}
	if md.MaxChar != nil {
		w.maxChar = *md.MaxChar
	}
	return w, nil
}

func (w *wordPiece) unkToken(s string) ([]token, error) {
	id, ok := w.ids[w.unk]
	if !ok {
		return nil, fmt.Errorf("WordPiece: unk token %q out of vocabulary", w.unk)
	}
	return []token{{id, w.unk, 0, len(s)}}, nil
}

func (w *wordPiece) tokenize(s string) ([]token, error) {
	if utf8.RuneCountInString(s) > w.maxChar {
		return w.unkToken(s)
	}
	var out []token
	buf := make([]byte, 0, len(w.prefix)+len(s))
	for start := 0; start < len(s); {
		// substrings longer than the longest vocabulary entry cannot
		// match: starting below that length keeps a long word linear
		end := len(s)
		if end-start > w.maxToken {
			end = start + w.maxToken
			for end > start && !utf8.RuneStart(s[end]) {
				end--
			}
		}
		found := false
		for start < end {
			var id int
			var ok bool
			if start > 0 {
				buf = append(append(buf[:0], w.prefix...), s[start:end]...)
				id, ok = w.ids[string(buf)]
			} else {
				id, ok = w.ids[s[start:end]]
			}
			if ok {
				val := s[start:end]
				if start > 0 {
					val = string(buf)
				}
				out = append(out, token{id, val, start, end})
				found = true
				break
			}
			_, l := utf8.DecodeLastRuneInString(s[start:end])
			end -= l
		}
		if !found {
			return w.unkToken(s)
		}
		start = end
	}
	return out, nil
}

// WordLevel

type wordLevel struct {
	*vocabulary
	unk string
}

func parseWordLevel(md *modelDoc) (*wordLevel, error) {
	vocab, err := md.vocabMap()
	if err != nil {
		return nil, err
	}
	voc, err := newVocabulary(vocab)
	if err != nil {
		return nil, err
	}
	w := &wordLevel{vocabulary: voc, unk: "<unk>"}
	if md.Unk != nil {
		w.unk = *md.Unk
	}
	return w, nil
}

func (w *wordLevel) tokenize(s string) ([]token, error) {
	if id, ok := w.ids[s]; ok {
		return []token{{id, s, 0, len(s)}}, nil
	}
	if id, ok := w.ids[w.unk]; ok {
		return []token{{id, w.unk, 0, len(s)}}, nil
	}
	return nil, fmt.Errorf("WordLevel: %q is not in the vocabulary and there is no unk token", s)
}

// Unigram

type unigram struct {
	pieces       []string
	scores       []float64
	ids          map[string]int
	unkID        int // -1: none
	byteFallback bool
	fuseUnk      bool
	minScore     float64
	trie         edgeTrie
}

// edgeTrie is a byte trie stored as a map of edges (node, byte) -> node.
type edgeTrie struct {
	edges map[uint64]int32
	value []int32 // per node: piece id + 1, 0 if none
}

func (t *edgeTrie) insert(s string, id int) {
	if t.edges == nil {
		t.edges = map[uint64]int32{}
		t.value = []int32{0}
	}
	n := int32(0)
	for i := 0; i < len(s); i++ {
		k := uint64(n)<<8 | uint64(s[i])
		c, ok := t.edges[k]
		if !ok {
			c = int32(len(t.value))
			t.value = append(t.value, 0)
			t.edges[k] = c
		}
		n = c
	}
	if t.value[n] == 0 {
		t.value[n] = int32(id) + 1
	}
}

func parseUnigram(md *modelDoc) (*unigram, error) {
	if !md.Vocab.set || !md.Vocab.list {
		return nil, fmt.Errorf("vocab: want a list [[piece, score], ...]")
	}
	u := &unigram{ids: make(map[string]int, len(md.Vocab.pieces)), unkID: -1, byteFallback: md.ByteFallback, fuseUnk: true, minScore: math.Inf(1)}
	u.pieces, u.scores = md.Vocab.pieces, md.Vocab.scores
	for i, s := range u.pieces {
		u.ids[s] = i
		u.minScore = math.Min(u.minScore, u.scores[i])
		u.trie.insert(s, i)
	}
	if md.UnkID != nil {
		if *md.UnkID < 0 || *md.UnkID >= len(u.pieces) {
			return nil, fmt.Errorf("unk_id %d out of vocabulary of %d pieces", *md.UnkID, len(u.pieces))
		}
		u.unkID = *md.UnkID
	}
	if len(u.pieces) == 0 {
		return nil, fmt.Errorf("empty vocab")
	}
	return u, nil
}

func (u *unigram) tokenToID(s string) (int, bool) { id, ok := u.ids[s]; return id, ok }
func (u *unigram) idToToken(id int) (string, bool) {
	if id < 0 || id >= len(u.pieces) {
		return "", false
	}
	return u.pieces[id], true
}
func (u *unigram) vocabSize() int { return len(u.pieces) }

type latticeNode struct {
	id     int
	score  float64
	start  int
	filled bool
}

func (u *unigram) encode(s string) []string {
	const unkPenalty = 10.0
	unkScore := u.minScore - unkPenalty
	best := make([]latticeNode, len(s)+1)
	best[0].filled = true
	for start := 0; start < len(s); {
		here := best[start].score
		_, mblen := utf8.DecodeRuneInString(s[start:])
		single := false
		n := int32(0)
		for k := start; k < len(s); k++ {
			c, ok := u.trie.edges[uint64(n)<<8|uint64(s[k])]
			if !ok {
				break
			}
			n = c
			if v := u.trie.value[n]; v > 0 {
				id := int(v - 1)
				end := k + 1
				cand := u.scores[id] + here
				if t := &best[end]; !t.filled || cand > t.score {
					*t = latticeNode{id: id, score: cand, start: start, filled: true}
				}
				if end-start == mblen {
					single = true
				}
			}
		}
		if !single {
			end := start + mblen
			cand := unkScore + here
			if t := &best[end]; !t.filled || cand > t.score {
				*t = latticeNode{id: u.unkID, score: cand, start: start, filled: true}
			}
		}
		start += mblen
	}
	var out []string
	var unk []string
	for end := len(s); end > 0; {
		nd := best[end]
		if u.fuseUnk && u.unkID >= 0 && nd.id == u.unkID {
			unk = append(unk, s[nd.start:end])
		} else {
			if len(unk) > 0 {
				out = append(out, joinReversed(unk))
				unk = unk[:0]
			}
			out = append(out, s[nd.start:end])
		}
		end = nd.start
	}
	if len(unk) > 0 {
		out = append(out, joinReversed(unk))
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func joinReversed(parts []string) string {
	var sb strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		sb.WriteString(parts[i])
	}
	return sb.String()
}

func (u *unigram) tokenize(s string) ([]token, error) {
	if s == "" {
		return nil, nil
	}
	var out []token
	off := 0
	for _, p := range u.encode(s) {
		l := len(p)
		id, ok := u.ids[p]
		if !ok {
			if u.byteFallback {
				all := true
				var bt []token
				for k := 0; k < len(p); k++ {
					bid, ok := u.ids[byteToken(p[k])]
					if !ok {
						all = false
						break
					}
					bt = append(bt, token{bid, byteToken(p[k]), off, off + l})
				}
				if all {
					out = append(out, bt...)
					off += l
					continue
				}
			}
			if u.unkID < 0 {
				return nil, fmt.Errorf("unigram model: %q is not in the vocabulary and there is no unk_id", p)
			}
			id = u.unkID
		}
		out = append(out, token{id, p, off, off + l})
		off += l
	}
	return out, nil
}
