package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// transientError marks an error that may go away on a retry (a 5xx answer, a
// dropped connection). Backends wrap such errors with it.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// IsTransient reports whether err is marked as one that a retry may cure.
func IsTransient(err error) bool {
	var t *transientError
	return errors.As(err, &t)
}

// Limit returns a Store that runs at most n operations of s at once; a
// reader returned by Get holds its slot until it is closed, so n also bounds
// open connections. Waiting for a slot stops when ctx is cancelled.
func Limit(s Store, n int) Store {
	if n <= 0 {
		panic("storage: Limit with n <= 0")
	}
	return &limited{Store: s, sem: make(chan struct{}, n)}
}

type limited struct {
	Store
	sem chan struct{}
}

func (l *limited) acquire(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("storage: waiting for a connection slot: %w", ctx.Err())
	}
}

func (l *limited) release() { <-l.sem }

func (l *limited) Put(ctx context.Context, key string, src Source, size int64, sum string) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return l.Store.Put(ctx, key, src, size, sum)
}

func (l *limited) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	rc, err := l.Store.Get(ctx, key, offset, length)
	if err != nil {
		l.release()
		return nil, err
	}
	return &releasingReader{ReadCloser: rc, release: l.release}, nil
}

type releasingReader struct {
	io.ReadCloser
	release func()
	done    bool
}

func (r *releasingReader) Close() error {
	err := r.ReadCloser.Close()
	if !r.done {
		r.done = true
		r.release()
	}
	return err
}

// WriteTo keeps the underlying reader's fast path (sendfile for files).
func (r *releasingReader) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, r.ReadCloser)
}

func (l *limited) Stat(ctx context.Context, key string) (Info, error) {
	if err := l.acquire(ctx); err != nil {
		return Info{}, err
	}
	defer l.release()
	return l.Store.Stat(ctx, key)
}

func (l *limited) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return l.Store.List(ctx, prefix, fn)
}

func (l *limited) Delete(ctx context.Context, key string) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return l.Store.Delete(ctx, key)
}

// Retry returns a Store that retries operations of s that fail with a
// transient error (IsTransient), up to attempts tries in all, with
// exponential backoff. A Put opens its Source again for each retry (a
// source that cannot be read again ends the retries with the error of the
// first attempt); a Get is retried when opening
// the object fails, not in the middle of reading it. A List is retried only
// when it failed before fn was called, so fn never sees an object twice.
func Retry(s Store, attempts int) Store {
	if attempts <= 0 {
		panic("storage: Retry with attempts <= 0")
	}
	return &retrying{Store: s, attempts: uint(attempts)}
}

type retrying struct {
	Store
	attempts uint
}

func retryOp[T any](ctx context.Context, r *retrying, op func() (T, error)) (T, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	return backoff.Retry(ctx, func() (T, error) {
		v, err := op()
		if err != nil && !IsTransient(err) {
			return v, backoff.Permanent(err)
		}
		return v, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(r.attempts), backoff.WithMaxElapsedTime(0))
}

func (r *retrying) Put(ctx context.Context, key string, src Source, size int64, sum string) error {
	var last error
	_, err := retryOp(ctx, r, func() (struct{}, error) {
		err := r.Store.Put(ctx, key, src, size, sum)
		if last != nil && errors.Is(err, ErrNotRewindable) {
			// The source cannot be read again: the failure that made
			// this retry necessary is the one to report.
			return struct{}{}, backoff.Permanent(last)
		}
		last = err
		return struct{}{}, err
	})
	return err
}

func (r *retrying) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	return retryOp(ctx, r, func() (io.ReadCloser, error) { return r.Store.Get(ctx, key, offset, length) })
}

func (r *retrying) Stat(ctx context.Context, key string) (Info, error) {
	return retryOp(ctx, r, func() (Info, error) { return r.Store.Stat(ctx, key) })
}

func (r *retrying) List(ctx context.Context, prefix string, fn func(Info) error) error {
	called := false
	_, err := retryOp(ctx, r, func() (struct{}, error) {
		err := r.Store.List(ctx, prefix, func(i Info) error { called = true; return fn(i) })
		if err != nil && called {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	})
	return err
}

func (r *retrying) Delete(ctx context.Context, key string) error {
	_, err := retryOp(ctx, r, func() (struct{}, error) { return struct{}{}, r.Store.Delete(ctx, key) })
	return err
}

// MarkTransient marks err as transient (IsTransient reports true), for
// backends outside this package and tests.
func MarkTransient(err error) error { return &transientError{err} }
