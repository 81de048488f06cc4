package main

import (
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tokenize on a mirror revision copies the tokenizer files, not the
// weights: the model cache ($HUBMIRROR_MODEL_CACHE) holds the tokenizer
// alone afterwards, and the ids are those of the model directory.
func TestTokenizeMirrorFetchesTokenizerOnly(t *testing.T) {
	to := filepath.Join(t.TempDir(), "mirror")
	model := filepath.Join(fixtureModels, "llama-tiny-st")
	if _, stderr, code := runCLI(t, "mirror", model, "--to", to, "--repo-id", "acme/tiny"); code != 0 {
		t.Fatalf("mirror: exit %d: %s", code, stderr)
	}
	want, stderr, code := runCLI(t, "tokenize", model, "--text", "Hello, mirror", "--json")
	if code != 0 {
		t.Fatalf("tokenize the directory: exit %d: %s", code, stderr)
	}
	cache := t.TempDir()
	t.Setenv("HUBMIRROR_MODEL_CACHE", cache)
	got, stderr, code := runCLI(t, "tokenize", "file://"+to+"#acme/tiny", "--text", "Hello, mirror", "--json")
	if code != 0 || got != want {
		t.Errorf("tokenize the mirror: exit %d, %q, want %q: %s", code, got, want, stderr)
	}
	var names []string
	filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			names = append(names, d.Name())
		}
		return nil
	})
	slices.Sort(names)
	if !slices.Equal(names, []string{"tokenizer.json", "tokenizer_config.json"}) {
		t.Errorf("tokenize copied %v from the mirror, want the tokenizer files alone", names)
	}
}
