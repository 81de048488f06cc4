package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrUnavailable: the store did not answer in time (see Timeout).
var ErrUnavailable = errors.New("storage unavailable")

// errTimedOut is the cause of a call Timeout cancelled.
var errTimedOut = errors.New("timed out")

// Timeout returns a Store whose calls fail with an error wrapping
// ErrUnavailable when s does not answer within d, retries included (wrap it
// around Retry): Stat, Delete and opening a Get must return within d, and a
// List must deliver each object (or end) within d. The body of a Get is
// read at the pace of its reader, and a Put, whose time depends on its size
// and source, is not bounded. A server uses it to answer "unavailable" in
// seconds instead of waiting out every retry of a store that is down.
func Timeout(s Store, d time.Duration) Store {
	if d <= 0 {
		panic("storage: Timeout with d <= 0")
	}
	return &timed{Store: s, d: d}
}

type timed struct {
	Store
	d time.Duration
}

func (t *timed) Unwrap() Store { return t.Store }

// unavailable turns the failure of a call cancelled by its timer into an
// error wrapping ErrUnavailable.
func (t *timed) unavailable(ctx, callCtx context.Context, op, key string, err error) error {
	if err == nil || ctx.Err() != nil || !errors.Is(context.Cause(callCtx), errTimedOut) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// Cut short by the timer: the error says nothing more.
		return fmt.Errorf("storage: %s did not answer within %v (%s %s): %w", t.Location(), t.d, op, key, ErrUnavailable)
	}
	return fmt.Errorf("storage: %s did not answer within %v (%s %s): %w; last error: %v", t.Location(), t.d, op, key, ErrUnavailable, err)
}

func (t *timed) Stat(ctx context.Context, key string) (Info, error) {
	cctx, cancel := context.WithTimeoutCause(ctx, t.d, errTimedOut)
	defer cancel()
	info, err := t.Store.Stat(cctx, key)
	return info, t.unavailable(ctx, cctx, "stat", key, err)
}

func (t *timed) Delete(ctx context.Context, key string) error {
	cctx, cancel := context.WithTimeoutCause(ctx, t.d, errTimedOut)
	defer cancel()
	return t.unavailable(ctx, cctx, "delete", key, t.Store.Delete(cctx, key))
}

func (t *timed) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	cctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(t.d, func() { cancel(errTimedOut) })
	rc, err := t.Store.Get(cctx, key, offset, length)
	if !timer.Stop() && err == nil {
		// The answer came as the timer fired: the reader is unusable.
		rc.Close()
		err = cctx.Err()
	}
	if err != nil {
		err = t.unavailable(ctx, cctx, "get", key, err)
		cancel(nil)
		return nil, err
	}
	return &cancelingReader{ReadCloser: rc, cancel: func() { cancel(nil) }}, nil
}

// cancelingReader releases the context of its Get when closed.
type cancelingReader struct {
	io.ReadCloser
	cancel func()
}

func (r *cancelingReader) Close() error {
	err := r.ReadCloser.Close()
	r.cancel()
	return err
}

// WriteTo keeps the underlying reader's fast path (sendfile for files).
func (r *cancelingReader) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, r.ReadCloser)
}

func (t *timed) List(ctx context.Context, prefix string, fn func(Info) error) error {
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(t.d, func() { cancel(errTimedOut) })
	var fnErr error
	err := t.Store.List(cctx, prefix, func(i Info) error {
		if !timer.Stop() {
			return cctx.Err()
		}
		fnErr = fn(i) // the caller's time does not count
		timer.Reset(t.d)
		return fnErr
	})
	timer.Stop()
	if fnErr != nil && errors.Is(err, fnErr) {
		return err
	}
	return t.unavailable(ctx, cctx, "list", prefix, err)
}
