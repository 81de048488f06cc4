package storage_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hubmirror/hubmirror/storage"
	"github.com/hubmirror/hubmirror/storage/storetest"
)

func TestLocalConformance(t *testing.T) {
	storetest.Run(t, storetest.Config{
		New: func(t *testing.T) storage.Store {
			s, err := storage.NewLocal(filepath.Join(t.TempDir(), "store"), true)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		LargeSize: 40<<20 + 12345,
		Leftovers: func(t *testing.T, s storage.Store) []string {
			dir := filepath.Join(localDir(t, s), storage.TempDir)
			ents, err := os.ReadDir(dir)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			var out []string
			for _, e := range ents {
				out = append(out, filepath.Join(dir, e.Name()))
			}
			return out
		},
	})
}

// TestConformanceThroughDecorators runs the suite on a store as Open builds
// it: Retry and Limit must keep the contract.
func TestConformanceThroughDecorators(t *testing.T) {
	storetest.Run(t, storetest.Config{
		New: func(t *testing.T) storage.Store {
			s, err := storage.Open(context.Background(), "file://"+filepath.Join(t.TempDir(), "store"), storage.OpenOptions{Create: true, MaxConcurrent: 3})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		LargeSize: 20 << 20,
	})
}

func localDir(t *testing.T, s storage.Store) string {
	t.Helper()
	u := s.Location()
	const p = "file://"
	if len(u) < len(p) || u[:len(p)] != p {
		t.Fatalf("location %q is not a file URL", u)
	}
	return u[len(p):]
}

func TestLocalSymlinkEscape(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "store")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	s, err := storage.NewLocal(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(context.Background(), "link/secret", 0, -1); err == nil {
		t.Error("Get followed a symbolic link out of the store")
	}
	err = storage.PutBytes(context.Background(), s, "link/planted", []byte("x"))
	if err == nil {
		t.Error("Put wrote through a symbolic link out of the store")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); err == nil {
		t.Error("a file appeared outside the store")
	}
}

func TestLocalMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	if _, err := storage.NewLocal(dir, false); err == nil {
		t.Fatal("NewLocal of a missing directory without create succeeded")
	}
	s, err := storage.NewLocal(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(context.Background(), "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat in a store not yet created = %v", err)
	}
	if err := storage.PutBytes(context.Background(), s, "a/b", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "a", "b"))
	if err != nil || !bytes.Equal(got, []byte("hello")) {
		t.Errorf("file on disk: %q, %v", got, err)
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	if _, err := storage.NewLocal(file, true); err == nil {
		t.Error("NewLocal of a regular file succeeded")
	}
}
