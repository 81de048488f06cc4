package tokenizer

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestInvalidUTF8AndOddInputs runs every unit tokenizer on inputs a Go
// caller can pass but the library never sees (invalid UTF-8) and on
// degenerate ones: no panic, and offsets stay inside the input.
func TestInvalidUTF8AndOddInputs(t *testing.T) {
	var cases []struct {
		Name string          `json:"name"`
		Tok  json.RawMessage `json:"tok"`
	}
	data, err := os.ReadFile("testdata/unit/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	inputs := []string{"\xff", "a\xffb", "\xe2\x82", "x \xc3( y", "\x00", strings.Repeat("\xf0\x9f", 5), "<L>\xff<R>", "sw\xffsw", "ab\u0301\xcc"}
	for _, c := range cases {
		tk, err := Load(bytes.NewReader(c.Tok))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		for _, in := range inputs {
			e, err := tk.Encode(in, true)
			if err != nil {
				continue
			}
			for i, o := range e.Offsets {
				if o[0] < 0 || o[1] > len(in) || o[0] > o[1] {
					t.Errorf("%s: %q: token %d offsets %v outside the input", c.Name, in, i, o)
				}
			}
			if _, err := tk.Decode(e.IDs, false); err != nil {
				t.Errorf("%s: decode: %v", c.Name, err)
			}
		}
	}
}

// charsmapFor builds a SentencePiece precompiled charsmap holding one
// rule key -> value: a Darts double array where the node of depth k
// lives in block k (1024 units) and the leaf after the last byte in the
// next block.
func charsmapFor(key, value string) string {
	n := len(key)
	units := make([]uint32, (n+2)*1024)
	offsetBetween := func(k int) uint32 { return uint32(k*1024) ^ uint32((k+1)*1024) }
	units[0] = offsetBetween(0) << 10
	pos := uint32(0) ^ offsetBetween(0)
	for k := 1; k <= n; k++ {
		c := uint32(key[k-1])
		if k > 1 {
			pos ^= offsetBetween(k - 1)
		}
		pos ^= c
		u := offsetBetween(k)<<10 | c
		if k == n {
			u |= 1 << 8
		}
		units[pos] = u
	}
	leaf := pos ^ offsetBetween(n)
	units[leaf] = 0 // value: index 0 of the strings blob
	blob := make([]byte, 4, 4+4*len(units)+len(value)+1)
	binary.LittleEndian.PutUint32(blob, uint32(4*len(units)))
	for _, u := range units {
		blob = binary.LittleEndian.AppendUint32(blob, u)
	}
	blob = append(blob, value...)
	blob = append(blob, 0)
	return base64.StdEncoding.EncodeToString(blob)
}

func TestPrecompiledCharsmap(t *testing.T) {
	doc := `{"version":"1.0","normalizer":{"type":"Precompiled","precompiled_charsmap":"` + charsmapFor("\uff21", "A") + `"},
	"pre_tokenizer":{"type":"WhitespaceSplit"},"model":{"type":"WordLevel","vocab":{"[UNK]":0,"xAy":1,"A":2},"unk_token":"[UNK]"}}`
	tk, err := Load(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in      string
		ids     []int
		offsets [][2]int
	}{
		{"x\uff21y \uff21", []int{1, 2}, [][2]int{{0, 5}, {6, 9}}},
		{"\uff21\xff", []int{0}, [][2]int{{0, 4}}},
		{"\xff\xfe", []int{0}, [][2]int{{0, 2}}},
	} {
		e, err := tk.Encode(c.in, false)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(e.IDs, c.ids) || !reflect.DeepEqual(e.Offsets, c.offsets) {
			t.Errorf("%q: got %v %v, want %v %v", c.in, e.IDs, e.Offsets, c.ids, c.offsets)
		}
	}
	for _, bad := range []string{"", "AAAA", base64.StdEncoding.EncodeToString([]byte{0xff, 0xff, 0xff, 0x7f, 1, 2})} {
		doc := `{"normalizer":{"type":"Precompiled","precompiled_charsmap":"` + bad + `"},"model":{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"}}`
		if _, err := Load(strings.NewReader(doc)); err == nil || !strings.Contains(err.Error(), "normalizer.precompiled_charsmap") {
			t.Errorf("charsmap %q: error %v, want one naming normalizer.precompiled_charsmap", bad, err)
		}
	}
}

func TestRuneDelimiterOnInvalidUTF8(t *testing.T) {
	doc := `{"pre_tokenizer":{"type":"CharDelimiterSplit","delimiter":"\ufffd"},"model":{"type":"WordLevel","vocab":{"[UNK]":0,"a":1,"b":2},"unk_token":"[UNK]"}}`
	tk, err := Load(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	e, err := tk.Encode("a\xffb", false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e.IDs, []int{1, 2}) || !reflect.DeepEqual(e.Offsets, [][2]int{{0, 1}, {2, 3}}) {
		t.Errorf("got %v %v", e.IDs, e.Offsets)
	}
}

// TestWordPieceLongWord: with max_input_chars_per_word raised, a long word
// is still split greedily (the search starts at the longest vocabulary
// entry instead of the whole rest of the word).
func TestWordPieceLongWord(t *testing.T) {
	doc := `{"pre_tokenizer":{"type":"WhitespaceSplit"},"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",
	"max_input_chars_per_word":1000000000,"vocab":{"[UNK]":0,"ab":1,"##ab":2,"##a":3,"a":4}}}`
	tk, err := Load(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	word := strings.Repeat("ab", 20000) + "a"
	e, err := tk.Encode(word, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.IDs) != 20001 || e.IDs[0] != 1 || e.IDs[1] != 2 || e.IDs[20000] != 3 || e.Offsets[20000] != [2]int{40000, 40001} {
		t.Fatalf("got %d tokens, first %v, last %v %v", len(e.IDs), e.IDs[:2], e.IDs[len(e.IDs)-1], e.Offsets[len(e.Offsets)-1])
	}
	e, _ = tk.Encode(word+"c", false)
	if !reflect.DeepEqual(e.IDs, []int{0}) {
		t.Errorf("unknown piece: got %v, want [UNK]", e.IDs[:min(3, len(e.IDs))])
	}
}
