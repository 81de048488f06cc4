package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// unitCase is one small hand-made tokenizer.json of testdata/unit/cases.json
// with what the tokenizers library returned for its inputs
// (testdata/unit/expected.json, written by gen_unit.js).
type unitCase struct {
	Name    string `json:"name"`
	Results []struct {
		A          string   `json:"a"`
		B          *string  `json:"b"`
		Special    bool     `json:"special"`
		IDs        []int    `json:"ids"`
		Tokens     []string `json:"tokens"`
		Offsets    [][2]int `json:"offsets"`
		TypeIDs    []int    `json:"type_ids"`
		SpecMask   []int    `json:"special_tokens_mask"`
		Attn       []int    `json:"attention_mask"`
		Decode     string   `json:"decode"`
		DecodeSkip string   `json:"decode_skip"`
		Error      *string  `json:"error"`
	} `json:"results"`
}

func orEmpty[T any](x []T) []T {
	if x == nil {
		return []T{}
	}
	return x
}

func TestUnitCasesMatchLibrary(t *testing.T) {
	var cases []struct {
		Name string          `json:"name"`
		Tok  json.RawMessage `json:"tok"`
	}
	var expected []unitCase
	for file, v := range map[string]any{"testdata/unit/cases.json": &cases, "testdata/unit/expected.json": &expected} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if len(cases) != len(expected) || len(cases) == 0 {
		t.Fatalf("%d cases, %d expected", len(cases), len(expected))
	}
	for i, c := range cases {
		exp := expected[i]
		t.Run(c.Name, func(t *testing.T) {
			tk, err := Load(bytes.NewReader(c.Tok))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range exp.Results {
				var e *Encoding
				if r.B != nil {
					e, err = tk.EncodePair(r.A, *r.B, r.Special)
				} else {
					e, err = tk.Encode(r.A, r.Special)
				}
				if r.Error != nil {
					if err == nil {
						t.Errorf("%q: no error, library says %s", r.A, *r.Error)
					}
					continue
				}
				if err != nil {
					t.Errorf("%q: %v", r.A, err)
					continue
				}
				got := []any{orEmpty(e.IDs), orEmpty(e.Tokens), orEmpty(e.Offsets), orEmpty(e.TypeIDs), orEmpty(e.SpecialTokensMask), orEmpty(e.AttentionMask)}
				want := []any{orEmpty(r.IDs), orEmpty(r.Tokens), orEmpty(r.Offsets), orEmpty(r.TypeIDs), orEmpty(r.SpecMask), orEmpty(r.Attn)}
				names := []string{"ids", "tokens", "offsets", "type ids", "special tokens mask", "attention mask"}
				for k := range got {
					if !reflect.DeepEqual(got[k], want[k]) {
						t.Errorf("%q (pair %v, special %v): %s\n got  %v\n want %v", r.A, r.B != nil, r.Special, names[k], got[k], want[k])
					}
				}
				d, err := tk.Decode(r.IDs, false)
				if err != nil || d != r.Decode {
					t.Errorf("%q: Decode = %q, %v; want %q", r.A, d, err, r.Decode)
				}
				d, err = tk.Decode(r.IDs, true)
				if err != nil || d != r.DecodeSkip {
					t.Errorf("%q: Decode(skip special) = %q, %v; want %q", r.A, d, err, r.DecodeSkip)
				}
			}
		})
	}
}
