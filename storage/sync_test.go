package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestLocalSyncs: a Put fsyncs its file and its directory; WithoutSync
// neither; WithSyncBatch the files, and each directory once, at Sync. The
// objects are there and whole in every case.
func TestLocalSyncs(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocal(filepath.Join(t.TempDir(), "store"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	counts := func() (int64, int64) { return l.fileSyncs.Load(), l.dirSyncs.Load() }
	check := func(what string, wantFiles, wantDirs int64) {
		t.Helper()
		f, d := counts()
		if f != wantFiles || d != wantDirs {
			t.Errorf("%s: %d file and %d directory fsyncs, want %d and %d", what, f, d, wantFiles, wantDirs)
		}
		l.fileSyncs.Store(0)
		l.dirSyncs.Store(0)
	}
	if err := PutBytes(ctx, l, "a/one", []byte("1")); err != nil {
		t.Fatal(err)
	}
	check("a Put", 1, 1)
	if err := PutBytes(WithoutSync(ctx), l, "leases/x/two", []byte("2")); err != nil {
		t.Fatal(err)
	}
	check("a Put WithoutSync", 0, 0)
	b := NewSyncBatch()
	bctx := WithSyncBatch(ctx, b)
	for i := range 10 {
		if err := PutBytes(bctx, l, fmt.Sprintf("blobs/%d", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := PutBytes(bctx, l, "other/x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	check("11 Puts of a batch", 11, 0)
	if n := b.Sync(); n != 2 {
		t.Errorf("the batch synced %d directories, want 2", n)
	}
	check("the batch's Sync", 0, 2)
	if n := b.Sync(); n != 0 {
		t.Errorf("a second Sync synced %d directories", n)
	}
	// A Stat in a batch that finds an object adds its directory.
	if _, err := l.Stat(bctx, "a/one"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Stat(bctx, "c/missing"); err == nil {
		t.Fatal("a missing object found")
	}
	if _, err := l.Stat(WithoutSync(bctx), "leases/x/two"); err != nil {
		t.Fatal(err)
	}
	if n := b.Sync(); n != 1 {
		t.Errorf("after Stats the batch synced %d directories, want 1", n)
	}
	check("a Stat's Sync", 0, 1)
	// WithoutSync wins over a batch.
	if err := PutBytes(WithoutSync(bctx), l, "blobs/nosync", []byte("n")); err != nil {
		t.Fatal(err)
	}
	check("a Put WithoutSync in a batch", 0, 0)
	for _, k := range []string{"a/one", "leases/x/two", "blobs/3", "other/x", "blobs/nosync"} {
		if _, err := l.Stat(ctx, k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}

// TestLocalPutRecreatesDir: a directory a Put created, removed since
// (with the temporary directory), is created again by the next Put into it.
func TestLocalPutRecreatesDir(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	l, err := NewLocal(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := PutBytes(ctx, l, "a/b/one", []byte("1")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", TempDir} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := PutBytes(ctx, l, "a/b/two", []byte("2")); err != nil {
		t.Fatalf("a Put into a removed directory: %v", err)
	}
	data, err := ReadAll(ctx, l, "a/b/two", 10)
	if err != nil || string(data) != "2" {
		t.Fatalf("a/b/two: %q, %v", data, err)
	}
}
