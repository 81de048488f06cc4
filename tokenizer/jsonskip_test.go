package tokenizer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Load splits the document with its own JSON skipper (jsonskip.go): every
// document that is not valid JSON is refused, as encoding/json refuses it,
// wherever the defect is, the big vocab and merges values included.
func TestLoadRefusesInvalidJSON(t *testing.T) {
	valid := `{"version":"1.0","model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"decoder":null}`
	if _, err := Load(strings.NewReader(valid)); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		``, ` `, `{`, `{"model"`, `{"model":`, `{"model":{`, `{"model":{"vocab":{"a":0}`,
		valid + `x`, valid + `{}`, valid[:len(valid)-1],
		strings.Replace(valid, `"a":0`, `"a":0,`, 1),
		strings.Replace(valid, `"a":0`, `"a" 0`, 1),
		strings.Replace(valid, `"a":0`, `"a":01`, 1),
		strings.Replace(valid, `"a":0`, `"a":-`, 1),
		strings.Replace(valid, `"a":0`, `"a":1e`, 1),
		strings.Replace(valid, `"a":0`, `"a\x01":0`, 1),
		strings.Replace(valid, `"a":0`, `"a\q":0`, 1),
		strings.Replace(valid, `"a":0`, "\"a\x01\":0", 1),
		strings.Replace(valid, `["a b"]`, "[\"a\nb\"]", 1),
		strings.Replace(valid, `"a":0`, `"\u00g1":0`, 1),
		strings.Replace(valid, `["a b"]`, `["a b",]`, 1),
		strings.Replace(valid, `["a b"]`, `["a b" "a b"]`, 1),
		strings.Replace(valid, `["a b"]`, `["a\tb"`, 1),
		strings.Replace(valid, `"decoder":null`, `"decoder":nul`, 1),
		strings.Replace(valid, `"decoder":null`, `"decoder":[1,,2]`, 1),
		strings.Replace(valid, `"decoder":null`, `"decoder":{"a" 1}`, 1),
		strings.Replace(valid, `"decoder":null`, `"decoder":tru`, 1),
		strings.Replace(valid, `"version"`, `version`, 1),
		strings.Replace(valid, `"decoder":null`, `"decoder":`+strings.Repeat("[", maxJSONDepth+1)+strings.Repeat("]", maxJSONDepth+1), 1),
	} {
		if json.Valid([]byte(doc)) {
			t.Fatalf("test document is valid JSON: %q", doc)
		}
		if _, err := Load(strings.NewReader(doc)); err == nil {
			t.Errorf("Load accepted invalid JSON %q", doc)
		}
	}
}

// Escaped strings in the vocab and merges read as encoding/json reads them.
func TestLoadEscapedMerges(t *testing.T) {
	plain := `{"model":{"type":"BPE","vocab":{"é":0,"\"":1,"é\"":2,"x y":3},"merges":[["é","\""]]}}`
	escaped := `{"model" : {"type":"BPE", "vocab":{"\u00e9":0, "\"":1, "\u00e9\u0022":2, "x y":3},"merges":[ [ "\u00e9" , "\"" ] ] } }`
	strs := `{"model":{"type":"BPE","vocab":{"é":0,"\"":1,"é\"":2},"merges":["#version: 0.2", "\u00e9 \""]}}`
	var want []int
	for i, doc := range []string{plain, escaped, strs} {
		tok, err := Load(strings.NewReader(doc))
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		enc, err := tok.Encode(`é"é`, false)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			want = enc.IDs
			if !slices.Equal(want, []int{2, 0}) {
				t.Fatalf("ids %v, want [2 0]", want)
			}
		} else if !slices.Equal(enc.IDs, want) {
			t.Errorf("document %d: ids %v, want %v", i, enc.IDs, want)
		}
	}
}

// A long merges list is looked up in parallel chunks: the error names the
// first bad merge, whichever chunk it is in, and a good list encodes as
// its merges say.
func TestLoadManyMerges(t *testing.T) {
	const n = 200 // n*n merges, above the parallel threshold
	build := func(bad ...int) string {
		var b strings.Builder
		b.WriteString(`{"model":{"type":"BPE","vocab":{`)
		id := 0
		for i := range n {
			fmt.Fprintf(&b, "%q:%d,", string(rune(0x4E00+i)), id)
			id++
		}
		for i := range n {
			for j := range n {
				fmt.Fprintf(&b, "%q:%d,", string(rune(0x4E00+i))+string(rune(0x4E00+j)), id)
				id++
			}
		}
		b.WriteString(`"zz":` + strconv.Itoa(id) + `},"merges":[`)
		for k := range n * n {
			x, y := string(rune(0x4E00+k/n)), string(rune(0x4E00+k%n))
			if slices.Contains(bad, k) {
				y = "q" // not in the vocabulary
			}
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%q", x+" "+y)
		}
		b.WriteString(`]}}`)
		return b.String()
	}
	for _, c := range []struct {
		bad  []int
		want string
	}{
		{[]int{n*n - 7}, fmt.Sprintf("merges[%d]: token \"q\"", n*n-7)},
		{[]int{n*n - 7, 123}, "merges[123]: token \"q\""},
	} {
		if _, err := Load(strings.NewReader(build(c.bad...))); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("bad merges %v: error %v, want %q", c.bad, err, c.want)
		}
	}
	tok, err := Load(strings.NewReader(build()))
	if err != nil {
		t.Fatal(err)
	}
	last := string(rune(0x4E00+n-1)) + string(rune(0x4E00+n-2))
	enc, err := tok.Encode(last, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := n + (n-1)*n + n - 2; !slices.Equal(enc.IDs, []int{want}) {
		t.Errorf("%q: ids %v, want [%d]", last, enc.IDs, want)
	}
}
