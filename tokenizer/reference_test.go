// Run: go test ./tokenizer (TestReference compares with the tokenizers
// library's own output, written by testdata/gen_reference.mjs).

package tokenizer

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The reference: testdata/reference, written by testdata/gen_reference.mjs
// with Hugging Face's tokenizers library (0.23.2). Offsets there are byte
// offsets into the UTF-8 text, as Encoding.Offsets.
const referenceDir = "testdata/reference"

type referenceManifest struct {
	Library string           `json:"library"`
	Files   []referenceEntry `json:"files"`
}

type referenceEntry struct {
	Name                  string `json:"name"`
	Covers                string `json:"covers"`
	Tokenizer             string `json:"tokenizer"` // a gzipped tokenizer.json, or
	Dir                   string `json:"dir"`       // a directory without tokenizer.json
	Expected              string `json:"expected"`
	VocabSize             int    `json:"vocab_size"`
	VocabSizeWithoutAdded int    `json:"vocab_size_without_added"`
}

// referenceCase is one call of the library: encode(a[, b], special) and the
// decoding of the resulting ids, or the error it returned.
type referenceCase struct {
	Line              int      `json:"line"`
	A                 string   `json:"a"`
	B                 *string  `json:"b"`
	Special           bool     `json:"special"`
	Error             string   `json:"error"`
	IDs               []int    `json:"ids"`
	Tokens            []string `json:"tokens"`
	Offsets           [][2]int `json:"offsets"`
	TypeIDs           []int    `json:"type_ids"`
	SpecialTokensMask []int    `json:"special_tokens_mask"`
	AttentionMask     []int    `json:"attention_mask"`
	Decode            string   `json:"decode"`
	DecodeSkip        string   `json:"decode_skip"`
}

func (c *referenceCase) String() string {
	s := fmt.Sprintf("line %d", c.Line)
	if c.B != nil {
		s = "pair"
	}
	if !c.Special {
		s += " (no special)"
	}
	return s + " " + quoteShort(c.A)
}

func loadReferenceManifest(t testing.TB) referenceManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(referenceDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m referenceManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(m.Files) == 0 {
		t.Fatal("manifest.json lists no files")
	}
	return m
}

