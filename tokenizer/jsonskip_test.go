package tokenizer

import (
	"encoding/json"
	"slices"
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
