// Fuzz: go test -run '^$' -fuzz FuzzEncode -fuzztime 20s ./tokenizer

package tokenizer

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// readGz returns the decompressed content of a gzipped testdata file.
func readGz(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// FuzzLoad: the tokenizer.json reader never panics or hangs, whatever the
// document; a document it accepts encodes and decodes without panicking.
// Seeds: the small generated reference files (the large real ones make each
// iteration slow) and some broken documents.
func FuzzLoad(f *testing.F) {
	m := loadReferenceManifest(f)
	for _, e := range m.Files {
		if e.Tokenizer == "" {
			continue
		}
		if st, err := os.Stat(filepath.Join(referenceDir, e.Tokenizer)); err != nil || st.Size() > 64<<10 {
			continue
		}
		f.Add(readGz(f, filepath.Join(referenceDir, e.Tokenizer)))
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"model":null}`, `{"model":{"type":"BPE"}}`,
		`{"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}}`,
		`{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a","zz"]]}}`,
		`{"model":{"type":"WordPiece","vocab":{"[UNK]":0},"unk_token":"[UNK]","max_input_chars_per_word":-1}}`,
		`{"model":{"type":"Unigram","vocab":[["a",-1.0]],"unk_id":7}}`,
		`{"model":{"type":"WordLevel","vocab":{"a":-5}}}`,
		`{"added_tokens":[{"id":-1,"content":""}],"model":{"type":"WordLevel","vocab":{}}}`,
		`{"pre_tokenizer":{"type":"Split","pattern":{"Regex":"(("},"behavior":"Isolated"},"model":{"type":"WordLevel","vocab":{}}}`,
		`{"normalizer":{"type":"Precompiled","precompiled_charsmap":"AAAA"},"model":{"type":"WordLevel","vocab":{}}}`,
		`{"truncation":{"max_length":0},"padding":{"strategy":{"Fixed":-3}},"model":{"type":"WordLevel","vocab":{}}}`,
		`{"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"X","type_id":0}}],"special_tokens":{}},"model":{"type":"WordLevel","vocab":{}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		// The fuzzer cannot tell a hang from a slow input; a document that
		// takes minutes is a defect either way, so it is reported with the
		// document (a generous bound, not a speed measurement).
		done := make(chan struct{})
		go func() {
			defer close(done)
			loadAndUse(t, doc)
		}()
		select {
		case <-done:
		case <-time.After(hangAfter):
			t.Fatalf("Load and encode did not finish in %v; document: %q", hangAfter, doc)
		}
	})
}

// hangAfter is how long FuzzLoad waits for one document.
const hangAfter = 60 * time.Second

// loadAndUse runs in its own goroutine: it reports with t.Errorf.
func loadAndUse(t *testing.T, doc []byte) {
	tok, err := Load(bytes.NewReader(doc))
	if err != nil {
		return
	}
	for _, text := range []string{"", "Hello, world! 123", " x  y\t\u00e9\U0001F600 <s>"} {
		enc, err := tok.Encode(text, true)
		if err != nil {
			continue
		}
		if len(enc.Tokens) != len(enc.IDs) || len(enc.Offsets) != len(enc.IDs) {
			t.Errorf("Encode(%q): %d ids, %d tokens, %d offsets", text, len(enc.IDs), len(enc.Tokens), len(enc.Offsets))
			return
		}
		_, _ = tok.Decode(enc.IDs, false)
	}
	_, _ = tok.EncodePair("a b", "c", true)
	_, _ = tok.Decode([]int{0, 1, 2, -1, 1 << 30}, true)
}

// fuzzTokenizer is a reference tokenizer with what the library's output
// shows about it.
type fuzzTokenizer struct {
	name string
	tok  *Tokenizer
	// monotone: in every reference case the offsets of the non-special
	// tokens have non-decreasing starts and ends.
	monotone bool
}

var (
	fuzzTokenizersOnce sync.Once
	fuzzTokenizers     []fuzzTokenizer
)

// loadFuzzTokenizers loads every reference tokenizer except gemma3 (its
// 33 MB would dominate each fuzz worker's start).
func loadFuzzTokenizers(t testing.TB) []fuzzTokenizer {
	fuzzTokenizersOnce.Do(func() {
		m := loadReferenceManifest(t)
		for _, e := range m.Files {
			if e.Name == "gemma3" || e.Dir != "" {
				continue
			}
			ft := fuzzTokenizer{name: e.Name, tok: loadReferenceTokenizer(t, e), monotone: true}
			for _, c := range loadReferenceCases(t, e.Expected) {
				if c.Error == "" && c.B == nil && !offsetsMonotone(c.Offsets, c.SpecialTokensMask) {
					ft.monotone = false
					break
				}
			}
			fuzzTokenizers = append(fuzzTokenizers, ft)
		}
	})
	if len(fuzzTokenizers) == 0 {
		t.Fatal("no reference tokenizers")
	}
	return fuzzTokenizers
}

func offsetsMonotone(offs [][2]int, special []int) bool {
	prev := [2]int{-1, -1}
	for i, o := range offs {
		if i < len(special) && special[i] != 0 {
			continue
		}
		if o[0] < prev[0] || o[1] < prev[1] {
			return false
		}
		prev = o
	}
	return true
}

// TestFuzzMonotoneData makes sure the monotone property the fuzz test
// checks is not vacuous: most reference tokenizers have it.
func TestFuzzMonotoneData(t *testing.T) {
	n := 0
	var not []string
	for _, ft := range loadFuzzTokenizers(t) {
		if ft.monotone {
			n++
		} else {
			not = append(not, ft.name)
		}
	}
	t.Logf("offsets monotone in the library's output for %d files; not for: %s", n, strings.Join(not, ", "))
	if n < len(loadFuzzTokenizers(t))/2 {
		t.Errorf("only %d reference files have monotone offsets", n)
	}
}

// FuzzEncode: encoding any text with any reference tokenizer never panics;
// ids are in range, offsets lie within the
// input on rune boundaries, monotone where the library's are; decoding
// does not fail.
func FuzzEncode(f *testing.F) {
	for _, line := range strings.Split(string(mustRead(f, filepath.Join(referenceDir, "corpus.txt"))), "\n") {
		f.Add(line, uint8(len(line)), true)
	}
	f.Add("", uint8(0), false)
	f.Add(strings.Repeat(" ", 300)+"x", uint8(3), true)
	f.Add("\xff\xfe invalid UTF-8 \xc3", uint8(5), true)
	f.Add("<s></s><unk>[CLS]<|endoftext|><mask>[SW]", uint8(7), false)
	f.Add("first sequence, then the second one", uint8(0x80|9), true)
	f.Add("ab", uint8(0x80|11), true)
	toks := loadFuzzTokenizers(f)
	f.Fuzz(func(t *testing.T, text string, which uint8, special bool) {
		ft := toks[int(which&0x7f)%len(toks)]
		if which&0x80 != 0 {
			// A pair: the text cut in two at a rune boundary.
			cut := len(text) / 2
			for cut > 0 && cut < len(text) && !utf8.RuneStart(text[cut]) {
				cut--
			}
			a, b := text[:cut], text[cut:]
			enc, err := ft.tok.EncodePair(a, b, special)
			if err != nil {
				return
			}
			// Offsets refer to a or b; the API does not say which.
			if err := checkEncoding(ft, enc, "", a, b); err != nil {
				t.Fatalf("%s: EncodePair(%q, %q, %v): %v", ft.name, a, b, special, err)
			}
			return
		}
		enc, err := ft.tok.Encode(text, special)
		if err != nil {
			return
		}
		if err := checkEncoding(ft, enc, text); err != nil {
			t.Fatalf("%s: Encode(%q, %v): %v", ft.name, text, special, err)
		}
		if _, err := ft.tok.Decode(enc.IDs, !special); err != nil {
			t.Fatalf("%s: Decode(Encode(%q)): %v", ft.name, text, err)
		}
	})
}

// checkEncoding checks enc against the invariants; text is the input, or
// for a pair "" and the two texts in pair (offsets may index either, and
// monotony is not checked).
func checkEncoding(ft fuzzTokenizer, enc *Encoding, text string, pair ...string) error {
	n := len(enc.IDs)
	if len(enc.Tokens) != n || len(enc.Offsets) != n || len(enc.TypeIDs) != n ||
		len(enc.SpecialTokensMask) != n || len(enc.AttentionMask) != n {
		return fmt.Errorf("lengths differ: %d ids, %d tokens, %d offsets, %d type ids, %d special mask, %d attention mask",
			n, len(enc.Tokens), len(enc.Offsets), len(enc.TypeIDs), len(enc.SpecialTokensMask), len(enc.AttentionMask))
	}
	vs := ft.tok.VocabSize()
	for i, id := range enc.IDs {
		if id < 0 || id >= vs {
			return fmt.Errorf("token %d: id %d outside [0, %d)", i, id, vs)
		}
		o := enc.Offsets[i]
		texts := []string{text}
		if len(pair) > 0 {
			texts = pair
		}
		inside, onBoundaries := false, false
		for _, s := range texts {
			if o[0] >= 0 && o[0] <= o[1] && o[1] <= len(s) {
				inside = true
				onBoundaries = onBoundaries || !utf8.ValidString(s) || onRunes(s, o)
			}
		}
		if !inside {
			return fmt.Errorf("token %d %q: offsets %v outside the input", i, enc.Tokens[i], o)
		}
		if !onBoundaries {
			return fmt.Errorf("token %d %q: offsets %v not on rune boundaries", i, enc.Tokens[i], o)
		}
	}
	if len(pair) == 0 && ft.monotone && !offsetsMonotone(enc.Offsets, enc.SpecialTokensMask) {
		return fmt.Errorf("offsets not monotone (the library's are on this file): %v", enc.Offsets)
	}
	return nil
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkAdversarial encodes one repeated character, spaces, and one
// repeated emoji at 64 KiB, 256 KiB and 1 MiB with tokenizers of each kind;
// linear time shows as the same ns/op per byte (MB/s) at every size, and
// the same user-ns/B (user CPU time of the process per byte, GC included,
// which other processes on the machine do not inflate). sys-ns/B is the
// system time per byte: mostly page faults of fresh memory, which grow
// with the size when the runtime gives the memory of one encoding back to
// the OS before the next. (Not a timed test: read the figures.)
//
//	go test -run '^$' -bench Adversarial -benchtime 1x ./tokenizer
func BenchmarkAdversarial(b *testing.B) {
	m := loadReferenceManifest(b)
	want := map[string]bool{"llama3": true, "gpt2": true, "llama2": true, "bert-uncased": true, "unigram-precompiled": true, "qwen3": true}
	for _, e := range m.Files {
		if !want[e.Name] {
			continue
		}
		tok := loadReferenceTokenizer(b, e)
		for _, in := range []struct{ name, unit string }{{"a", "a"}, {"spaces", " "}, {"emoji", "\U0001F600"}} {
			for _, size := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20} {
				text := strings.Repeat(in.unit, size/len(in.unit))
				b.Run(fmt.Sprintf("%s/%s/%dK", e.Name, in.name, size>>10), func(b *testing.B) {
					b.SetBytes(int64(len(text)))
					user, sys := processCPU()
					for b.Loop() {
						if _, err := tok.Encode(text, false); err != nil {
							b.Fatal(err)
						}
					}
					// CPU time per byte: the figures to compare between
					// sizes when other processes share the machine
					user2, sys2 := processCPU()
					perByte := float64(b.N) * float64(len(text))
					b.ReportMetric(float64(user2-user)/perByte, "user-ns/B")
					b.ReportMetric(float64(sys2-sys)/perByte, "sys-ns/B")
				})
			}
		}
	}
}

// TestEncodeInvalidUTF8: the library only takes valid UTF-8 (a Rust &str);
// a Go string may be anything. Every reference tokenizer returns an error
// or a well-formed encoding for such input, and never panics. (Found by
// FuzzEncode: a lone "\xf0" through the Precompiled normalizer.)
func TestEncodeInvalidUTF8(t *testing.T) {
	inputs := []string{"\xf0", "\xff", "a\xc3", "\xe2\x82", "ok \xed\xa0\x80 surrogate", "\xf4\x90\x80\x80", "x\x00y", "<s>\xf0</s>", "\xc3 \xa9"}
	for _, ft := range loadFuzzTokenizers(t) {
		for _, in := range inputs {
			for _, special := range []bool{true, false} {
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Errorf("%s: Encode(%q) panics: %v", ft.name, in, p)
						}
					}()
					enc, err := ft.tok.Encode(in, special)
					if err != nil {
						return
					}
					if err := checkEncoding(ft, enc, in); err != nil {
						t.Errorf("%s: Encode(%q): %v", ft.name, in, err)
					}
					if _, err := ft.tok.Decode(enc.IDs, false); err != nil {
						t.Errorf("%s: Decode(Encode(%q)): %v", ft.name, in, err)
					}
				}()
			}
		}
	}
}
