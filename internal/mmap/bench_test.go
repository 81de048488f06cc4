//go:build unix

package mmap

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// touchSink keeps the page reads of touch from being optimized away.
var touchSink byte

// touch reads one byte of every 4 KiB page of b.
func touch(b []byte) {
	var s byte
	for i := 0; i < len(b); i += 4096 {
		s += b[i]
	}
	touchSink += s
}

// BenchmarkTouch measures what handing pages back costs: touching every page
// of a 64 MiB mapped file while its pages are mapped ("mapped"), after
// Release ("after-release": the pages come back from the page cache), and
// the first touch of anonymous memory new to the process ("anon-fresh", as a
// large allocation gets). Bytes are the mapping's. On the development VM,
// the last is ~30µs per page: memory that the process takes anew is
// expensive there, which shows in any benchmark that allocates large
// buffers per operation.
func BenchmarkTouch(b *testing.B) {
	const size = 64 << 20
	p := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		b.Fatal(err)
	}
	m, err := Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.Run("mapped", func(b *testing.B) {
		touch(m.Bytes())
		b.SetBytes(size)
		for b.Loop() {
			touch(m.Bytes())
		}
	})
	b.Run("after-release", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			m.Release()
			touch(m.Bytes())
		}
	})
	b.Run("anon-fresh", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			a, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < len(a); i += 4096 {
				a[i] = 1
			}
			unix.Munmap(a)
		}
	})
}
