package mmap

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	want := bytes.Repeat([]byte("hubmirror"), 1000)
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Bytes(), want) || m.Size() != int64(len(want)) {
		t.Fatalf("mapped contents differ")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.Bytes() != nil {
		t.Fatal("Bytes after Close should be nil")
	}
	if err := m.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestOpenEmptyAndDir(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "empty")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(p)
	if err != nil || len(m.Bytes()) != 0 {
		t.Fatalf("empty file: %v, %d bytes", err, len(m.Bytes()))
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("mapping a directory should fail")
	}
	if _, err := Open(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestReleaseKeepsContents(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	want := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 100000)
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_ = bytes.Count(m.Bytes(), []byte{9}) // touch every page
	m.Release()
	if !bytes.Equal(m.Bytes(), want) {
		t.Fatal("contents changed after Release")
	}
}
