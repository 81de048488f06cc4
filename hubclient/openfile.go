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
	return c.newVerifiedReader(ctx, repoID, path, meta), meta, nil
}

// newVerifiedReader returns a reader of the file meta describes, from its
// first byte, over one connection.
func (c *Client) newVerifiedReader(ctx context.Context, repoID, path string, meta *FileMeta) *verifiedReader {
	s256, git := fileHashes(meta)
	return &verifiedReader{ctx: ctx, c: c, path: path, meta: meta, s256: s256, git: git, policy: c.newRetryPolicy(),
		loc: c.fileURL(repoID, path, meta)}
}

// fileHashes returns the hashes a file's content is verified with: sha256
// always, and the git blob sha1 (its header already written) when the ETag
// is not a sha256 (a regular file).
func fileHashes(meta *FileMeta) (s256, git hash.Hash) {
	s256 = sha256.New()
	if !sha256Re.MatchString(meta.ETag) {
		git = sha1.New()
		fmt.Fprintf(git, "blob %d\x00", meta.Size)
	}
	return s256, git
}

// fileURL is the download URL of a resolved file, resolved again (at the
// same commit) when a signed CDN URL expires; the file must not change.
func (c *Client) fileURL(repoID, path string, meta *FileMeta) *signedURL {
	rev := meta.Commit
	return &signedURL{c: c, location: meta.Location, reresolve: func(ctx context.Context) (string, error) {
		if rev == "" {
			return "", fmt.Errorf("%w: the download URL of %s expired and the server named no commit to resolve it again", ErrServer, path)
		}
		m, err := c.Resolve(ctx, repoID, rev, path)
		if err != nil {
			return "", err
		}
		if m.ETag != meta.ETag || m.Size != meta.Size {
			return "", fmt.Errorf("%w: %s changed on the server while downloading", ErrServer, path)
		}
		return m.Location, nil
	}}
}

// verifyContent checks the hashes of a whole file against its ETag. It
// returns io.EOF when they match, else an *IntegrityError.
func verifyContent(path string, meta *FileMeta, s256, git hash.Hash) error {
	if git != nil {
		if got := hex.EncodeToString(git.Sum(nil)); got != meta.ETag {
			return &IntegrityError{Path: path, Algorithm: "git-sha1", Expected: meta.ETag, Actual: got}
		}
		return io.EOF
	}
	if got := hex.EncodeToString(s256.Sum(nil)); got != meta.ETag {
		return &IntegrityError{Path: path, Algorithm: "sha256", Expected: meta.ETag, Actual: got}
	}
	return io.EOF
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
	loc    *signedURL
	err    error
}

// open (re)starts the body at r.pos, resolving the file again when its
// signed URL has expired.
func (r *verifiedReader) open() error {
	loc := r.loc.currentLocation()
	err := r.openAt(loc)
	if err != nil && r.loc.refreshLocation(r.ctx, loc, err) == nil {
		var perm *backoff.PermanentError
		if errors.As(err, &perm) {
			err = perm.Unwrap()
		}
		return &retryable{err}
	}
	return err
}

// openAt (re)starts the body at r.pos from location.
func (r *verifiedReader) openAt(location string) error {
	h := http.Header{"Accept-Encoding": {"identity"}}
	if r.pos > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(r.pos, 10)+"-")
	}
	req := &request{method: http.MethodGet, url: location, header: h, followAbsolute: true, path: r.path}
	resp, err := r.c.attempt(r.ctx, req)
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && r.pos > 0:
		want := "bytes " + strconv.FormatInt(r.pos, 10) + "-"
		if cr := resp.Header.Get("Content-Range"); len(cr) < len(want) || cr[:len(want)] != want {
			resp.Body.Close()
			return &retryable{fmt.Errorf("%w: resumed at the wrong offset (%s)", ErrServer, quoteServer(cr))}
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
			what := "GET " + redactURLString(r.loc.currentLocation())
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

func (r *verifiedReader) verify() error { return verifyContent(r.path, r.meta, r.s256, r.git) }

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
