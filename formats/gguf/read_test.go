package gguf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ReadFile maps the file: tensor data are views of the mapping (the same
// bytes as the file's, at the offsets the header gives), valid after
// Release, until Close; Close twice is harmless. A truncated file is an
// error naming it, and a missing one an error.
func TestReadFileMaps(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.gguf")
	data := make([]byte, 4*64)
	for i := range data {
		data[i] = byte(i * 7)
	}
	q := &Tensor{Name: "q", Dims: []uint64{64}, Type: TypeF32, Data: mem(data)}
	if err := WriteFile(p, []KV{{"general.architecture", "llama"}}, []*Tensor{q}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	rt, ok := f.Tensor("q")
	if !ok || !bytes.Equal(rt.Data, data) || !bytes.Equal(raw[f.DataOffset+rt.Offset:][:len(data)], data) {
		t.Fatalf("tensor data %v", rt)
	}
	if f.mapped == nil {
		t.Fatal("ReadFile did not map the file")
	}
	if m := f.mapped.Bytes(); &m[f.DataOffset+rt.Offset] != &rt.Data[0] {
		t.Error("tensor data are not a view of the mapping")
	}
	f.Release()
	if !bytes.Equal(rt.Data, data) {
		t.Error("data changed after Release")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.gguf")
	if err := os.WriteFile(cut, raw[:len(raw)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(cut); !errors.Is(err, ErrRead) || !strings.Contains(err.Error(), "cut.gguf") {
		t.Errorf("truncated: %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "none.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	var parsed File
	if err := parsed.Close(); err != nil {
		t.Error(err)
	}
}
