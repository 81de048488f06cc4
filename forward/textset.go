package forward

import (
	embedfs "embed"
	"fmt"
	"path"
	"strings"
	"unicode"

	"github.com/hubmirror/hubmirror/tokenizer"
)

// textSet is the project's own validation text (written for hubmirror, no
// third-party text): prose in several languages and scripts, code, and
// numbers.
//
//go:embed textset/*.txt
var textSet embedfs.FS

// TextSetName names the built-in text set in reports.
const TextSetName = "hubmirror-textset"

// Text is a text that validation encodes with the reference model's
// tokenizer and runs through both models.
type Text struct {
	// Name says where the text came from (a set or a file) in the report.
	Name string
	Text string
}

// BuiltinTexts returns the project's text set: prose in several languages,
// code and numbers, a few KB.
func BuiltinTexts() []Text {
	entries, err := textSet.ReadDir("textset")
	if err != nil {
		panic(err) // embedded at build time
	}
	var out []Text
	for _, e := range entries {
		data, err := textSet.ReadFile(path.Join("textset", e.Name()))
		if err != nil {
			panic(err)
		}
		out = append(out, Text{Name: TextSetName + "/" + strings.TrimSuffix(e.Name(), ".txt"), Text: string(data)})
	}
	return out
}

// Limits of the text inputs of a validation.
const (
	// TextWindow is the longest text window, the context llama.cpp's
	// perplexity tool uses by default; windows are cut shorter to the
	// models' positions.
	TextWindow = 512
	// MaxTextTokens bounds the text tokens of a validation (the built-in
	// set first, then the user's texts): beyond it a text is cut.
	MaxTextTokens = 8192
)

// TextInput records a text that went into a validation.
type TextInput struct {
	Name string `json:"name"`
	// Tokens is the number of the text's tokens that were run (special
	// tokens not counted); Windows the sequences they were cut into.
	Tokens  int `json:"tokens"`
	Windows int `json:"windows"`
	// Cut reports that the text was cut to MaxTextTokens.
	Cut bool `json:"cut,omitempty"`
}

// textWindow is one sequence of text tokens as the models run it: the
// post-processor's leading special tokens, the text's tokens
// ids[from:to], its trailing special tokens.
type textWindow struct {
	ids      []int
	from, to int
}

// encodeTexts encodes texts with tok and cuts them into windows of at most
// window ids (special tokens included), at most budget text tokens in all.
// Ids must be below vocab.
func encodeTexts(tok *tokenizer.Tokenizer, texts []Text, window, vocab, budget int) ([]TextInput, []textWindow, error) {
	var inputs []TextInput
	var windows []textWindow
	for _, tx := range texts {
		ids, err := encodeText(tok, tx.Text, budget)
		if err != nil {
			return nil, nil, fmt.Errorf("text %s: %w", tx.Name, err)
		}
		prefix, suffix, err := specialTokens(tok, tx.Text)
		if err != nil {
			return nil, nil, fmt.Errorf("text %s: %w", tx.Name, err)
		}
		for _, id := range append(append(slicesClone(ids), prefix...), suffix...) {
			if id < 0 || id >= vocab {
				return nil, nil, fmt.Errorf("text %s: the tokenizer gives id %d, outside the model's vocabulary of %d", tx.Name, id, vocab)
			}
		}
		in := TextInput{Name: tx.Name}
		if len(ids) > budget {
			ids, in.Cut = ids[:budget], true
		}
		budget -= len(ids)
		chunk := window - len(prefix) - len(suffix)
		if chunk < 2 {
			return nil, nil, fmt.Errorf("text %s: windows of %d positions leave no room after %d special tokens", tx.Name, window, len(prefix)+len(suffix))
		}
		for start := 0; start < len(ids); start += chunk {
			end := min(start+chunk, len(ids))
			if end-start < 2 && start > 0 { // a lone last token predicts nothing
				break
			}
			w := textWindow{from: len(prefix), to: len(prefix) + end - start}
			w.ids = append(append(append(w.ids, prefix...), ids[start:end]...), suffix...)
			windows = append(windows, w)
			in.Tokens += end - start
			in.Windows++
		}
		inputs = append(inputs, in)
		if budget <= 0 {
			break
		}
	}
	return inputs, windows, nil
}

func slicesClone(s []int) []int { return append([]int(nil), s...) }

// encodeText returns the ids of text without special tokens. It encodes
// paragraph by paragraph (each with the blank lines after it), so that a
// truncation configured in the tokenizer file (BERT's 512) cuts nothing:
// a paragraph the tokenizer cut is encoded again in halves, at a line
// break. Padding the file configures is dropped. It stops once it has more
// than budget ids.
func encodeText(tok *tokenizer.Tokenizer, text string, budget int) ([]int, error) {
	var ids []int
	for _, p := range paragraphs(text) {
		if len(ids) > budget { // the rest would be cut
			break
		}
		got, err := encodeWhole(tok, p)
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
	}
	return ids, nil
}

func encodeWhole(tok *tokenizer.Tokenizer, text string) ([]int, error) {
	e, err := tok.Encode(text, false)
	if err != nil {
		return nil, err
	}
	end := 0
	var ids []int
	for i, id := range e.IDs {
		if i < len(e.AttentionMask) && e.AttentionMask[i] == 0 {
			continue
		}
		ids = append(ids, id)
		if i < len(e.Offsets) {
			end = max(end, e.Offsets[i][1])
		}
	}
	rest := strings.TrimRightFunc(text[min(end, len(text)):], unicode.IsSpace)
	if rest == "" {
		return ids, nil
	}
	// Cut by the tokenizer's truncation: split at the middle line break.
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 2 || (len(lines) == 2 && lines[1] == "") {
		return ids, nil // one line: keep what the tokenizer gives
	}
	half := strings.Join(lines[:len(lines)/2], "")
	a, err := encodeWhole(tok, half)
	if err != nil {
		return nil, err
	}
	b, err := encodeWhole(tok, text[len(half):])
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

// paragraphs splits text after each run of blank lines.
func paragraphs(text string) []string {
	var out []string
	for text != "" {
		i := strings.Index(text, "\n\n")
		if i < 0 {
			out = append(out, text)
			break
		}
		j := i + 2
		for j < len(text) && text[j] == '\n' {
			j++
		}
		out = append(out, text[:j])
		text = text[j:]
	}
	return out
}

// specialTokens returns the special tokens the tokenizer's post-processor
// puts before and after a single text (Llama's <s>, BERT's [CLS] and
// [SEP]), found in the encoding of sample's first word.
func specialTokens(tok *tokenizer.Tokenizer, sample string) (prefix, suffix []int, err error) {
	word := sample
	if f := strings.Fields(sample); len(f) > 0 {
		word = f[0]
	}
	e, err := tok.Encode(word, true)
	if err != nil {
		return nil, nil, err
	}
	var ids, special []int
	for i, id := range e.IDs {
		if i < len(e.AttentionMask) && e.AttentionMask[i] == 0 {
			continue
		}
		ids = append(ids, id)
		s := 0
		if i < len(e.SpecialTokensMask) {
			s = e.SpecialTokensMask[i]
		}
		special = append(special, s)
	}
	i := 0
	for i < len(ids) && special[i] == 1 {
		i++
	}
	if i == len(ids) { // only special tokens: no way to tell before from after
		return ids, nil, nil
	}
	j := len(ids)
	for j > i && special[j-1] == 1 {
		j--
	}
	return ids[:i], ids[j:], nil
}
