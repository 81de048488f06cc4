package hubclient

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// DefaultStreamChunkSize is the default ParallelOptions.ChunkSize.
const DefaultStreamChunkSize = 8 << 20

// DefaultStreamConnections is the default ParallelOptions.Connections, that
// of DownloadOptions.Connections.
const DefaultStreamConnections = 8

// ParallelOptions configure OpenFileParallel. The zero value of every field
// means its default.
type ParallelOptions struct {
	// Connections is the most byte ranges of the file fetched at once
	// (default 8). 1 reads the file over one connection, as OpenFile does.
	// The reader starts with one connection and opens more only while that
	// helps (see FixedConnections).
	Connections int
	// FixedConnections opens all Connections at once instead of ramping up
	// (one, then two, then all when two received at least 1.5 times as
	// much as one over rampWindow, as with a per-connection limit; back to
	// one when the second gained less than 15%, as when the reader of the
	// stream, or the link, is what limits it).
	FixedConnections bool
	// ChunkSize is the size of the byte ranges (default 8 MiB). A file of
	// at most ChunkSize bytes is read over one connection, as OpenFile does.
	ChunkSize int64
}

func (o *ParallelOptions) setDefaults() {
	if o.Connections <= 0 {
		o.Connections = DefaultStreamConnections
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultStreamChunkSize
	}
}

// MaxMemory is the most file content one reader of OpenFileParallel holds
// in memory: Connections+1 ranges of ChunkSize bytes (one being read out
// while Connections are fetched).
func (o ParallelOptions) MaxMemory() int64 {
	o.setDefaults()
	return int64(o.Connections+1) * o.ChunkSize
}

// OpenFileParallel streams one file as OpenFile does (bytes in order,
// verified at EOF against the ETag and the size, an *IntegrityError instead
// of io.EOF on a mismatch, a SHA256() string method), but fetches ahead
// over up to opts.Connections connections: the file is split into ranges of
// opts.ChunkSize bytes, each connection fetches the next range nobody has
// taken into a buffer, and Read hands the buffers out in order, hashing as
// it goes. At most opts.MaxMemory() bytes are buffered: the fetchers wait
// while the reader is that far behind.
//
// Each range is retried on its own with the client's retry policy (the
// budget refills with every MiB the range receives), a connection that
// breaks mid-range resumes from the bytes the range already has, and an
// expired signed URL is resolved again. A server that answers a Range
// request with the whole file (200) makes the reader go on from where it
// is over one connection, as OpenFile does. A file of at most one range,
// or opts.Connections 1, is read exactly as OpenFile reads it.
//
// The first fetcher starts at once. Close stops them and waits for them to
// return; cancelling ctx ends them too, and Read then returns the error.
func (c *Client) OpenFileParallel(ctx context.Context, repoID, revision, path string, opts ParallelOptions) (io.ReadCloser, *FileMeta, error) {
	if err := ValidateRepoPath(path); err != nil {
		return nil, nil, err
	}
	opts.setDefaults()
	meta, err := c.Resolve(ctx, repoID, revision, path)
	if err != nil {
		return nil, nil, err
	}
	if opts.Connections == 1 || meta.Size <= opts.ChunkSize {
		return c.newVerifiedReader(ctx, repoID, path, meta), meta, nil
	}
	chunks := (meta.Size + opts.ChunkSize - 1) / opts.ChunkSize
	conns := int(min(int64(opts.Connections), chunks))
	fctx, cancel := context.WithCancelCause(ctx)
	sctx, scancel := context.WithCancelCause(ctx)
	r := &parallelReader{
		parent: sctx, stop: scancel, ctx: fctx, cancel: cancel,
		c: c, repoID: repoID, path: path, meta: meta,
		chunk: opts.ChunkSize, chunks: chunks, url: c.fileURL(repoID, path, meta),
		tokens: make(chan struct{}, conns+1), free: make(chan []byte, conns+1),
		slots: map[int64]*rangeSlot{},
	}
	r.s256, r.git = fileHashes(meta)
	if opts.FixedConnections || conns <= 2 {
		r.spawn(conns)
	} else {
		r.spawn(1)
		r.wg.Add(1)
		go r.ramp(conns)
	}
	return r, meta, nil
}

// errRangeIgnored: a server answered a Range request with the whole file.
var errRangeIgnored = errors.New("the server ignored a Range request")

// errReaderClosed is the cause of a reader's fetchers stopping on Close.
var errReaderClosed = fmt.Errorf("reader closed: %w", os.ErrClosed)

