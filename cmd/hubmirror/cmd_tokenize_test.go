package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tokenizerReference is the tokenizers library's output that the tokenizer
// package is tested against (tokenizer/testdata/gen_reference.mjs).
const tokenizerReference = "../../tokenizer/testdata/reference"

// libraryCase is one record of tokenizer/testdata/reference/expected.
type libraryCase struct {
	Line       int      `json:"line"`
	A          string   `json:"a"`
	B          *string  `json:"b"`
	Special    bool     `json:"special"`
	Error      string   `json:"error"`
	IDs        []int    `json:"ids"`
	Tokens     []string `json:"tokens"`
	Offsets    [][2]int `json:"offsets"`
	TypeIDs    []int    `json:"type_ids"`
	Decode     string   `json:"decode"`
	DecodeSkip string   `json:"decode_skip"`
}

func readLibraryCases(t *testing.T, name string) []libraryCase {
	t.Helper()
	f, err := os.Open(filepath.Join(tokenizerReference, "expected", name+".jsonl.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var cases []libraryCase
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var c libraryCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil || len(cases) == 0 {
		t.Fatalf("%s: %d cases, %v", name, len(cases), err)
	}
	return cases
}

// tokenizeRecord is one JSON object of tokenize --json.
type tokenizeRecord struct {
	IDs     []int    `json:"ids"`
	Tokens  []string `json:"tokens"`
	Offsets [][2]int `json:"offsets"`
	TypeIDs []int    `json:"type_ids"`
}

func parseRecords(t *testing.T, stdout string) []tokenizeRecord {
	t.Helper()
	var out []tokenizeRecord
	for i, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		var r tokenizeRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("output line %d %q: %v", i+1, line, err)
		}
		out = append(out, r)
	}
	return out
}

func sameEncoding(t *testing.T, what string, got tokenizeRecord, want *libraryCase) {
	t.Helper()
	if !slices.Equal(got.IDs, want.IDs) || !slices.Equal(got.Tokens, want.Tokens) || !slices.Equal(got.Offsets, want.Offsets) {
		t.Errorf("%s %q:\n got ids %v tokens %q offsets %v\nwant ids %v tokens %q offsets %v",
			what, want.A, got.IDs, got.Tokens, got.Offsets, want.IDs, want.Tokens, want.Offsets)
	}
}

