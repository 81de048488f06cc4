package hubclient

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
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/sync/errgroup"
)

// blobTarget says where one download goes.
type blobTarget struct {
	incomplete string // partial data; its range record is incomplete + ".ranges"
	final      string // verified content, placed by rename
}

// fetchResult describes a finished download.
type fetchResult struct {
	sha256     string // hex
	downloaded int64  // bytes received from the network in this run
	resumed    int64  // bytes already on disk from an earlier run
}

// fetchParams are the knobs of one blob download.
type fetchParams struct {
	connections      int
	chunkSize        int64
	integrityRetries int
	progress         Progress
	// flushInterval is how often the range record is written; flushBytes
	// how many bytes written make it written at once (0: never).
	flushInterval time.Duration
	flushBytes    int64
	// fsync syncs data before it is recorded or renamed into place.
	fsync bool
	// fixedConnections skips the ramp-up and opens every connection at once.
	fixedConnections bool
}

// fetchBlob resolves path at commit, checks the answer against what the
// listing promised (etag, size), downloads the missing ranges into
// t.incomplete, verifies the content and renames it to t.final.
func (c *Client) fetchBlob(ctx context.Context, repoID, commit string, f RepoFile, t blobTarget, p fetchParams) (fetchResult, error) {
	meta, err := c.Resolve(ctx, repoID, commit, f.Path)
	if err != nil {
		return fetchResult{}, err
	}
	if meta.Commit != commit {
		return fetchResult{}, fmt.Errorf("%w: resolving %s@%s gave commit %s", ErrServer, repoID, commit, meta.Commit)
	}
	if meta.ETag != f.ETag() {
		return fetchResult{}, fmt.Errorf("%w: the server's ETag %s differs from the listing's %s", ErrServer, meta.ETag, f.ETag())
	}
	if meta.Size != f.Size {
		return fetchResult{}, fmt.Errorf("%w: the server's size %d differs from the listing's %d", ErrServer, meta.Size, f.Size)
	}
	reresolve := func(ctx context.Context) (string, error) {
		m, err := c.Resolve(ctx, repoID, commit, f.Path)
		if err != nil {
			return "", err
		}
		if m.ETag != meta.ETag || m.Size != meta.Size || m.Commit != commit {
			return "", fmt.Errorf("%w: the file changed on the server while downloading", ErrServer)
		}
		return m.Location, nil
	}
	for attempt := 0; ; attempt++ {
		res, err := c.fetchVerified(ctx, f.Path, meta, t, p, reresolve)
		if err != nil && errors.Is(err, ErrIntegrity) && attempt < p.integrityRetries && ctx.Err() == nil {
			p.progress.Retry(f.Path, attempt+1, 0, err)
			continue
		}
		return res, err
	}
}

// blobDownload is the state of one file being downloaded.
type blobDownload struct {
	c        *Client
	path     string
	meta     *FileMeta
	file     *os.File
	progress Progress
	p        fetchParams

	mu      sync.Mutex
	have    rangeSet // written to the file
	claimed rangeSet // written, or being written right now by one writer

	// Hashing follows the written prefix: pieces written exactly at
	// handPos are handed over in memory (inorder), in order; anything else
	// is read back from the file once the written prefix has grown past it.
	// Every byte before handPos has been handed over or will be read back.
	handPos atomic.Int64
	inorder chan hashPiece
	bufs    *pieceBuffers
	kick    chan struct{} // the written prefix may have grown
	done    chan struct{} // closed when no more data will come
	hashed  chan struct{} // closed when the hasher has returned

	received    atomic.Int64
	unflushed   atomic.Int64 // bytes written since the record was last written
	flushMu     sync.Mutex   // one record write at a time, in order
	incomplete  string       // the partial file, whose record flush writes
	hashBusy    atomic.Int64 // nanoseconds the hasher spent hashing
	fullStreams atomic.Int32 // active answers that ignored our Range

	// The download URL: a signed CDN URL can expire during a long download,
	// and is then resolved again.
	signedURL
}

// signedURL is the download URL of a file, shared by the connections that
// fetch it: a signed CDN URL can expire during a long download, and is then
// resolved again (at most maxReresolves times).
type signedURL struct {
	c          *Client
	locMu      sync.Mutex
	location   string
	reresolves int
	reresolve  func(context.Context) (string, error)
}

const maxReresolves = 3

func (d *signedURL) currentLocation() string {
	d.locMu.Lock()
	defer d.locMu.Unlock()
	return d.location
}