func loadReferenceCases(t testing.TB, name string) []referenceCase {
	t.Helper()
	f, err := os.Open(filepath.Join(referenceDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var cases []referenceCase
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var c referenceCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s case %d: %v", name, len(cases)+1, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(cases) == 0 {
		t.Fatalf("%s: no cases", name)
	}
	return cases
}

func loadReferenceTokenizer(t testing.TB, e referenceEntry) *Tokenizer {
	t.Helper()
	var (
		tok *Tokenizer
		err error
	)
	if e.Dir != "" {
		tok, err = LoadDir(filepath.Join(referenceDir, e.Dir))
	} else {
		tok, err = LoadFile(filepath.Join(referenceDir, e.Tokenizer))
	}
	if err != nil {
		t.Fatalf("%s: load: %v", e.Name, err)
	}
	return tok
}

// TestReference encodes and decodes every corpus line (and a few pairs) with
// every reference tokenizer and compares with what the library returned.
// Each file is a subtest; it reports its first few mismatches in full and a
// count per kind, not one error per line.
func TestReference(t *testing.T) {
	m := loadReferenceManifest(t)
	for _, e := range m.Files {
		t.Run(e.Name, func(t *testing.T) {
			if testing.Short() && e.Name == "gemma3" {
				t.Skip("gemma3 (33 MB) is skipped with -short")
			}
			cases := loadReferenceCases(t, e.Expected)
			tok := loadReferenceTokenizer(t, e)
			if e.VocabSize != 0 && tok.VocabSize() != e.VocabSize {
				t.Errorf("VocabSize() = %d, library (with added tokens) %d", tok.VocabSize(), e.VocabSize)
			}
			var r mismatchReport
			for i := range cases {
				compareCase(tok, &cases[i], &r)
			}
			r.finish(t, e.Name, len(cases))
		})
	}
}

// mismatchReport collects the mismatches of one file.
type mismatchReport struct {
	details []string       // the first few, in full
	byKind  map[string]int // how many cases differ in each field
	failed  int            // cases with at least one difference
}

const maxDetails = 6

func (r *mismatchReport) add(c *referenceCase, kind, detail string) {
	if r.byKind == nil {
		r.byKind = map[string]int{}
	}
	r.byKind[kind]++
	if len(r.details) < maxDetails {
		r.details = append(r.details, fmt.Sprintf("%s: %s: %s", c, kind, detail))
	}
}

func (r *mismatchReport) finish(t *testing.T, name string, total int) {
	if r.failed == 0 {
		t.Logf("%s: %d/%d cases identical", name, total, total)
		return
	}
	kinds := make([]string, 0, len(r.byKind))
	for k, n := range r.byKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(kinds)
	t.Errorf("%s: %d of %d cases differ from the library (%s); first ones:\n%s",
		name, r.failed, total, strings.Join(kinds, ", "), strings.Join(r.details, "\n"))
}

// compareCase runs one case and records every field that differs.
func compareCase(tok *Tokenizer, c *referenceCase, r *mismatchReport) {
	before := len(r.byKind) + sumCounts(r.byKind)
	defer func() {
		if p := recover(); p != nil {
			r.add(c, "panic", fmt.Sprint(p))
		}
		if len(r.byKind)+sumCounts(r.byKind) != before {
			r.failed++
		}
	}()
	var (
		enc *Encoding
		err error
	)
	if c.B != nil {
		enc, err = tok.EncodePair(c.A, *c.B, c.Special)
	} else {
		enc, err = tok.Encode(c.A, c.Special)
	}
	if c.Error != "" {
		if err == nil {
			r.add(c, "error", "the library fails ("+c.Error+"), Encode did not")
		}
		return
	}
	if err != nil {
		r.add(c, "error", err.Error())
		return
	}
	if d := diffSeq(enc.IDs, c.IDs, fmtInt); d != "" {
		r.add(c, "ids", d)
	}
	if d := diffSeq(enc.Tokens, c.Tokens, quoteShort); d != "" {
		r.add(c, "tokens", d)
	}
	if d := diffSeq(enc.Offsets, c.Offsets, fmtOffset); d != "" {
		r.add(c, "offsets", d)
	}
	if d := diffSeq(enc.TypeIDs, c.TypeIDs, fmtInt); d != "" {
		r.add(c, "type_ids", d)
	}
	if d := diffSeq(enc.SpecialTokensMask, c.SpecialTokensMask, fmtInt); d != "" {
		r.add(c, "special_tokens_mask", d)
	}
	if d := diffSeq(enc.AttentionMask, c.AttentionMask, fmtInt); d != "" {
		r.add(c, "attention_mask", d)
	}
	// Decode the library's ids, so that a decoder defect shows on its own.
	for _, skip := range []bool{false, true} {
		want := c.Decode
		kind := "decode"
		if skip {
			want, kind = c.DecodeSkip, "decode_skip"
		}
		got, err := tok.Decode(c.IDs, skip)
		switch {
		case err != nil:
			r.add(c, kind, "error: "+err.Error())
		case got != want:
			r.add(c, kind, diffString(got, want))
		}
	}
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// diffSeq describes the first difference of got and want: its position and
// both sequences around it; "" if they are equal.
func diffSeq[T comparable](got, want []T, show func(T) string) string {
	n := min(len(got), len(want))
	i := 0
	for i < n && got[i] == want[i] {
		i++
	}
	if i == n && len(got) == len(want) {
		return ""
	}
	around := func(s []T) string {
		lo, hi := max(0, i-3), min(len(s), i+4)
		parts := make([]string, 0, hi-lo+2)
		if lo > 0 {
			parts = append(parts, "…")
		}
		for j := lo; j < hi; j++ {
			p := show(s[j])
			if j == i {
				p = ">" + p + "<"
			}
			parts = append(parts, p)
		}
		if hi < len(s) {
			parts = append(parts, "…")
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("first difference at %d (len got %d, want %d)\n\t got %s\n\twant %s",
		i, len(got), len(want), around(got), around(want))
}

func diffString(got, want string) string {
	g, w := []rune(got), []rune(want)
	return diffSeq(g, w, func(r rune) string { return fmt.Sprintf("%q", r) })
}

func fmtInt(v int) string       { return fmt.Sprint(v) }
func fmtOffset(o [2]int) string { return fmt.Sprintf("%d:%d", o[0], o[1]) }
func quoteShort(s string) string {
	if r := []rune(s); len(r) > 60 {
		return fmt.Sprintf("%q…(%d chars)", string(r[:60]), len(r))
	}
	return fmt.Sprintf("%q", s)
}

// TestReferenceOffsetsWellFormed checks the reference itself, so that a
// generator defect (offsets in chars rather than bytes) cannot pass as a Go
// one: every token's byte range lies on rune boundaries of its text.
func TestReferenceOffsetsWellFormed(t *testing.T) {
	m := loadReferenceManifest(t)
	for _, e := range m.Files {
		if e.Dir != "" {
			continue
		}
		for _, c := range loadReferenceCases(t, e.Expected) {
			if c.Error != "" {
				continue
			}
			if len(c.Offsets) != len(c.IDs) || len(c.Tokens) != len(c.IDs) {
				t.Fatalf("%s %s: %d ids, %d tokens, %d offsets", e.Name, &c, len(c.IDs), len(c.Tokens), len(c.Offsets))
			}
			for i, o := range c.Offsets {
				// A pair's token may index either text (the record
				// does not say which).
				ok := onRunes(c.A, o)
				if c.B != nil {
					ok = ok || onRunes(*c.B, o)
				}
				if !ok {
					t.Fatalf("%s %s: token %d %q offsets %v not on rune boundaries of the text", e.Name, &c, i, c.Tokens[i], o)
				}
			}
		}
	}
}

func onRunes(s string, o [2]int) bool {
	return o[0] <= o[1] && o[1] <= len(s) && runeStart(s, o[0]) && runeStart(s, o[1])
}

func runeStart(s string, i int) bool {
	return i == len(s) || (i < len(s) && (s[i]&0xC0) != 0x80)
}

// TestReferenceLoadReader: Load on the plain JSON (an io.Reader) gives the
// same tokenizer as LoadFile on the gzipped file; checked on the small
// generated files, every case.
func TestReferenceLoadReader(t *testing.T) {
	m := loadReferenceManifest(t)
	n := 0
	for _, e := range m.Files {
		if e.Tokenizer == "" {
			continue
		}
		name := filepath.Join(referenceDir, e.Tokenizer)
		if st, err := os.Stat(name); err != nil || st.Size() > 256<<10 {
			continue
		}
		n++
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			t.Fatalf("%s: %v", name, err)
		}
		tok, err := Load(zr)
		f.Close()
		if err != nil {
			t.Errorf("%s: Load: %v", e.Name, err)
			continue
		}
		var r mismatchReport
		cases := loadReferenceCases(t, e.Expected)
		for i := range cases {
			compareCase(tok, &cases[i], &r)
		}
		if r.failed > 0 {
			r.finish(t, e.Name+" (Load from a reader)", len(cases))
		}
	}
	if n < 10 {
		t.Errorf("only %d small reference files", n)
	}
}
