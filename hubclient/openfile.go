package hubclient

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// OpenFile streams one file of repoID at revision without writing it to
// disk. It resolves the file, then reads it over one connection; a
// connection that breaks is resumed with a Range request (with the client's
// retry policy). The content is hashed as it is read and checked at EOF
// against the ETag (sha256 for LFS files, git blob sha1 otherwise) and the
// size: on a mismatch, the Read that reaches EOF returns an
// *IntegrityError instead of io.EOF, so a consumer that stores the stream
// must not publish it before reading io.EOF. The reader also has a
// SHA256() string method (the hex sha256 of what was read), for manifests.
func (c *Client) OpenFile(ctx context.Context, repoID, revision, path string) (io.ReadCloser, *FileMeta, error) {
	if err := ValidateRepoPath(path); err != nil {
		return nil, nil, err
	}
	meta, err := c.Resolve(ctx, repoID, revision, path)
	if err != nil {
		return nil, nil, err
	}
	r := &verifiedReader{ctx: ctx, c: c, path: path, meta: meta, s256: sha256.New(), policy: c.newRetryPolicy()}
	if !sha256Re.MatchString(meta.ETag) {
		r.git = sha1.New()
		fmt.Fprintf(r.git, "blob %d\x00", meta.Size)
	}
	return r, meta, nil
}

type verifiedReader struct {
	ctx    context.Context
	c      *Client
	path   string
	meta   *FileMeta
	body   io.ReadCloser
	pos    int64
	s256   hash.Hash
	git    hash.Hash
	policy *retryPolicy
	err    error
}

// open (re)starts the body at r.pos.
func (r *verifiedReader) open() error {
	h := http.Header{"Accept-Encoding": {"identity"}}
	if r.pos > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(r.pos, 10)+"-")
	}
	req := &request{method: http.MethodGet, url: r.meta.Location, header: h, followAbsolute: true, path: r.path}
	resp, err := r.c.attempt(r.ctx, req)
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && r.pos > 0:
		want := "bytes " + strconv.FormatInt(r.pos, 10) + "-"
		if cr := resp.Header.Get("Content-Range"); len(cr) < len(want) || cr[:len(want)] != want {
			resp.Body.Close()
			return &retryable{fmt.Errorf("%w: resumed at the wrong offset (%q)", ErrServer, cr)}
		}
	case resp.StatusCode == http.StatusOK:
		if r.pos > 0 {
			// The server ignored the Range: skip what we already have.
			if _, err := io.CopyN(io.Discard, resp.Body, r.pos); err != nil {
				resp.Body.Close()
				return &retryable{err}
			}
		}
	default:
		resp.Body.Close()
		return backoff.Permanent(fmt.Errorf("%w: unexpected status %d for a download", ErrServer, resp.StatusCode))
	}
	r.body = resp.Body
	return nil
}

func (r *verifiedReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if r.body == nil {
			what := "GET " + redactURLString(r.meta.Location)
			if _, err := retry(r.ctx, r.policy, what, func(int) (struct{}, error) { return struct{}{}, r.open() }, nil); err != nil {
				r.err = fmt.Errorf("%s: %w", r.path, err)
				return 0, r.err
			}
		}
		if rem := r.meta.Size - r.pos; int64(len(p)) > rem+1 {
			p = p[:rem+1] // one extra byte detects a body longer than announced
		}
		n, err := r.body.Read(p)
		if n > 0 {
			r.s256.Write(p[:n])
			if r.git != nil {
				r.git.Write(p[:n])
			}
			r.pos += int64(n)
			r.policy.progressed(int64(n))
			if r.pos > r.meta.Size {
				r.err = &IntegrityError{Path: r.path, Algorithm: "size", Expected: strconv.FormatInt(r.meta.Size, 10), Actual: "more"}
				return 0, r.err
			}
			if err == io.EOF && r.pos == r.meta.Size {
				return n, nil // verify on the next call
			}
			return n, nil
		}
		if err == io.EOF || (err == nil && r.pos == r.meta.Size) {
			if r.pos == r.meta.Size {
				r.err = r.verify()
				return 0, r.err
			}
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			continue
		}
		// A broken connection: resume after a backoff delay.
		r.body.Close()
		r.body = nil
		if r.ctx.Err() != nil {
			r.err = context.Cause(r.ctx)
			return 0, r.err
		}
		wait := r.policy.NextBackOff()
		if wait < 0 {
			r.err = fmt.Errorf("%s: %w: connection kept breaking at byte %d: %v", r.path, ErrServer, r.pos, err)
			return 0, r.err
		}
		select {
		case <-time.After(wait):
		case <-r.ctx.Done():
			r.err = context.Cause(r.ctx)
			return 0, r.err
		}
	}
}

func (r *verifiedReader) verify() error {
	if r.git != nil {
		if got := hex.EncodeToString(r.git.Sum(nil)); got != r.meta.ETag {
			return &IntegrityError{Path: r.path, Algorithm: "git-sha1", Expected: r.meta.ETag, Actual: got}
		}
		return io.EOF
	}
	if got := hex.EncodeToString(r.s256.Sum(nil)); got != r.meta.ETag {
		return &IntegrityError{Path: r.path, Algorithm: "sha256", Expected: r.meta.ETag, Actual: got}
	}
	return io.EOF
}

// SHA256 returns the hex sha256 of everything read so far; after io.EOF,
// that of the whole verified file.
func (r *verifiedReader) SHA256() string { return hex.EncodeToString(r.s256.Sum(nil)) }

func (r *verifiedReader) Close() error {
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}
