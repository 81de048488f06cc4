package mirror

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"sync"

	"github.com/hubmirror/hubmirror/storage"
)

// Serving a file while it streams in from the upstream (pull-through).
//
// A pull started by an Upstream tees the download of a file a client waits
// for (or of any file of at least streamFrom bytes, so that a client that
// comes later can join) into a fileStream: a temporary file (unlinked at
// once where the system allows, so a crash leaves nothing behind) that
// grows as the bytes go on to the store. The clients of that file read it
// while it grows, from the first byte or their range's first byte, each
// with one buffer of streamBufSize: memory does not grow with the file.
//
// Verification: the file's hash is known before the download starts (the
// sha256 of an LFS file, the git blob id of a regular one, from the
// upstream's listing). The tee hashes the bytes as they pass and, after
// the last one, compares. Every response from a stream withholds its last
// byte until the whole file has matched: when it does not, the store has
// refused the blob (storage verifies the same bytes on their way in), and
// every response under way is aborted (the connection is closed before the
// declared Content-Length is complete), so no client can take a corrupt
// file, or a corrupt range, as whole. A range is served from the stream as
// its bytes arrive (they arrive in order); one that lies beyond what has
// arrived waits for it, and its last byte too waits for the whole file to
// match. A stream that fails before a response sent any byte (the download
// broke, the tee could not write its temporary file) sends nothing: the
// request waits for the next attempt's stream or for the stored blob.

// streamFrom is the size from which a file is teed for clients even when
// none waits for it when its download starts.
const streamFrom = 8 << 20

// streamBufSize is the buffer each client of a stream reads through.
const streamBufSize = 256 << 10

var streamBuffers = sync.Pool{New: func() any { b := make([]byte, streamBufSize); return &b }}

// errStreamStopped: the download of a stream stopped before its last byte.
var errStreamStopped = errors.New("the upstream download stopped before the end of the file")

type streamState int

const (
	streaming streamState = iota
	streamVerified
	streamFailed
)

// fileStream is one download of a file from the upstream, teed into a
// temporary file its clients read as it grows.
type fileStream struct {
	e   Entry
	tmp *os.File
	// unlinked: tmp's name was removed at once.
	unlinked bool

	mu    sync.Mutex
	n     int64 // bytes in tmp
	state streamState
	err   error         // why it failed
	grew  chan struct{} // closed (and replaced) when n or state changes
	refs  int
}

// newFileStream makes the stream of e's download in a temporary file in
// dir ("" for the system's).
func newFileStream(dir string, e Entry) (*fileStream, error) {
	tmp, err := os.CreateTemp(dir, "hubmirror-stream-*")
	if err != nil {
		return nil, err
	}
	st := &fileStream{e: e, tmp: tmp, grew: make(chan struct{}), refs: 1}
	st.unlinked = os.Remove(tmp.Name()) == nil
	return st, nil
}

// acquire takes a reference; release drops one, and the last one removes
// the temporary file.
func (st *fileStream) acquire() {
	st.mu.Lock()
	st.refs++
	st.mu.Unlock()
}

func (st *fileStream) release() {
	st.mu.Lock()
	st.refs--
	last := st.refs == 0
	st.mu.Unlock()
	if last {
		st.tmp.Close()
		if !st.unlinked {
			os.Remove(st.tmp.Name())
		}
	}
}

func (st *fileStream) failed() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.state == streamFailed
}

// changedLocked wakes the clients.
func (st *fileStream) changedLocked() {
	close(st.grew)
	st.grew = make(chan struct{})
}

// fail ends a stream under way with err (a stream verified stays so).
func (st *fileStream) fail(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.state != streaming {
		return
	}
	st.state, st.err = streamFailed, err
	st.changedLocked()
}

// verifiable reports whether a stream of e can be verified as it goes: its
// hash is known before the download.
func verifiable(e Entry) bool {
	if e.LFS {
		return storage.ValidateSHA256(e.SHA256) == nil
	}
	return len(e.GitOID) == 40
}

// streamTee passes a download through to the store's upload and writes it
// into a stream on the way.
type streamTee struct {
	rc   io.ReadCloser
	st   *fileStream
	s256 hash.Hash // nil when the sha256 is not known
	git  hash.Hash // nil for an LFS file
	off  int64
	done bool // the stream failed or is complete: nothing more to write
}

func newStreamTee(rc io.ReadCloser, st *fileStream) *streamTee {
	t := &streamTee{rc: rc, st: st}
	e := st.e
	if e.SHA256 != "" {
		t.s256 = sha256.New()
	}
	if !e.LFS {
		t.git = sha1.New()
		t.git.Write(GitBlobHeader(e.Size))
	}
	return t
}

func (t *streamTee) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if n > 0 && !t.done {
		t.write(p[:n])
	}
	if err != nil && err != io.EOF && !t.done {
		t.done = true
		t.st.fail(fmt.Errorf("reading from the upstream: %w", err))
	}
	return n, err
}

