package hubclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
)

// TestNoSpaceFailsBeforeDownloading: when the disk cannot hold a file, the
// download fails at once with ErrNoSpace naming the file, before asking the
// CDN for a byte of it, and leaves no .incomplete file and no snapshot entry.
func TestNoSpaceFailsBeforeDownloading(t *testing.T) {
	hub := hubtest.New(t)
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 31)
	}
	hub.AddRepo("org/m").AddFile("config.json", []byte(`{"model_type": "gpt2"}`)).AddFile("big.bin", big)
	c, err := New(Options{Endpoint: hub.URL(), RetryBaseDelay: time.Millisecond, RetryMaxDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func(old func(*os.File, int64) error) { reserve = old }(reserve)
	reserve = func(f *os.File, size int64) error {
		if size == int64(len(big)) {
			return syscall.ENOSPC
		}
		return nil
	}
	cache := t.TempDir()
	_, err = c.Download(context.Background(), "org/m", "", DownloadOptions{CacheDir: cache, Workers: 1})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "big.bin") || !strings.Contains(err.Error(), "3145728 bytes") {
		t.Fatalf("err = %v, want ErrNoSpace naming big.bin and its size", err)
	}
	if n := len(hub.Downloads("big.bin")); n != 0 {
		t.Errorf("%d download requests for a file the disk cannot hold", n)
	}
	left, _ := filepath.Glob(filepath.Join(cache, "models--org--m", "blobs", "*.incomplete"))
	snap, _ := filepath.Glob(filepath.Join(cache, "models--org--m", "snapshots", "*", "big.bin"))
	if len(left) != 0 || len(snap) != 0 {
		t.Errorf("left behind: %v %v", left, snap)
	}

	// With room again, the same pull completes.
	reserve = reserveSpace
	snapshot, err := c.Download(context.Background(), "org/m", "", DownloadOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(snapshot.Dir, "big.bin"))
	if err != nil || len(got) != len(big) {
		t.Errorf("big.bin after the rerun: %d bytes, %v", len(got), err)
	}
}
