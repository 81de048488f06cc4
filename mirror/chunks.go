package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/hubmirror/hubmirror/storage"
)

// ChunkSize is the chunk size of the chunk-hash sidecars Push writes (see
// ChunksKey): a blob larger than one chunk gets a sidecar listing the sha256
// of each ChunkSize bytes of it. It must lie between MinChunkSize and
// MaxChunkSize; a blob that would need more than MaxChunks chunks uses the
// smallest power-of-two multiple of ChunkSize that fits. Readers take the
// chunk size from the sidecar, so changing it does not invalidate sidecars
// already written. Tests lower it; it is read, never written, by Push.
var ChunkSize int64 = 8 << 20

// Limits on chunk-hash sidecars, which are read from storage and therefore
// untrusted.
const (
	// MinChunkSize and MaxChunkSize bound a sidecar's chunk size; the upper
	// bound is also what one request of Server buffers at most.
	MinChunkSize = 1 << 10
	MaxChunkSize = 64 << 20
	// MaxChunks bounds the number of chunks of a sidecar (4 MiB of hashes).
	MaxChunks = 1 << 17
)

// Sidecar format, version 1, all integers big-endian:
//
//	magic      8 bytes  "HMCHUNKS"
//	version    4 bytes  1
//	chunk size 4 bytes  MinChunkSize..MaxChunkSize
//	blob size  8 bytes  the blob's size, > chunk size
//	blob hash 32 bytes  the blob's sha256
//	chunks    32 bytes each, n = ceil(blob size / chunk size): the sha256 of each chunk
//	trailer   32 bytes  the sha256 of everything before it
const (
	chunksMagic   = "HMCHUNKS"
	chunksVersion = 1
	chunksHeader  = 8 + 4 + 4 + 8 + 32
)

// ErrBadChunks: a chunk-hash sidecar is malformed or describes another blob.
// Server then falls back to verifying the whole blob.
var ErrBadChunks = errors.New("malformed chunk-hash sidecar")

// chunkIndex is a parsed sidecar: the sha256 of each chunk of one blob.
type chunkIndex struct {
	chunkSize int64
	size      int64
	sums      [][32]byte
}

// span returns the offset and length of chunk i.
func (c *chunkIndex) span(i int64) (int64, int64) {
	start := i * c.chunkSize
	return start, min(c.chunkSize, c.size-start)
}

// memSize is roughly what the index holds in memory.
func (c *chunkIndex) memSize() int64 { return int64(len(c.sums))*32 + 64 }

// chunkCount returns the number of chunks of size bytes; chunkSize > 0.
func chunkCount(size, chunkSize int64) int64 { return (size + chunkSize - 1) / chunkSize }

// sidecarChunkSize returns the chunk size Push uses for a blob of size
// bytes, or 0 when the blob gets no sidecar (it fits in one chunk, or would
// need more than MaxChunks even of MaxChunkSize bytes).
func sidecarChunkSize(size int64) int64 {
	cs := min(max(ChunkSize, MinChunkSize), MaxChunkSize)
	for chunkCount(size, cs) > MaxChunks && cs < MaxChunkSize {
		cs = min(cs*2, MaxChunkSize)
	}
	if size <= cs || chunkCount(size, cs) > MaxChunks {
		return 0
	}
	return cs
}

// maxChunksFileSize bounds the sidecar of a blob of size bytes, whatever its
// chunk size.
func maxChunksFileSize(size int64) int64 {
	n := min(chunkCount(size, MinChunkSize), MaxChunks)
	return chunksHeader + 32*n + 32
}

// encodeChunks returns the sidecar of a blob of size bytes with the given
// sha256 (hex, validated) and chunk hashes.
func encodeChunks(sha string, size, chunkSize int64, sums [][32]byte) []byte {
	out := make([]byte, 0, chunksHeader+32*len(sums)+32)
	out = append(out, chunksMagic...)
	out = binary.BigEndian.AppendUint32(out, chunksVersion)
	out = binary.BigEndian.AppendUint32(out, uint32(chunkSize))
	out = binary.BigEndian.AppendUint64(out, uint64(size))
	d, _ := hex.DecodeString(sha)
	out = append(out, d...)
	for _, s := range sums {
		out = append(out, s[:]...)
	}
	trailer := sha256.Sum256(out)
	return append(out, trailer[:]...)
}