// TestTokenizeLinesReference runs tokenize --lines --json on the corpus
// lines of the reference and compares every line with the library's ids,
// tokens and byte offsets: a tokenizer.json.gz file, a directory with
// vocab.json + merges.txt, a directory with vocab.txt; with and without
// special tokens.
func TestTokenizeLinesReference(t *testing.T) {
	for _, tc := range []struct{ model, expected string }{
		{filepath.Join(tokenizerReference, "tokenizers", "llama2.json.gz"), "llama2"},
		{filepath.Join(tokenizerReference, "dirs", "gpt2"), "gpt2"},
		{filepath.Join(tokenizerReference, "dirs", "bert-uncased"), "bert-uncased"},
	} {
		cases := readLibraryCases(t, tc.expected)
		for _, special := range []bool{true, false} {
			var want []*libraryCase
			var text strings.Builder
			for i := range cases {
				c := &cases[i]
				// a line of the file is a case without a line break
				if c.B != nil || c.Special != special || c.Error != "" || strings.ContainsAny(c.A, "\r\n") {
					continue
				}
				want = append(want, c)
				text.WriteString(c.A)
				if len(want)%2 == 0 {
					text.WriteString("\r\n") // CRLF ends a line as LF does
				} else {
					text.WriteString("\n")
				}
			}
			if len(want) < 50 {
				t.Fatalf("%s: only %d single-line cases", tc.expected, len(want))
			}
			in := filepath.Join(t.TempDir(), "lines.txt")
			if err := os.WriteFile(in, []byte(strings.TrimSuffix(text.String(), "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"tokenize", tc.model, "--file", in, "--lines", "--json"}
			if !special {
				args = append(args, "--no-special")
			}
			stdout, stderr, code := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s", args, code, stderr)
			}
			got := parseRecords(t, stdout)
			if len(got) != len(want) {
				t.Fatalf("%s: %d output lines for %d input lines", tc.expected, len(got), len(want))
			}
			for i := range want {
				sameEncoding(t, tc.expected, got[i], want[i])
			}
		}
	}
}

// TestTokenizeTextReference: without --lines the whole text, line breaks
// included, is one input; --pair encodes a pair; the human form shows the
// same ids; --decode gives the library's decoding.
func TestTokenizeTextReference(t *testing.T) {
	model := filepath.Join(tokenizerReference, "dirs", "bert-uncased")
	cases := readLibraryCases(t, "bert-uncased")
	var multi, pair *libraryCase
	for i := range cases {
		c := &cases[i]
		if c.Error != "" || !c.Special {
			continue
		}
		if multi == nil && c.B == nil && strings.Contains(c.A, "\n") && len(c.IDs) > 3 {
			multi = c
		}
		if pair == nil && c.B != nil && *c.B != "" && c.A != "" {
			pair = c
		}
	}
	if multi == nil || pair == nil {
		t.Fatal("the reference has no multi-line or pair case")
	}
	// a tokenizer.json file given as MODEL, through --file
	in := filepath.Join(t.TempDir(), "text.txt")
	if err := os.WriteFile(in, []byte(multi.A), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "tokenize", filepath.Join(tokenizerReference, "tokenizers", "bert-uncased.json.gz"), "--file", in, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := parseRecords(t, stdout)
	if len(got) != 1 {
		t.Fatalf("%d JSON lines, want 1", len(got))
	}
	sameEncoding(t, "--file", got[0], multi)

	stdout, stderr, code = runCLI(t, "tokenize", model, "--text", pair.A, "--pair", *pair.B, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got = parseRecords(t, stdout)
	sameEncoding(t, "--pair", got[0], pair)
	if !slices.Equal(got[0].TypeIDs, pair.TypeIDs) {
		t.Errorf("type_ids %v, want %v", got[0].TypeIDs, pair.TypeIDs)
	}

	stdout, stderr, code = runCLI(t, "tokenize", model, "--text", multi.A)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := "ids:    " + joinIntList(multi.IDs) + "\n"; !strings.HasPrefix(stdout, want) {
		t.Errorf("human output starts %q, want %q", stdout[:min(len(stdout), 80)], want)
	}

	for _, skip := range []bool{false, true} {
		args := []string{"tokenize", model, "--decode", joinIntList(pair.IDs), "--json"}
		want := pair.Decode
		if skip {
			args = append(args, "--no-special")
			want = pair.DecodeSkip
		}
		stdout, stderr, code = runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		var doc struct{ Text string }
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Text != want {
			t.Errorf("--decode (skip special %v) = %q, want %q", skip, doc.Text, want)
		}
	}
}

// TestTokenizeStdin reads --file - and streams a last line without newline.
func TestTokenizeStdin(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "Hello world\n\nbye")
	f.Seek(0, io.SeekStart)
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	stdout, stderr, code := runCLI(t, "tokenize", filepath.Join(tokenizerReference, "dirs", "gpt2"), "--file", "-", "--lines", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := parseRecords(t, stdout)
	if len(got) != 3 || len(got[0].IDs) != 2 || len(got[1].IDs) != 0 || !slices.Equal(got[2].Tokens, []string{"bye"}) {
		t.Errorf("stdin lines: %+v", got)
	}
}

func TestTokenizeErrors(t *testing.T) {
	model := filepath.Join(tokenizerReference, "dirs", "gpt2")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--text", "a", "--file", "x"}, 2, "not both"},
		{[]string{}, 2, "needs --text"},
		{[]string{"--file", "x", "--lines", "--pair", "b"}, 2, "--pair"},
		{[]string{"--decode", "1,,2"}, 2, "item 2 is empty"},
		{[]string{"--decode", "1,-3"}, 2, "not a non-negative integer"},
		{[]string{"--decode", "1", "--text", "a"}, 2, "--decode takes no"},
		{[]string{"--decode", "999999"}, 1, "id 999999 is not in the vocabulary"},
		{[]string{"--file", filepath.Join(t.TempDir(), "missing.txt")}, 1, "missing.txt"},
	} {
		args := append([]string{"tokenize", model}, tc.args...)
		_, stderr, code := runCLI(t, args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d saying %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.txt")
	os.WriteFile(bad, []byte("fine\nnot \xff utf-8\n"), 0o644)
	_, stderr, code := runCLI(t, "tokenize", model, "--file", bad, "--lines")
	if code != 1 || !strings.Contains(stderr, "line 2: not valid UTF-8") {
		t.Errorf("invalid UTF-8: exit %d, %q", code, stderr)
	}

	// a model directory without tokenizer files
	stdout, stderr, code := runCLI(t, "tokenize", filepath.Join(forwardFixtures, "bert-bin"), "--text", "hi", "--json")
	if code != 1 || !strings.Contains(stderr, "no tokenizer") {
		t.Errorf("model without tokenizer: exit %d, %q", code, stderr)
	}
	if doc := jsonFailure(t, stdout, 1); !strings.Contains(doc["error"].(string), "no tokenizer") {
		t.Errorf("JSON error %v", doc)
	}
}