// parallelReader is the reader of OpenFileParallel.
type parallelReader struct {
	parent context.Context // for the single-connection reader after a 200
	stop   context.CancelCauseFunc
	ctx    context.Context // the fetchers'
	cancel context.CancelCauseFunc
	c      *Client
	repoID string
	path   string
	meta   *FileMeta
	chunk  int64
	chunks int64
	url    *signedURL
	// tokens holds one token per range taken and not yet read out: its
	// capacity (connections+1) bounds the ranges in memory.
	tokens chan struct{}
	free   chan []byte // buffers read out, for reuse
	wg     sync.WaitGroup
	// received counts the bytes fetched; pool the fetchers.
	received atomic.Int64
	pool     connPool

	mu       sync.Mutex
	next     int64 // the next range to take
	slots    map[int64]*rangeSlot
	failed   error // the first error of a fetcher
	fallback bool  // a 200 answer: go on over one connection

	// The read side. readMu serialises Read and Close.
	readMu    sync.Mutex
	pos       int64
	cur       *rangeSlot
	s256, git hash.Hash
	single    *verifiedReader
	err       error
}

// rangeSlot is one range of the file: [start, end), fetched into buf. done
// is closed once buf is complete (err nil) or the fetch failed.
type rangeSlot struct {
	start, end int64
	buf        []byte
	done       chan struct{}
	err        error
}

func (r *parallelReader) slotLocked(i int64) *rangeSlot {
	s := r.slots[i]
	if s == nil {
		start := i * r.chunk
		s = &rangeSlot{start: start, end: min(start+r.chunk, r.meta.Size), done: make(chan struct{})}
		r.slots[i] = s
	}
	return s
}

func (r *parallelReader) slot(i int64) *rangeSlot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.slotLocked(i)
}

// fail records the first error of a fetcher and stops the others.
func (r *parallelReader) fail(err error) {
	r.mu.Lock()
	if errors.Is(err, errRangeIgnored) && r.failed == nil {
		r.fallback = true
	} else if r.failed == nil && !r.fallback {
		r.failed = err
	}
	r.mu.Unlock()
	r.cancel(err)
}

// spawn starts fetchers until n run (fewer leave). Only one goroutine at a
// time calls it.
func (r *parallelReader) spawn(n int) {
	r.pool.resize(n, func() {
		r.wg.Add(1)
		go r.fetcher()
	})
}

// ramp grows the pool of fetchers from one as runChunks does (rampUp),
// measuring what they received over each window.
func (r *parallelReader) ramp(conns int) {
	defer r.wg.Done()
	measure := func() (float64, bool) {
		start, t0 := r.received.Load(), time.Now()
		timer := time.NewTimer(rampWindow)
		defer timer.Stop()
		select {
		case <-r.ctx.Done():
			return 0, false
		case <-timer.C:
		}
		r.mu.Lock()
		taken := r.next >= r.chunks
		r.mu.Unlock()
		if taken {
			return 0, false
		}
		return float64(r.received.Load()-start) / time.Since(t0).Seconds(), true
	}
	rampUp(conns, measure, r.spawn)
}

// fetcher takes the next range while the window has room, and fetches it.
func (r *parallelReader) fetcher() {
	defer r.wg.Done()
	counted := true
	defer func() {
		if counted {
			r.pool.done()
		}
	}()
	for {
		if r.pool.leave() {
			counted = false
			return
		}
		r.mu.Lock()
		taken := r.next >= r.chunks
		r.mu.Unlock()
		if taken {
			return
		}
		select {
		case r.tokens <- struct{}{}:
		case <-r.ctx.Done():
			return
		}
		r.mu.Lock()
		i := r.next
		if i >= r.chunks {
			r.mu.Unlock()
			<-r.tokens
			return
		}
		r.next++
		s := r.slotLocked(i)
		r.mu.Unlock()
		s.buf = r.buffer(s.end - s.start)
		s.err = r.fetchRange(s)
		close(s.done)
		if s.err != nil {
			r.fail(s.err)
			return
		}
	}
}

// buffer returns a buffer of n bytes, reusing one read out: there are never
// more than cap(r.tokens) of them, one per token.
func (r *parallelReader) buffer(n int64) []byte {
	select {
	case b := <-r.free:
		return b[:n]
	default:
		return make([]byte, n, r.chunk)
	}
}

// fetchRange fetches s with retries; the retry budget refills as the
// range receives bytes, and each attempt resumes where the last one broke.
func (r *parallelReader) fetchRange(s *rangeSlot) error {
	policy := r.c.newRetryPolicy()
	have := 0
	what := "GET " + redactURLString(r.url.currentLocation())
	_, err := retry(r.ctx, policy, what, func(int) (struct{}, error) {
		loc := r.url.currentLocation()
		n, err := r.fetchOnce(loc, s.start+int64(have), s.end, s.buf[have:])
		have += n
		policy.progressed(int64(n))
		if err != nil && r.url.refreshLocation(r.ctx, loc, err) == nil {
			var perm *backoff.PermanentError
			if errors.As(err, &perm) {
				err = perm.Unwrap()
			}
			return struct{}{}, &retryable{err}
		}
		return struct{}{}, err
	}, nil)
	if err != nil {
		if errors.Is(err, errRangeIgnored) || r.ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%s: bytes %d-%d: %w", r.path, s.start, s.end-1, err)
	}
	return nil
}