// write appends b to the stream, and judges the stream after its last byte.
func (t *streamTee) write(b []byte) {
	st := t.st
	if t.off+int64(len(b)) > st.e.Size {
		t.done = true
		st.fail(fmt.Errorf("the upstream sent more than the %d bytes of %s: %w", st.e.Size, st.e.Path, storage.ErrHashMismatch))
		return
	}
	if _, err := st.tmp.WriteAt(b, t.off); err != nil {
		// The upload goes on; only the clients of the stream lose it.
		t.done = true
		st.fail(fmt.Errorf("writing the stream's temporary file: %w", err))
		return
	}
	for _, h := range []hash.Hash{t.s256, t.git} {
		if h != nil {
			h.Write(b)
		}
	}
	t.off += int64(len(b))
	var err error
	if t.off == st.e.Size {
		t.done = true
		err = t.check()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.state != streaming {
		return
	}
	st.n = t.off
	switch {
	case err != nil:
		st.state, st.err = streamFailed, err
	case t.done:
		st.state = streamVerified
	}
	st.changedLocked()
}

// check compares the hashes of the whole file with those its entry
// declares.
func (t *streamTee) check() error {
	e := t.st.e
	if t.s256 != nil {
		if got := hex.EncodeToString(t.s256.Sum(nil)); got != e.SHA256 {
			return fmt.Errorf("%s from the upstream has sha256 %s, its listing says %s: %w", e.Path, got, e.SHA256, storage.ErrHashMismatch)
		}
	}
	if t.git != nil {
		if got := hex.EncodeToString(t.git.Sum(nil)); got != e.GitOID {
			return fmt.Errorf("%s from the upstream has git blob id %s, its listing says %s: %w", e.Path, got, e.GitOID, storage.ErrHashMismatch)
		}
	}
	return nil
}

func (t *streamTee) Close() error {
	if !t.done {
		t.done = true
		t.st.fail(errStreamStopped)
	}
	t.st.release()
	return t.rc.Close()
}

// tee is PullOptions.tee for a pull of f: it streams e's download when a
// client waits for e, or e is large, and the download can be verified as
// it goes; one stream per download attempt that may still succeed.
func (f *pullFlight) tee(e Entry, rc io.ReadCloser) io.ReadCloser {
	if !verifiable(e) || e.Size == 0 {
		return rc
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.stored[e.Path]; ok {
		return rc
	}
	old := f.streams[e.Path]
	if old != nil && !old.failed() {
		// A retry after a stream that is complete and verified (the
		// store failed): its clients have what they need.
		return rc
	}
	if e.Size < streamFrom && f.wanted[e.Path] == 0 {
		return rc
	}
	st, err := newFileStream(f.tempDir, e)
	if err != nil {
		return rc // served once stored
	}
	if old != nil {
		old.release()
	}
	st.refs++ // the flight's and the tee's
	f.streams[e.Path] = st
	f.signalLocked()
	return newStreamTee(rc, st)
}

// serveStream serves a GET or HEAD of the file of st, under way from the
// upstream, as its bytes arrive (see the comment at the top of this file).
// It returns false, having written nothing, when the stream failed before
// any byte was sent: the caller waits for what comes next.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, commit string, st *fileStream) bool {
	e := st.e
	offset, length, status, ok := s.entryHeaders(w, r, commit, e)
	if !ok {
		return true // a HEAD, 304 or 416 answer, written
	}
	ctx := r.Context()
	bp := streamBuffers.Get().(*[]byte)
	defer streamBuffers.Put(bp)
	buf := *bp
	end := offset + length
	pos := offset
	sent := false
	for pos < end {
		st.mu.Lock()
		avail, state, serr, grew := st.n, st.state, st.err, st.grew
		st.mu.Unlock()
		if state == streamFailed {
			if !sent {
				return false
			}
			if ctx.Err() == nil {
				logError(w, fmt.Errorf("refused to complete the response: %w", serr))
			}
			panic(http.ErrAbortHandler)
		}
		can := min(avail, end)
		if state != streamVerified {
			can = min(can, end-1) // the last byte waits for the whole file to match
		}
		if can <= pos {
			select {
			case <-grew:
				continue
			case <-ctx.Done():
				panic(http.ErrAbortHandler)
			}
		}
		n := int(min(int64(len(buf)), can-pos))
		k, err := st.tmp.ReadAt(buf[:n], pos)
		if k < n {
			if !sent {
				s.fail(w, r, fmt.Errorf("mirror: reading the stream of %s: %w", e.Path, err))
				return true
			}
			logError(w, fmt.Errorf("reading the stream of %s: %w", e.Path, err))
			panic(http.ErrAbortHandler)
		}
		if !sent {
			w.WriteHeader(status)
			sent = true
		}
		if _, err := w.Write(buf[:n]); err != nil {
			panic(http.ErrAbortHandler) // the client went away
		}
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		pos += int64(n)
	}
	return true
}

// waitStream is the part of resolveEarly that waits for file in pf and
// serves it: from the store once its blob is there, else from its stream.
// ok is false when pf ended without the file (err says why, nil when the
// commit has no such file or the mirror held the commit already).
func (s *Server) waitStream(ctx context.Context, w http.ResponseWriter, r *http.Request, pf *pullFlight, commit, file string) (ok bool, err error) {
	for {
		e, st, found, err := pf.waitFile(ctx, file)
		if err != nil || !found {
			return false, err
		}
		if st == nil {
			s.serveEntry(w, r, commit, e)
			return true, nil
		}
		served := func() bool {
			defer st.release()
			return s.serveStream(w, r, commit, st)
		}()
		if served {
			return true, nil
		}
	}
}
