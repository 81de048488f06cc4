package hubclient

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

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
