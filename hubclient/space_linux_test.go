package hubclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFallocateKeepSize: the blocks are allocated, the size stays where the
// data ends (huggingface_hub resumes an .incomplete file from its size).
func TestFallocateKeepSize(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "x.incomplete"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
	if err := fallocateKeepSize(f, size); errors.Is(err, unix.EOPNOTSUPP) {
		t.Skipf("this file system cannot preallocate: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 3 {
		t.Errorf("size %d after preallocating, want 3", st.Size())
	}
	if blocks := st.Sys().(*syscall.Stat_t).Blocks * 512; blocks < size {
		t.Errorf("%d bytes allocated, want at least %d", blocks, size)
	}
	if err := reserveSpace(f, size); err != nil {
		t.Errorf("reserving space already reserved: %v", err)
	}
}

// TestFailedPullReleasesReservedSpace: when a pull fails for lack of space
// (here: the second file's reservation), the file already downloading is
// kept for a later run, but the space reserved for the part it does not
// hold yet is given back.
func TestFailedPullReleasesReservedSpace(t *testing.T) {
	probe, err := os.Create(filepath.Join(t.TempDir(), "probe"))
	if err != nil {
		t.Fatal(err)
	}
	err = fallocateKeepSize(probe, 1<<20)
	probe.Close()
	if err != nil {
		t.Skipf("this file system cannot preallocate: %v", err)
	}
	hub := hubtest.New(t)
	const bigSize = 16 << 20
	big := make([]byte, bigSize)
	for i := range big {
		big[i] = byte(i * 7)
	}
	other := make([]byte, 3<<20)
	hub.AddRepo("org/m").AddFile("big.bin", big).AddFile("other.bin", other)
	hub.SetBandwidth(1 << 20) // big.bin is still downloading when other.bin fails
	c, err := New(Options{Endpoint: hub.URL(), RetryBaseDelay: time.Millisecond, RetryMaxDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	sum := sha256.Sum256(big)
	partial := filepath.Join(cache, "models--org--m", "blobs", hex.EncodeToString(sum[:])+".incomplete")
	defer func(old func(*os.File, int64) error) { reserve = old }(reserve)
	reserved := make(chan struct{})
	reserve = func(f *os.File, size int64) error {
		if size == bigSize {
			err := reserveSpace(f, size)
			close(reserved)
			return err
		}
		// Fail once big.bin has some data.
		<-reserved
		for range 500 {
			if st, err := os.Stat(partial); err == nil && st.Size() > 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return syscall.ENOSPC
	}
	_, err = c.Download(context.Background(), "org/m", "", DownloadOptions{CacheDir: cache, Workers: 2})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("err = %v, want ErrNoSpace", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(partial, &st); err != nil {
		t.Fatalf("big.bin's partial file: %v", err)
	}
	if _, err := os.Stat(recordPath(partial)); err != nil || st.Size == 0 {
		t.Fatalf("big.bin's partial file has %d bytes and its record %v; want both kept", st.Size, err)
	}
	// What was written stays (up to a block on either side of each range);
	// the rest of the 16 MiB reserved is released.
	if allocated := st.Blocks * 512; allocated > st.Size+1<<20 {
		t.Errorf("%d bytes still allocated to a partial file of %d bytes (of %d reserved)", allocated, st.Size, bigSize)
	}
}