// refreshLocation handles a refusal (401, 403, 410) from a host other than
// the endpoint: the signed URL expired, so resolve the file again. It
// returns nil when the request should be retried with the new location.
func (d *signedURL) refreshLocation(ctx context.Context, used string, err error) error {
	var herr *HTTPError
	if !errors.As(err, &herr) || d.reresolve == nil {
		return err
	}
	switch herr.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusGone:
	default:
		return err
	}
	u, perr := url.Parse(used)
	if perr != nil || d.c.sameHost(u) {
		return err
	}
	d.locMu.Lock()
	defer d.locMu.Unlock()
	if d.location != used {
		return nil // another connection already refreshed it
	}
	if d.reresolves >= maxReresolves {
		return err
	}
	d.reresolves++
	loc, rerr := d.reresolve(ctx)
	if rerr != nil {
		return errors.Join(err, rerr)
	}
	d.location = loc
	return nil
}

// hashPiece is a buffer whose first n bytes belong at off.
type hashPiece struct {
	off int64
	n   int
	buf *pieceBuf
}

// claim reserves the parts of [off, end) that nobody has written or is
// writing, so that every byte of the file is written exactly once and the
// bytes hashed are the bytes on disk.
func (d *blobDownload) claim(off, end int64) []byteRange {
	d.mu.Lock()
	defer d.mu.Unlock()
	parts := d.claimed.missing(off, end)
	for _, p := range parts {
		d.claimed = d.claimed.add(p.Start, p.End)
	}
	return parts
}

func (d *blobDownload) markWritten(off, n int64) {
	d.mu.Lock()
	d.have = d.have.add(off, off+n)
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	// Every flushBytes, record what is written at once (besides every
	// flushInterval): a kill then loses at most that much of a fast
	// download.
	if fb := d.p.flushBytes; fb > 0 && d.unflushed.Add(n) >= fb {
		_ = d.flush()
	}
	d.progress.FileAdvance(d.path, n)
}

func (d *blobDownload) prefix() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.have.prefix()
}

func (d *blobDownload) snapshot() rangeSet {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append(rangeSet(nil), d.have...)
}

func (d *blobDownload) stop() { close(d.done) }

// flush records the written ranges so that a later run resumes from them.
// With fsync, the data is synced first; without, a crash of the machine
// (not of the process) may leave the record ahead of the data on disk, which
// the hash check at the end of the resumed download catches.
func (d *blobDownload) flush() error {
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	d.unflushed.Store(0)
	have := d.snapshot()
	if d.p.fsync {
		if err := d.file.Sync(); err != nil {
			return err
		}
	}
	return saveRecord(d.incomplete, d.meta.ETag, d.meta.Size, have)
}

// reserve reserves the disk space of a download (reserveSpace; tests
// replace it).
var reserve = reserveSpace

