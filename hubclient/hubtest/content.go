package hubtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
)

// Content is the data of a file the hub serves.
type Content interface {
	io.ReaderAt
	Size() int64
}

type byteContent []byte

func (b byteContent) Size() int64 { return int64(len(b)) }
func (b byteContent) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(b).ReadAt(p, off)
}

// Bytes is in-memory content.
func Bytes(b []byte) Content { return byteContent(b) }

// pseudoRandom repeats a block of seeded random bytes whose length is not a
// power of two, so no range of a large file looks like another at the same
// alignment, and serving costs a memory copy.
type pseudoRandom struct {
	block []byte
	size  int64
}

// PseudoRandom is size bytes of deterministic pseudo-random content that
// takes about 1 MiB of memory whatever its size.
func PseudoRandom(seed uint64, size int64) Content {
	const blockLen = 1<<20 + 4093
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	block := make([]byte, blockLen)
	for i := 0; i+8 <= len(block); i += 8 {
		binary.LittleEndian.PutUint64(block[i:], rng.Uint64())
	}
	return &pseudoRandom{block: block, size: size}
}

func (c *pseudoRandom) Size() int64 { return c.size }

func (c *pseudoRandom) ReadAt(p []byte, off int64) (int, error) {
	if off >= c.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < c.size {
		i := int(off % int64(len(c.block)))
		k := copy(p[n:], c.block[i:])
		if rem := c.size - off; int64(k) > rem {
			k = int(rem)
		}
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// hashes computes the sha256 and the git blob sha1 of c.
func hashes(c Content) (sha256Hex, gitSHA1Hex string) {
	s := sha256.New()
	g := sha1.New()
	fmt.Fprintf(g, "blob %d\x00", c.Size())
	w := io.MultiWriter(s, g)
	_, _ = io.Copy(w, io.NewSectionReader(c, 0, c.Size()))
	return hex.EncodeToString(s.Sum(nil)), hex.EncodeToString(g.Sum(nil))
}

// lfsPointer is the text git stores in place of an LFS file.
func lfsPointer(sha256Hex string, size int64) []byte {
	return fmt.Appendf(nil, "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", sha256Hex, size)
}

// gitBlobSHA1 is the git object id of data stored as a blob.
func gitBlobSHA1(data []byte) string {
	g := sha1.New()
	fmt.Fprintf(g, "blob %d\x00", len(data))
	g.Write(data)
	return hex.EncodeToString(g.Sum(nil))
}
