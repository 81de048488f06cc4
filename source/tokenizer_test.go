package source

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/tokenizer"
)

// OpenTokenizer loads the same tokenizer from every MODEL form: the model
// directory, its tokenizer.json, a weight file beside it, a mirror
// revision; the ids are the tokenizers library's
// (testdata/expected/tokenizer_ids.json).
func TestOpenTokenizer(t *testing.T) {
	ctx := context.Background()
	var doc struct {
		Cases map[string][]struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids"`
		} `json:"cases"`
	}
	b, err := os.ReadFile("../testdata/expected/tokenizer_ids.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	want := doc.Cases["llama-tiny-st"][0]

	dir := modelDir(t, "with-tokenizer")
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(fixture, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), data, 0o644)
	}
	src, err := Resolve(ctx, dir, Options{RepoID: "org/tok"})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	if _, err := Push(ctx, s, src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{dir, filepath.Join(dir, "tokenizer.json"), filepath.Join(dir, "model.safetensors"), s.Location() + "#org/tok"} {
		tok, err := OpenTokenizer(ctx, spec, Options{TempDir: t.TempDir()})
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		enc, err := tok.Encode(want.Text, true)
		if err != nil || !slices.Equal(enc.IDs, want.IDs) {
			t.Errorf("%s: ids %v (%v), want %v", spec, enc.IDs, err, want.IDs)
		}
	}

	bare := modelDir(t, "bare")
	if _, err := OpenTokenizer(ctx, bare, Options{}); !errors.Is(err, tokenizer.ErrNoTokenizer) {
		t.Errorf("a directory without tokenizer: %v", err)
	}
	if _, err := OpenTokenizer(ctx, filepath.Join(bare, "config.json"), Options{}); err == nil || !strings.Contains(err.Error(), "not a tokenizer.json") {
		t.Errorf("config.json: %v", err)
	}
}