// fetchVerified downloads into t.incomplete (resuming from its record),
// hashes, and places the verified file at t.final.
func (c *Client) fetchVerified(ctx context.Context, path string, meta *FileMeta, t blobTarget, p fetchParams,
	reresolve func(context.Context) (string, error)) (fetchResult, error) {
	file, have, err := openIncomplete(t.incomplete, meta.ETag, meta.Size)
	if err != nil {
		return fetchResult{}, err
	}
	if err := reserve(file, meta.Size); err != nil {
		if have == nil {
			file.Close()
			os.Remove(t.incomplete) // nothing of it was ours to keep
		} else {
			// Kept for a later run: give back what the failed
			// reservation may have allocated.
			_ = releaseSpace(file, have, meta.Size)
			file.Close()
		}
		return fetchResult{}, fmt.Errorf("%w for %s: %d bytes in %s: %v", ErrNoSpace, plainServer(path), meta.Size, filepath.Dir(t.incomplete), err)
	}
	bufs := newPieceBuffers(meta.Size, max(1, p.connections)+hashQueue)
	d := &blobDownload{c: c, path: path, meta: meta, file: file, progress: p.progress, p: p, incomplete: t.incomplete,
		have: have, claimed: append(rangeSet(nil), have...),
		// Room for every buffer: handing a piece over never waits.
		inorder: make(chan hashPiece, bufs.max), bufs: bufs,
		kick: make(chan struct{}, 1), done: make(chan struct{}), hashed: make(chan struct{}),
		signedURL: signedURL{c: c, location: meta.Location, reresolve: reresolve}}
	res := fetchResult{resumed: have.total()}
	p.progress.FileStart(path, meta.Size, res.resumed)

	// Hash what is written, in order, while the rest downloads.
	type hashOut struct {
		sha256, gitSHA1 string
		err             error
	}
	hashed := make(chan hashOut, 1)
	go func() {
		s, g, err := d.hashInOrder()
		close(d.hashed)
		hashed <- hashOut{s, g, err}
	}()
	// Make progress durable now and then, so that a killed run resumes.
	flushDone := make(chan struct{})
	flushStop := make(chan struct{})
	go func() {
		defer close(flushDone)
		tick := time.NewTicker(p.flushInterval)
		defer tick.Stop()
		for {
			select {
			case <-flushStop:
				return
			case <-tick.C:
				_ = d.flush()
			}
		}
	}()

	dlErr := d.run(ctx)
	close(flushStop)
	<-flushDone
	res.downloaded = d.received.Load()
	if dlErr != nil {
		d.stop()
		<-hashed
		ferr := d.flush()
		// The file stays for a later run to resume; the space reserved
		// for what it does not hold yet goes back to the file system.
		_ = releaseSpace(file, d.snapshot(), meta.Size)
		file.Close()
		if ferr != nil {
			return res, errors.Join(dlErr, fmt.Errorf("saving the resume record: %w", ferr))
		}
		return res, dlErr
	}
	d.stop()
	h := <-hashed
	if h.err != nil {
		_ = releaseSpace(file, d.snapshot(), meta.Size)
		file.Close()
		return res, h.err
	}
	res.sha256 = h.sha256
	var ierr *IntegrityError
	switch {
	case sha256Re.MatchString(meta.ETag) && h.sha256 != meta.ETag:
		ierr = &IntegrityError{Path: path, Algorithm: "sha256", Expected: meta.ETag, Actual: h.sha256}
	case commitRe.MatchString(meta.ETag) && h.gitSHA1 != meta.ETag:
		ierr = &IntegrityError{Path: path, Algorithm: "git-sha1", Expected: meta.ETag, Actual: h.gitSHA1}
	}
	if ierr != nil {
		file.Close()
		os.Remove(t.incomplete)
		os.Remove(recordPath(t.incomplete))
		return res, ierr
	}
	if p.fsync {
		if err := file.Sync(); err != nil {
			file.Close()
			return res, err
		}
	}
	if err := file.Close(); err != nil {
		return res, err
	}
	if err := os.Rename(t.incomplete, t.final); err != nil {
		return res, err
	}
	os.Remove(recordPath(t.incomplete))
	return res, nil
}

// openIncomplete opens the partial file of a download and returns the
// ranges its record vouches for. Data without a usable record is dropped by
// replacing the file with an empty one, never by truncating it: ext4 takes
// a file truncated to zero and written again for a rewrite in place and
// pushes all of it to disk when it is closed (auto_da_alloc), which would
// add the write-back of the whole file to the download's time.
func openIncomplete(path, etag string, size int64) (*os.File, rangeSet, error) {
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, nil, err
	}
	have := loadRecord(path, etag, size)
	if have != nil {
		return file, have, nil
	}
	os.Remove(recordPath(path))
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, nil, err
	}
	if st.Size() == 0 {
		return file, nil, nil
	}
	file.Close()
	if err := os.Remove(path); err != nil {
		return nil, nil, err
	}
	file, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, nil, err
	}
	return file, nil, nil
}

// hashInOrder hashes the file from offset 0 as the contiguous written
// prefix grows, and returns the hex sha256 and git blob sha1 once the whole
// file is hashed.
func (d *blobDownload) hashInOrder() (sha256Hex, gitSHA1Hex string, err error) {
	size := d.meta.Size
	s256 := sha256.New()
	var git hash.Hash
	w := io.Writer(s256)
	if !sha256Re.MatchString(d.meta.ETag) {
		git = sha1.New()
		fmt.Fprintf(git, "blob %d\x00", size)
		w = io.MultiWriter(s256, git)
	}
	var readBuf []byte
	var pos int64
	consume := func(p hashPiece) {
		if p.off == pos {
			t0 := time.Now()
			w.Write(p.buf.b[:p.n])
			d.hashBusy.Add(int64(time.Since(t0)))
			pos += int64(p.n)
		}
		d.bufs.release(p.buf)
	}
	stopped := false
	for pos < size {
		// Pieces handed over come first: they were queued before they were
		// recorded as written.
		select {
		case p := <-d.inorder:
			consume(p)
			continue
		default:
		}
		// Then read back what was written out of order.
		if end := d.prefix(); end > pos {
			if readBuf == nil {
				readBuf = make([]byte, 1<<20)
			}
			for pos < end {
				n := int(min(int64(len(readBuf)), end-pos))
				if _, err := d.file.ReadAt(readBuf[:n], pos); err != nil {
					return "", "", fmt.Errorf("reading back %s: %w", d.path, err)
				}
				t0 := time.Now()
				w.Write(readBuf[:n])
				d.hashBusy.Add(int64(time.Since(t0)))
				pos += int64(n)
			}
			for {
				h := d.handPos.Load()
				if h >= pos || d.handPos.CompareAndSwap(h, pos) {
					break
				}
			}
			continue
		}
		if stopped {
			return "", "", errStopped
		}
		select {
		case p := <-d.inorder:
			consume(p)
		case <-d.kick:
		case <-d.done:
			stopped = true // one more look at the prefix, then give up
		}
	}
	sha256Hex = hex.EncodeToString(s256.Sum(nil))
	if git != nil {
		gitSHA1Hex = hex.EncodeToString(git.Sum(nil))
	}
	return sha256Hex, gitSHA1Hex, nil
}

