package main

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// overflowRecord is tokenize --json's object with its overflowing pieces,
// and the library's encoding of tokenizer/testdata/reference/overflow.json.gz.
type overflowRecord struct {
	IDs         []int             `json:"ids"`
	Tokens      []string          `json:"tokens"`
	Offsets     [][2]int          `json:"offsets"`
	Overflowing []*overflowRecord `json:"overflowing"`
}

// normal has no empty lists (the library writes "overflowing": [], tokenize
// leaves the key out).
func (r *overflowRecord) normal() *overflowRecord {
	if len(r.Overflowing) == 0 {
		r.Overflowing = nil
	}
	for _, o := range r.Overflowing {
		o.normal()
	}
	return r
}

// tokenize --max-length N --stride S prints the library's truncated
// encoding and its overflowing pieces (gen_overflow.mjs), for a text and a
// pair, with and without special tokens.
func TestTokenizeMaxLengthStride(t *testing.T) {
	f, err := os.Open(filepath.Join(tokenizerReference, "overflow.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct {
			Tokenizer, Direction, Strategy, A string
			B                                 *string
			MaxLength                         int `json:"max_length"`
			Stride                            int
			Special                           bool
			Encoding                          *overflowRecord
		}
	}
	if err := json.NewDecoder(zr).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	checked, pieces := 0, 0
	for _, c := range doc.Cases {
		if c.Direction != "Right" || c.Strategy != "LongestFirst" || c.Encoding == nil || c.Tokenizer != "bert-uncased" {
			continue
		}
		args := []string{"tokenize", filepath.Join(tokenizerReference, "tokenizers", c.Tokenizer+".json.gz"), "--text", c.A,
			"--max-length", strconv.Itoa(c.MaxLength), "--stride", strconv.Itoa(c.Stride), "--json"}
		if c.B != nil {
			args = append(args, "--pair", *c.B)
		}
		if !c.Special {
			args = append(args, "--no-special")
		}
		out, stderr, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		var got overflowRecord
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
		if !reflect.DeepEqual(got.normal(), c.Encoding.normal()) {
			t.Errorf("%v:\n got %+v\nwant %+v", args, got, *c.Encoding)
		}
		checked++
		pieces += len(got.Overflowing)
	}
	if checked < 10 || pieces < 10 {
		t.Fatalf("%d cases with %d overflowing pieces checked", checked, pieces)
	}

	tok := filepath.Join(tokenizerReference, "tokenizers", "bert-uncased.json.gz")
	for _, bad := range [][]string{
		{"--text", "x", "--stride", "2"},
		{"--text", "x", "--max-length", "4", "--stride", "4"},
		{"--text", "x", "--max-length", "0"},
		{"--decode", "1,2", "--max-length", "4"},
	} {
		if _, stderr, code := runCLI(t, append([]string{"tokenize", tok}, bad...)...); code != exitUsage || !strings.Contains(stderr, "--") {
			t.Errorf("%v: exit %d, want %d: %s", bad, code, exitUsage, stderr)
		}
	}
	// the special tokens leave no room: the library's error, exit 1
	if _, stderr, code := runCLI(t, "tokenize", tok, "--text", "a b c", "--max-length", "1"); code != 1 || !strings.Contains(stderr, "max_length") {
		t.Errorf("--max-length 1 with [CLS] and [SEP]: exit %d: %s", code, stderr)
	}
	// text output: the pieces follow the encoding
	out, stderr, code := runCLI(t, "tokenize", tok, "--text", "one two three four five six seven", "--max-length", "5", "--stride", "1")
	if code != 0 || !strings.Contains(out, "overflowing 1 of ") {
		t.Errorf("text output: exit %d:\n%s%s", code, out, stderr)
	}
}
