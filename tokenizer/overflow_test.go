package tokenizer

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

type overflowEncoding struct {
	IDs         []int               `json:"ids"`
	Tokens      []string            `json:"tokens"`
	Offsets     [][2]int            `json:"offsets"`
	TypeIDs     []int               `json:"type_ids"`
	SpecMask    []int               `json:"special_tokens_mask"`
	Attn        []int               `json:"attention_mask"`
	Overflowing []*overflowEncoding `json:"overflowing"`
}

// sameEncoding says where got differs from want, overflowing pieces
// included ("" when equal).
func sameEncoding(got *Encoding, want *overflowEncoding, at string) string {
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"ids", orEmpty(got.IDs), orEmpty(want.IDs)},
		{"tokens", orEmpty(got.Tokens), orEmpty(want.Tokens)},
		{"offsets", orEmpty(got.Offsets), orEmpty(want.Offsets)},
		{"type_ids", orEmpty(got.TypeIDs), orEmpty(want.TypeIDs)},
		{"special_tokens_mask", orEmpty(got.SpecialTokensMask), orEmpty(want.SpecMask)},
		{"attention_mask", orEmpty(got.AttentionMask), orEmpty(want.Attn)},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			return fmt.Sprintf("%s%s: %v, library %v", at, f.name, f.got, f.want)
		}
	}
	if len(got.Overflowing) != len(want.Overflowing) {
		return fmt.Sprintf("%s%d overflowing pieces, library %d", at, len(got.Overflowing), len(want.Overflowing))
	}
	for i, o := range want.Overflowing {
		if d := sameEncoding(got.Overflowing[i], o, fmt.Sprintf("%soverflowing[%d].", at, i)); d != "" {
			return d
		}
	}
	return ""
}

// TestOverflowMatchesLibrary: truncation with a stride gives the library's
// encoding and overflowing pieces (testdata/reference/overflow.json.gz,
// written by gen_overflow.mjs), post-processed and padded as the library
// does, for single texts and pairs, every strategy and direction, and the
// library's errors.
func TestOverflowMatchesLibrary(t *testing.T) {
	var doc struct {
		Cases []struct {
			Tokenizer string            `json:"tokenizer"`
			MaxLength int               `json:"max_length"`
			Stride    int               `json:"stride"`
			Direction string            `json:"direction"`
			Strategy  string            `json:"strategy"`
			A         string            `json:"a"`
			B         *string           `json:"b"`
			Special   bool              `json:"special"`
			Encoding  *overflowEncoding `json:"encoding"`
			Error     string            `json:"error"`
		} `json:"cases"`
	}
	f, err := os.Open(filepath.Join(referenceDir, "overflow.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(zr).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	toks := map[string]*Tokenizer{}
	overflowing, failed := 0, 0
	for i, c := range doc.Cases {
		base := toks[c.Tokenizer]
		if base == nil {
			if base, err = LoadFile(filepath.Join(referenceDir, "tokenizers", c.Tokenizer+".json.gz")); err != nil {
				t.Fatal(err)
			}
			toks[c.Tokenizer] = base
		}
		tok, err := base.WithTruncation(Truncation{MaxLength: c.MaxLength, Stride: c.Stride, Strategy: c.Strategy, Direction: c.Direction})
		if err != nil {
			t.Fatal(err)
		}
		var enc *Encoding
		if c.B == nil {
			enc, err = tok.Encode(c.A, c.Special)
		} else {
			enc, err = tok.EncodePair(c.A, *c.B, c.Special)
		}
		name := fmt.Sprintf("case %d (%s max %d stride %d %s %s, pair %v, special %v)", i, c.Tokenizer, c.MaxLength, c.Stride, c.Direction, c.Strategy, c.B != nil, c.Special)
		switch {
		case c.Encoding == nil && err == nil:
			t.Errorf("%s: no error, library: %s", name, c.Error)
		case c.Encoding != nil && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.Encoding != nil:
			if d := sameEncoding(enc, c.Encoding, ""); d != "" {
				t.Errorf("%s: %s", name, d)
				failed++
			}
			if len(c.Encoding.Overflowing) > 0 {
				overflowing++
			}
		}
		if failed > 20 {
			t.Fatal("too many differences")
		}
	}
	if overflowing < 100 {
		t.Errorf("only %d cases with overflowing pieces", overflowing)
	}
}