var errStopped = errors.New("download stopped")

// run fetches every missing range. Each pass splits what is missing into
// chunks and fetches them over up to p.connections connections; a pass
// that adds nothing ends the download with an error.
func (d *blobDownload) run(ctx context.Context) error {
	size := d.meta.Size
	for pass := 0; ; pass++ {
		have := d.snapshot()
		missing := have.missing(0, size)
		if len(missing) == 0 {
			return nil
		}
		before := have.total()
		var chunks []byteRange
		for _, m := range missing {
			if d.p.connections <= 1 {
				chunks = append(chunks, m)
				continue
			}
			for s := m.Start; s < m.End; s += d.p.chunkSize {
				chunks = append(chunks, byteRange{s, min(s+d.p.chunkSize, m.End)})
			}
		}
		if err := d.runChunks(ctx, chunks); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if d.snapshot().total() == before {
			return fmt.Errorf("%w: no progress downloading %s", ErrServer, d.path)
		}
	}
}

// rampWindow is how long each step of the connection ramp-up is measured.
const rampWindow = 200 * time.Millisecond

// runChunks fetches chunks, in order, over a pool of connections. Unless
// p.fixedConnections, the pool ramps up: one connection first, then two,
// then all of p.connections when two were at least 1.5 times faster than
// one (a per-connection limit, as on most CDNs and long links), or back to
// one when the second gained less than 15% (a link, CPU or disk that one
// connection already saturates). It stops at the current size when the
// hasher was busy for half of a window or more: then hashing (sha256 runs
// at 1-2 GB/s on one core) is about to limit the download, and more
// connections would only take CPU time from it (as on loopback).
func (d *blobDownload) runChunks(ctx context.Context, chunks []byteRange) error {
	queue := make(chan byteRange, len(chunks))
	for _, ch := range chunks {
		queue <- ch
	}
	close(queue)
	conns := max(1, min(d.p.connections, len(chunks)))
	var pool connPool
	g, gctx := errgroup.WithContext(ctx)
	worker := func() error {
		for !pool.leave() {
			ch, ok := <-queue
			if !ok {
				pool.done()
				return nil
			}
			if err := d.fetchRange(gctx, ch); err != nil {
				pool.done()
				return err
			}
		}
		return nil
	}
	resize := func(n int) { pool.resize(n, func() { g.Go(worker) }) }
	if d.p.fixedConnections || conns <= 2 {
		resize(conns)
		return g.Wait()
	}
	resize(1)
	g.Go(func() error {
		// measure returns the bytes per second received over one window,
		// and false when the queue ran dry, the download stopped or the
		// hasher was busy for half of the window.
		measure := func() (float64, bool) {
			start, busy, t0 := d.received.Load(), d.hashBusy.Load(), time.Now()
			tick := time.NewTicker(rampWindow / 6)
			defer tick.Stop()
			for time.Since(t0) < rampWindow {
				select {
				case <-gctx.Done():
					return 0, false
				case <-tick.C:
				}
				if len(queue) == 0 {
					return 0, false
				}
			}
			elapsed := time.Since(t0)
			if time.Duration(d.hashBusy.Load()-busy) >= elapsed/2 {
				return 0, false
			}
			return float64(d.received.Load()-start) / elapsed.Seconds(), true
		}
		rampUp(conns, measure, resize)
		return nil
	})
	return g.Wait()
}