// fetchOnce sends one GET for [start, end) and reads the answer into buf.
// It returns the bytes read, and an error classified for retry.
func (r *parallelReader) fetchOnce(location string, start, end int64, buf []byte) (int, error) {
	h := http.Header{"Accept-Encoding": {"identity"}}
	h.Set("Range", "bytes="+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end-1, 10))
	req := &request{method: http.MethodGet, url: location, header: h, followAbsolute: true, path: r.path}
	resp, err := r.c.attempt(r.ctx, req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK:
		return 0, backoff.Permanent(errRangeIgnored)
	default:
		return 0, backoff.Permanent(fmt.Errorf("%w: unexpected status %d for a download", ErrServer, resp.StatusCode))
	}
	cs, ce, err := checkContentRange(resp.Header.Get("Content-Range"), start, end, r.meta.Size)
	if err != nil {
		return 0, err
	}
	n, err := io.ReadFull(&countingBody{r: resp.Body, n: &r.received}, buf[:ce+1-cs])
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, &retryable{fmt.Errorf("reading the answer at byte %d: %w", start+int64(n), err)}
	}
	if ce+1 < end {
		return n, &retryable{fmt.Errorf("%w: asked for bytes %d-%d, got %d-%d", ErrServer, start, end-1, cs, ce)}
	}
	return n, nil
}

// countingBody counts the bytes read through it.
type countingBody struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// wait waits until s is fetched. It returns errRangeIgnored when the
// reader must go on over one connection.
func (r *parallelReader) wait(s *rangeSlot) error {
	select {
	case <-s.done:
		if s.err == nil {
			return nil
		}
	case <-r.ctx.Done():
		select {
		case <-s.done:
			if s.err == nil {
				return nil
			}
		default:
		}
	}
	r.mu.Lock()
	failed, fallback := r.failed, r.fallback
	r.mu.Unlock()
	switch {
	case fallback && r.parent.Err() == nil:
		return errRangeIgnored
	case r.parent.Err() != nil:
		return context.Cause(r.parent)
	case failed != nil:
		return failed
	}
	return context.Cause(r.ctx)
}

// release returns a range read out: its buffer and its token.
func (r *parallelReader) release(s *rangeSlot) {
	r.mu.Lock()
	delete(r.slots, s.start/r.chunk)
	r.mu.Unlock()
	select {
	case r.free <- s.buf:
	default:
	}
	s.buf = nil
	<-r.tokens
}

// goSingle stops the fetchers and goes on from r.pos over one connection.
func (r *parallelReader) goSingle() {
	r.cancel(errRangeIgnored)
	r.wg.Wait()
	r.mu.Lock()
	r.slots = nil
	r.mu.Unlock()
	r.cur = nil
	r.single = &verifiedReader{ctx: r.parent, c: r.c, path: r.path, meta: r.meta, pos: r.pos,
		s256: r.s256, git: r.git, policy: r.c.newRetryPolicy(), loc: r.url}
}

func (r *parallelReader) Read(p []byte) (int, error) {
	r.readMu.Lock()
	defer r.readMu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	if r.single != nil {
		n, err := r.single.Read(p)
		if err != nil {
			r.err = err
		}
		return n, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.pos == r.meta.Size {
		r.err = verifyContent(r.path, r.meta, r.s256, r.git)
		r.cancel(r.err) // every range is in: stop the ramp-up early
		return 0, r.err
	}
	if r.cur == nil {
		s := r.slot(r.pos / r.chunk)
		if err := r.wait(s); err != nil {
			if errors.Is(err, errRangeIgnored) {
				r.goSingle()
				n, err := r.single.Read(p)
				if err != nil {
					r.err = err
				}
				return n, err
			}
			r.err = err
			return 0, err
		}
		r.cur = s
	}
	n := copy(p, r.cur.buf[r.pos-r.cur.start:])
	r.s256.Write(p[:n])
	if r.git != nil {
		r.git.Write(p[:n])
	}
	r.pos += int64(n)
	if r.pos == r.cur.end {
		r.release(r.cur)
		r.cur = nil
	}
	return n, nil
}

// SHA256 returns the hex sha256 of everything read so far; after io.EOF,
// that of the whole verified file.
func (r *parallelReader) SHA256() string {
	r.readMu.Lock()
	defer r.readMu.Unlock()
	return hex.EncodeToString(r.s256.Sum(nil))
}

// Close stops the fetchers and waits for them to return. It may be called
// while a Read waits: that Read then returns an error.
func (r *parallelReader) Close() error {
	r.cancel(errReaderClosed)
	r.stop(errReaderClosed)
	r.wg.Wait()
	r.readMu.Lock()
	defer r.readMu.Unlock()
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w", r.path, errReaderClosed)
	}
	if r.single != nil {
		return r.single.Close()
	}
	return nil
}
