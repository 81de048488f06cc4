//go:build unix

package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hubmirror/hubmirror/storage"
)

// TestLocalVersionIsInodeAware replaces a file by another of the same size
// and modification time: on Unix the inode tells them apart.
func TestLocalVersionIsInodeAware(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.NewLocal(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := storage.PutBytes(ctx, s, "k", []byte("one")); err != nil {
		t.Fatal(err)
	}
	before, err := s.Stat(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, before.ModTime, before.ModTime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, filepath.Join(dir, "k")); err != nil {
		t.Fatal(err)
	}
	after, err := s.Stat(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime.Equal(before.ModTime) || after.Size != before.Size {
		t.Fatalf("setup: size/time %d %v, want %d %v", after.Size, after.ModTime, before.Size, before.ModTime)
	}
	if after.Version == before.Version {
		t.Errorf("Version %q unchanged after the file was replaced by another inode", after.Version)
	}
}