// fetchRange downloads [r.Start, r.End) with retries; the retry budget is
// refilled whenever an attempt delivered bytes.
func (d *blobDownload) fetchRange(ctx context.Context, r byteRange) error {
	policy := d.c.newRetryPolicy()
	what := "GET " + redactURLString(d.currentLocation())
	_, err := retry(ctx, policy, what, func(int) (struct{}, error) {
		if d.fullStreams.Load() > 0 {
			return struct{}{}, nil // another answer is streaming the whole file
		}
		miss := d.snapshot().missing(r.Start, r.End)
		if len(miss) == 0 {
			return struct{}{}, nil
		}
		start := miss[0].Start
		loc := d.currentLocation()
		err := d.fetchOnce(ctx, loc, start, r.End)
		// Progress on this range, whoever wrote it (other connections
		// only write it after a 200 answer to a Range request).
		policy.progressed(rangeSet(miss).total() - rangeSet(d.snapshot().missing(r.Start, r.End)).total())
		if err != nil && d.refreshLocation(ctx, loc, err) == nil {
			var perm *backoff.PermanentError
			if errors.As(err, &perm) {
				err = perm.Unwrap()
			}
			return struct{}{}, &retryable{err}
		}
		return struct{}{}, err
	}, func(attempt int, err error, wait time.Duration) { d.progress.Retry(d.path, attempt, wait, err) })
	if err != nil {
		return fmt.Errorf("bytes %d-%d: %w", r.Start, r.End-1, err)
	}
	return nil
}