// parseChunks parses the sidecar of e's blob strictly: every field must be
// in range, the blob's size and sha256 must be e's, the length must be
// exactly what the chunk count implies and the trailer must match. Errors
// wrap ErrBadChunks.
func parseChunks(data []byte, e Entry) (*chunkIndex, error) {
	bad := func(why string, args ...any) error {
		return fmt.Errorf("mirror: chunk sidecar of blob %s: %s: %w", e.SHA256, fmt.Sprintf(why, args...), ErrBadChunks)
	}
	if len(data) < chunksHeader+32 {
		return nil, bad("%d bytes, shorter than a header", len(data))
	}
	if string(data[:8]) != chunksMagic {
		return nil, bad("no magic")
	}
	if v := binary.BigEndian.Uint32(data[8:12]); v != chunksVersion {
		return nil, bad("version %d, this build reads %d", v, chunksVersion)
	}
	cs := int64(binary.BigEndian.Uint32(data[12:16]))
	if cs < MinChunkSize || cs > MaxChunkSize {
		return nil, bad("chunk size %d out of range", cs)
	}
	size := binary.BigEndian.Uint64(data[16:24])
	if size != uint64(e.Size) || e.Size <= cs {
		return nil, bad("blob size %d, the manifest says %d (chunk size %d)", size, e.Size, cs)
	}
	if hex.EncodeToString(data[24:56]) != e.SHA256 {
		return nil, bad("describes blob %x", data[24:56])
	}
	n := chunkCount(e.Size, cs)
	if n > MaxChunks {
		return nil, bad("%d chunks, more than %d", n, MaxChunks)
	}
	if int64(len(data)) != chunksHeader+32*n+32 {
		return nil, bad("%d bytes, %d chunks need %d", len(data), n, chunksHeader+32*n+32)
	}
	body := data[:len(data)-32]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], data[len(body):]) {
		return nil, bad("trailer does not match")
	}
	idx := &chunkIndex{chunkSize: cs, size: e.Size, sums: make([][32]byte, n)}
	for i := range idx.sums {
		copy(idx.sums[i][:], body[chunksHeader+32*i:])
	}
	return idx, nil
}

// readChunks reads and parses the sidecar of e's blob. A missing sidecar is
// storage.ErrNotFound; a malformed one ErrBadChunks.
func readChunks(ctx context.Context, s storage.Store, e Entry) (*chunkIndex, error) {
	data, err := storage.ReadAll(ctx, s, ChunksKey(e.SHA256), maxChunksFileSize(e.Size))
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("mirror: chunk sidecar of blob %s: %v: %w", e.SHA256, err, ErrBadChunks)
	}
	return parseChunks(data, e)
}

// chunkHasher hashes what is written to it in chunks of a fixed size.
type chunkHasher struct {
	chunkSize int64
	h         hash.Hash
	n         int64 // bytes of the current chunk
	total     int64
	sums      [][32]byte
}

func newChunkHasher(chunkSize int64) *chunkHasher {
	return &chunkHasher{chunkSize: chunkSize, h: sha256.New()}
}

func (c *chunkHasher) Write(p []byte) (int, error) {
	c.total += int64(len(p))
	written := len(p)
	for len(p) > 0 {
		take := min(int64(len(p)), c.chunkSize-c.n)
		c.h.Write(p[:take])
		c.n += take
		p = p[take:]
		if c.n == c.chunkSize {
			c.sums = append(c.sums, [32]byte(c.h.Sum(nil)))
			c.h.Reset()
			c.n = 0
		}
	}
	return written, nil
}

func (c *chunkHasher) reset() {
	c.h.Reset()
	c.n, c.total, c.sums = 0, 0, nil
}

// result returns the chunk hashes of exactly size bytes, or false when the
// stream was not exactly those bytes in order.
func (c *chunkHasher) result(size int64) ([][32]byte, bool) {
	if c.total != size {
		return nil, false
	}
	sums := c.sums
	if c.n > 0 {
		sums = append(sums, [32]byte(c.h.Sum(nil)))
	}
	if int64(len(sums)) != chunkCount(size, c.chunkSize) {
		return nil, false
	}
	return sums, true
}

// chunkTee feeds what is read through it to a chunkHasher.
type chunkTee struct {
	r io.Reader
	h *chunkHasher
}

func (t *chunkTee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.h.Write(p[:n])
	}
	return n, err
}

// writeChunks stores the sidecar of e's blob unless an identical one is
// there already.
func writeChunks(ctx context.Context, s storage.Store, e Entry, chunkSize int64, sums [][32]byte) error {
	data := encodeChunks(e.SHA256, e.Size, chunkSize, sums)
	key := ChunksKey(e.SHA256)
	old, err := storage.ReadAll(ctx, s, key, int64(len(data)))
	if err == nil && bytes.Equal(old, data) {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := storage.PutBytes(ctx, s, key, data); err != nil {
		return fmt.Errorf("mirror: writing the chunk sidecar of %s: %w", e.Path, err)
	}
	return nil
}
