package hubclient

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
	"time"
)

// TestPieceBuffersBounded: a download never holds more than max buffers
// while the hasher runs; a buffer returns only after its last release; once
// the hasher is gone, get allocates instead of waiting.
func TestPieceBuffersBounded(t *testing.T) {
	b := newPieceBuffers(10<<20, 3)
	if b.size != pieceSize {
		t.Fatalf("buffer size %d, want %d", b.size, pieceSize)
	}
	if small := newPieceBuffers(100, 3); small.size != 100 {
		t.Errorf("buffer size %d for a 100-byte file, want 100", small.size)
	}
	hasher := make(chan struct{})
	held := []*pieceBuf{b.get(hasher), b.get(hasher), b.get(hasher)}
	if held[0] == held[1] || held[1] == held[2] || held[0] == held[2] {
		t.Fatal("get returned the same buffer twice")
	}
	got := make(chan *pieceBuf)
	go func() { got <- b.get(hasher) }()
	select {
	case <-got:
		t.Fatal("a fourth buffer was handed out while three are held")
	case <-time.After(50 * time.Millisecond):
	}

	// Held by a writer and the hasher: free only after both let go.
	held[0].refs.Add(1)
	b.release(held[0])
	select {
	case <-got:
		t.Fatal("a buffer still held by the hasher was reused")
	case <-time.After(50 * time.Millisecond):
	}
	b.release(held[0])
	select {
	case pb := <-got:
		if pb != held[0] {
			t.Error("the waiting get did not receive the released buffer")
		}
		if n := pb.refs.Load(); n != 1 {
			t.Errorf("reused buffer has %d references, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("get still waits after a buffer was released")
	}
	if n := b.allocated.Load(); n != 3 {
		t.Errorf("%d buffers allocated, want 3", n)
	}

	close(hasher)
	done := make(chan *pieceBuf)
	go func() { done <- b.get(hasher) }()
	select {
	case pb := <-done:
		if len(pb.b) != pieceSize {
			t.Errorf("buffer of %d bytes", len(pb.b))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("get waits for buffers the departed hasher will never release")
	}
}

// trickle returns one byte per read, every delay.
type trickle struct{ delay time.Duration }

func (r trickle) Read(p []byte) (int, error) {
	time.Sleep(r.delay)
	p[0] = 'x'
	return 1, nil
}

func TestReadPiece(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)

	// Short reads are gathered into one full piece.
	buf := make([]byte, 4096)
	n, err := readPiece(iotest.HalfReader(bytes.NewReader(data)), buf)
	if n != len(buf) || err != nil || !bytes.Equal(buf, data[:len(buf)]) {
		t.Errorf("half reader: n=%d err=%v, want a full %d-byte piece", n, err, len(buf))
	}

	// The end of the body ends the piece, with what was read.
	n, err = readPiece(bytes.NewReader(data[:100]), make([]byte, 4096))
	if n != 100 || (err != nil && err != io.EOF) {
		t.Errorf("short body: n=%d err=%v, want 100 bytes", n, err)
	}

	// A failing body returns the bytes before the failure, and the error.
	broken := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(data[:300]), iotest.ErrReader(broken))
	n, err = readPiece(r, make([]byte, 4096))
	if n != 300 || !errors.Is(err, broken) {
		t.Errorf("failing body: n=%d err=%v, want 300 bytes and the error", n, err)
	}

	// A slow body hands over what it has after maxPieceWait.
	start := time.Now()
	n, err = readPiece(trickle{delay: 20 * time.Millisecond}, make([]byte, 1<<20))
	if elapsed := time.Since(start); err != nil || n == 0 || elapsed > maxPieceWait+time.Second {
		t.Errorf("trickle: n=%d err=%v after %v, want some bytes after about %v", n, err, elapsed, maxPieceWait)
	}
}

// TestOpenIncomplete: partial data is kept only with a record that vouches
// for it; otherwise the file is replaced by a new empty one (not truncated
// in place, which makes ext4 flush the rewritten file on close).
func TestOpenIncomplete(t *testing.T) {
	const etag = "0000000000000000000000000000000000000000000000000000000000000000"
	dir := t.TempDir()
	path := filepath.Join(dir, "blob.incomplete")
	stale := bytes.Repeat([]byte{7}, 5000)

	// No record: the stale bytes go, in a new file.
	if err := os.WriteFile(path, stale, 0o644); err != nil {
		t.Fatal(err)
	}
	// Held open, the old file keeps its inode: truncating it in place
	// would show through this handle.
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	f, have, err := openIncomplete(path, etag, 10000)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if have != nil || st.Size() != 0 {
		t.Errorf("without a record: ranges %v, size %d; want none and an empty file", have, st.Size())
	}
	if ost, err := old.Stat(); err != nil || ost.Size() != int64(len(stale)) || os.SameFile(ost, st) {
		t.Errorf("the stale file was truncated in place instead of replaced (%v)", err)
	}
	f.Close()

	// A matching record keeps the data it names.
	if err := os.WriteFile(path, stale, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := saveRecord(path, etag, 10000, rangeSet{{0, 4096}}); err != nil {
		t.Fatal(err)
	}
	f, have, err = openIncomplete(path, etag, 10000)
	if err != nil {
		t.Fatal(err)
	}
	st, _ = f.Stat()
	if len(have) != 1 || have[0] != (byteRange{0, 4096}) || st.Size() != int64(len(stale)) {
		t.Errorf("with a record: ranges %v, size %d; want [0,4096) and the data kept", have, st.Size())
	}
	f.Close()

	// A record for other content counts as none, and is removed.
	f, have, err = openIncomplete(path, "1"+etag[1:], 10000)
	if err != nil {
		t.Fatal(err)
	}
	st, _ = f.Stat()
	if have != nil || st.Size() != 0 {
		t.Errorf("record for another ETag: ranges %v, size %d; want none and an empty file", have, st.Size())
	}
	f.Close()
	if _, err := os.Stat(recordPath(path)); !os.IsNotExist(err) {
		t.Errorf("the unusable record is still there: %v", err)
	}
}