var contentRangeRe = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+|\*)$`)

// checkContentRange checks the Content-Range of a 206 answer to a request
// for [start, end) of a file of size bytes, and returns the first and last
// byte it holds, which start at start and may end before end. Its errors
// are classified for retry.
func checkContentRange(contentRange string, start, end, size int64) (first, last int64, err error) {
	m := contentRangeRe.FindStringSubmatch(contentRange)
	if m == nil {
		return 0, 0, &retryable{fmt.Errorf("%w: 206 answer without a valid Content-Range", ErrServer)}
	}
	first, _ = strconv.ParseInt(m[1], 10, 64)
	last, _ = strconv.ParseInt(m[2], 10, 64)
	if m[3] != "*" {
		if total, _ := strconv.ParseInt(m[3], 10, 64); total != size {
			return 0, 0, backoff.Permanent(fmt.Errorf("%w: Content-Range says the file has %s bytes, expected %d", ErrServer, plainServer(m[3]), size))
		}
	}
	if first != start || last < first || last >= end {
		return 0, 0, &retryable{fmt.Errorf("%w: asked for bytes %d-%d, got %d-%d", ErrServer, start, end-1, first, last)}
	}
	return first, last, nil
}

// fetchOnce sends one GET for [start, end) and writes what arrives. Its
// errors are classified for retry.
func (d *blobDownload) fetchOnce(ctx context.Context, location string, start, end int64) error {
	size := d.meta.Size
	h := http.Header{"Accept-Encoding": {"identity"}}
	ranged := start != 0 || end != size
	if ranged {
		h.Set("Range", fmt.Sprintf("bytes=%d-%d", start, end-1))
	}
	r := &request{method: http.MethodGet, url: location, header: h, followAbsolute: true, path: d.path}
	resp, err := d.c.attempt(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		cs, ce, err := checkContentRange(resp.Header.Get("Content-Range"), start, end, size)
		if err != nil {
			return err
		}
		return d.copyBody(resp.Body, cs, ce+1)
	case http.StatusOK:
		if cl := resp.ContentLength; cl >= 0 && cl != size {
			return &retryable{fmt.Errorf("%w: the answer has %d bytes, expected %d", ErrServer, cl, size)}
		}
		// The server ignored the Range (or none was sent): the body is the
		// whole file. Use all of it.
		d.fullStreams.Add(1)
		defer d.fullStreams.Add(-1)
		return d.copyBody(resp.Body, 0, size)
	default:
		return backoff.Permanent(fmt.Errorf("%w: unexpected status %d for a download", ErrServer, resp.StatusCode))
	}
}

// pieceSize is the size of the buffers a download reads into and writes
// from. Large pieces mean few system calls and hand-offs to the hasher;
// pieces aligned to pieceSize keep page-cache writes on their fast path.
const pieceSize = 1 << 20

// hashQueue is how many pieces (beyond one per connection) a download may
// have in memory: pieces waiting for the hasher. When the hasher falls this
// far behind, the connections wait for it.
const hashQueue = 4

// maxPieceWait bounds how long a piece fills before it is written, so that
// slow connections still write (and record) their bytes often.
const maxPieceWait = 100 * time.Millisecond

// pieceBuffers is the bounded set of read buffers of one download,
// allocated as needed and reused: at most max buffers of size bytes.
type pieceBuffers struct {
	size      int
	max       int
	allocated atomic.Int32
	free      chan *pieceBuf
}

// pieceBuf is a read buffer. While a piece is written and hashed at the
// same time, both hold a reference; the last release returns it.
type pieceBuf struct {
	b    []byte
	refs atomic.Int32
}

func newPieceBuffers(fileSize int64, maxBuffers int) *pieceBuffers {
	size := int(max(1, min(fileSize, pieceSize)))
	return &pieceBuffers{size: size, max: maxBuffers, free: make(chan *pieceBuf, maxBuffers)}
}

func (b *pieceBuffers) alloc() *pieceBuf {
	pb := &pieceBuf{b: make([]byte, b.size)}
	pb.refs.Store(1)
	return pb
}

// get returns a free buffer holding one reference, allocating one while
// fewer than max exist, else waiting until one is released. Once gone is
// closed (the hasher has returned: buffers it held are not coming back),
// it allocates instead of waiting.
func (b *pieceBuffers) get(gone <-chan struct{}) *pieceBuf {
	select {
	case pb := <-b.free:
		pb.refs.Store(1)
		return pb
	default:
	}
	if b.allocated.Add(1) <= int32(b.max) {
		return b.alloc()
	}
	b.allocated.Add(-1)
	select {
	case pb := <-b.free:
		pb.refs.Store(1)
		return pb
	case <-gone:
		return b.alloc()
	}
}

// release drops one reference; the last one returns the buffer for reuse.
func (b *pieceBuffers) release(pb *pieceBuf) {
	if pb.refs.Add(-1) != 0 {
		return
	}
	select {
	case b.free <- pb:
	default: // one allocated after the hasher returned
	}
}

// readPiece reads into buf until it is full, the body ends or fails, or
// maxPieceWait has passed since the first read returned.
func readPiece(body io.Reader, buf []byte) (int, error) {
	n, err := body.Read(buf)
	var began time.Time
	for n < len(buf) && err == nil {
		if began.IsZero() {
			began = time.Now()
		} else if time.Since(began) >= maxPieceWait {
			break
		}
		var k int
		k, err = body.Read(buf[n:])
		n += k
	}
	return n, err
}

// copyBody writes body at [off, end) of the file, recording each write.
// Bytes that another writer already wrote (or is writing) are skipped.
// A piece at the hasher's position is handed to it before it is written,
// so that hashing and writing run at once on the same bytes; the piece
// counts as written (markWritten, which the hasher's read-back of the
// file goes by) only once the write has succeeded, and a failed write
// fails the download.
func (d *blobDownload) copyBody(body io.Reader, off, end int64) error {
	pb := d.bufs.get(d.hashed)
	defer func() { d.bufs.release(pb) }()
	for off < end {
		// The first piece ends at a multiple of pieceSize, the next ones
		// are whole pieces.
		want := min(int64(len(pb.b)), end-off, pieceSize-off%pieceSize)
		buf := pb.b[:want]
		n, err := readPiece(body, buf)
		if n > 0 {
			d.received.Add(int64(n))
			parts := d.claim(off, off+int64(n))
			handed := false
			if len(parts) == 1 && parts[0] == (byteRange{off, off + int64(n)}) && d.handPos.Load() == off {
				select {
				case <-d.hashed:
				case <-d.done:
				default:
					// Never blocks: the channel has room for every buffer.
					pb.refs.Add(1)
					d.inorder <- hashPiece{off: off, n: n, buf: pb}
					d.handPos.Store(off + int64(n))
					handed = true
				}
			}
			for _, p := range parts {
				if _, werr := d.file.WriteAt(buf[p.Start-off:p.End-off], p.Start); werr != nil {
					return backoff.Permanent(fmt.Errorf("writing %s: %w", d.file.Name(), werr))
				}
			}
			for _, p := range parts {
				d.markWritten(p.Start, p.End-p.Start)
			}
			if handed {
				d.bufs.release(pb)
				pb = d.bufs.get(d.hashed)
			}
			off += int64(n)
		}
		if err != nil {
			if off >= end {
				break
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return &retryable{fmt.Errorf("reading the answer at byte %d: %w", off, err)}
		}
	}
	return nil
}
