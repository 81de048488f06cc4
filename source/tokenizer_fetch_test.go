package source

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/storage"
)

// countingStore counts the bytes read from a store.
type countingStore struct {
	storage.Store
	read *atomic.Int64
}

func (c countingStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := c.Store.Get(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	return countingReader{rc, c.read}, nil
}

func (c countingStore) Close() error { return nil } // the test closes the store

type countingReader struct {
	io.ReadCloser
	read *atomic.Int64
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.read.Add(int64(n))
	return n, err
}

// tokenizerModelDir is a model directory with weights and a tokenizer.
func tokenizerModelDir(t *testing.T) string {
	dir := modelDir(t, "with-tokenizer")
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(fixture, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestOpenTokenizerMirrorSkipsWeights: the tokenizer of a mirror revision
// is read without copying the weights, into a temporary directory or the
// model cache, and the same ids come out.
func TestOpenTokenizerMirrorSkipsWeights(t *testing.T) {
	ctx := context.Background()
	dir := tokenizerModelDir(t)
	want := mustTokenize(t, dir)
	src, err := Resolve(ctx, dir, Options{RepoID: "org/tok"})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	if _, err := Push(ctx, s, src, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	weights, err := os.Stat(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var read atomic.Int64
	open := func(context.Context, string) (storage.Store, error) { return countingStore{s, &read}, nil }
	modelCache := t.TempDir()
	for _, opts := range []Options{{TempDir: t.TempDir(), Open: open}, {ModelCache: modelCache, Open: open}} {
		read.Store(0)
		tok, err := OpenTokenizer(ctx, s.Location()+"#org/tok", opts)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := tok.Encode("Hello, tokenizer world", true)
		if err != nil || !slices.Equal(enc.IDs, want) {
			t.Errorf("ids %v (%v), want %v", enc.IDs, err, want)
		}
		if n := read.Load(); n >= weights.Size() {
			t.Errorf("model cache %q: %d bytes read from the mirror, the weights alone are %d", opts.ModelCache, n, weights.Size())
		}
	}
	var names []string
	filepath.WalkDir(modelCache, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, filepath.Base(p))
		}
		return nil
	})
	slices.Sort(names)
	if !slices.Equal(names, []string{"tokenizer.json", "tokenizer_config.json"}) {
		t.Errorf("model cache holds %v, want the tokenizer files alone", names)
	}
}

// TestOpenTokenizerHubSkipsWeights: a repo id fetched from the Hub
// downloads the tokenizer files, not the weights.
func TestOpenTokenizerHubSkipsWeights(t *testing.T) {
	ctx := context.Background()
	dir := tokenizerModelDir(t)
	want := mustTokenize(t, dir)
	hub := hubtest.New(t)
	r := hub.AddRepo("org/tok")
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		r.AddFile(f, data)
	}
	c, err := hubclient.New(hubclient.Options{Endpoint: hub.URL(), RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := OpenTokenizer(ctx, "org/tok", Options{Hub: c, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tok.Encode("Hello, tokenizer world", true)
	if err != nil || !slices.Equal(enc.IDs, want) {
		t.Errorf("ids %v (%v), want %v", enc.IDs, err, want)
	}
	if n := len(hub.Downloads("model.safetensors")); n > 0 {
		t.Errorf("the weights were downloaded (%d requests, %d bytes)", n, hub.BytesSent("model.safetensors"))
	}
	if hub.BytesSent("tokenizer.json") == 0 {
		t.Error("tokenizer.json was not downloaded")
	}
}

// mustTokenize is the ids of a fixed text with the tokenizer of dir.
func mustTokenize(t *testing.T, dir string) []int {
	t.Helper()
	tok, err := LoadTokenizer(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tok.Encode("Hello, tokenizer world", true)
	if err != nil || len(enc.IDs) < 3 {
		t.Fatalf("%v %v", enc, err)
	}
	return enc.IDs
}
