package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/storage"
)

// flaky fails the first failures Puts and Stats with a transient error (as
// the S3 backend marks 5xx answers), after reading part of the source.
type flaky struct {
	storage.Store
	failures atomic.Int32
	calls    atomic.Int32
	err      error
}

func (f *flaky) Put(ctx context.Context, key string, src storage.Source, size int64, sum string) error {
	f.calls.Add(1)
	if f.failures.Add(-1) >= 0 {
		r, err := src(ctx)
		if err != nil {
			return err
		}
		defer r.Close()
		io.CopyN(io.Discard, r, size/2)
		return f.err
	}
	return f.Store.Put(ctx, key, src, size, sum)
}

func (f *flaky) Stat(ctx context.Context, key string) (storage.Info, error) {
	f.calls.Add(1)
	if f.failures.Add(-1) >= 0 {
		return storage.Info{}, f.err
	}
	return f.Store.Stat(ctx, key)
}

func newLocal(t *testing.T) storage.Store {
	s, err := storage.NewLocal(filepath.Join(t.TempDir(), "s"), true)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRetryTransient(t *testing.T) {
	transient := storage.MarkTransient(errors.New("503 slow down"))
	f := &flaky{Store: newLocal(t), err: transient}
	f.failures.Store(2)
	s := storage.Retry(f, 3)
	data := bytes.Repeat([]byte("x"), 1000)
	if err := s.Put(context.Background(), "a", storage.StreamSource(bytes.NewReader(data)), 1000, storage.SHA256Hex(data)); err != nil {
		t.Fatalf("Put after two transient failures: %v", err)
	}
	if got := f.calls.Load(); got != 3 {
		t.Errorf("%d calls, want 3", got)
	}
	// A stream that cannot be read again ends the retries with the error
	// of the first attempt.
	f.failures.Store(1)
	f.calls.Store(0)
	err := s.Put(context.Background(), "b", storage.StreamSource(io.MultiReader(bytes.NewReader(data))), 1000, storage.SHA256Hex(data))
	if !errors.Is(err, transient) || f.calls.Load() != 2 {
		t.Errorf("Put of a one-shot stream: %v after %d calls, want the transient error after 2", err, f.calls.Load())
	}
	// A permanent error is not retried.
	f.err = fmt.Errorf("wrapped: %w", storage.ErrNotFound)
	f.failures.Store(1)
	f.calls.Store(0)
	if _, err := s.Stat(context.Background(), "a"); !errors.Is(err, storage.ErrNotFound) || f.calls.Load() != 1 {
		t.Errorf("permanent error: %v after %d calls", err, f.calls.Load())
	}
	// Too many transient failures give up with the last error.
	f.err = transient
	f.failures.Store(5)
	f.calls.Store(0)
	if _, err := s.Stat(context.Background(), "a"); !errors.Is(err, transient) || f.calls.Load() != 3 {
		t.Errorf("exhausted retries: %v after %d calls", err, f.calls.Load())
	}
}

// TestRetryStreamedPut: a Put of a streamed source (a reader that cannot
// seek, opened anew for each attempt, as a download from the Hub is) whose
// first attempt fails half-way is retried and stores the right bytes.
func TestRetryStreamedPut(t *testing.T) {
	inner := newLocal(t)
	f := &flaky{Store: inner, err: storage.MarkTransient(errors.New("connection reset by peer"))}
	f.failures.Store(1)
	s := storage.Retry(f, 3)
	data := bytes.Repeat([]byte("0123456789"), 10000)
	var opens atomic.Int32
	stream := func(context.Context) (io.ReadCloser, error) {
		opens.Add(1)
		// A pipe: the bytes go by once, as from a network stream.
		pr, pw := io.Pipe()
		go func() { _, err := pw.Write(data); pw.CloseWithError(err) }()
		return pr, nil
	}
	if err := s.Put(context.Background(), "streamed", stream, int64(len(data)), storage.SHA256Hex(data)); err != nil {
		t.Fatalf("streamed Put after a transient failure: %v", err)
	}
	if got := opens.Load(); got != 2 {
		t.Errorf("the source was opened %d times, want 2 (one per attempt)", got)
	}
	got, err := storage.ReadAll(context.Background(), inner, "streamed", 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("stored %d bytes (%v), want the %d bytes of the stream", len(got), err, len(data))
	}
}

// slowStat records how many Stats run at once.
type slowStat struct {
	storage.Store
	cur, max atomic.Int32
}

func (s *slowStat) Stat(ctx context.Context, key string) (storage.Info, error) {
	n := s.cur.Add(1)
	for {
		m := s.max.Load()
		if n <= m || s.max.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(10 * time.Millisecond)
	s.cur.Add(-1)
	return storage.Info{}, nil
}

func TestLimit(t *testing.T) {
	inner := &slowStat{Store: newLocal(t)}
	s := storage.Limit(inner, 3)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); s.Stat(context.Background(), "x") }()
	}
	wg.Wait()
	if m := inner.max.Load(); m > 3 || m < 2 {
		t.Errorf("max concurrent Stats %d, want 3", m)
	}
	// A Get holds its slot until Close.
	one := storage.Limit(newLocal(t), 1)
	storage.PutBytes(context.Background(), one, "k", []byte("v"))
	rc, err := one.Get(context.Background(), "k", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := one.Stat(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stat while a Get is open = %v, want to wait for the slot", err)
	}
	rc.Close()
	if _, err := one.Stat(context.Background(), "k"); err != nil {
		t.Errorf("Stat after Close: %v", err)
	}
}

// hanging is a store whose calls wait for their context (a store that is
// down and whose connections hang), except Gets of "ok".
type hanging struct{ storage.Store }

func (h hanging) Stat(ctx context.Context, key string) (storage.Info, error) {
	<-ctx.Done()
	return storage.Info{}, ctx.Err()
}

func (h hanging) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := fn(storage.Info{Key: "first"}); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (h hanging) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if key == "ok" {
		return h.Store.Get(ctx, key, offset, length)
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestTimeout(t *testing.T) {
	inner := newLocal(t)
	storage.PutBytes(context.Background(), inner, "ok", []byte("content"))
	s := storage.Timeout(hanging{inner}, 20*time.Millisecond)
	ctx := context.Background()
	if _, err := s.Stat(ctx, "x"); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Stat of a hanging store = %v, want ErrUnavailable", err)
	}
	if _, err := s.Get(ctx, "x", 0, -1); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Get of a hanging store = %v, want ErrUnavailable", err)
	}
	var seen []string
	err := s.List(ctx, "", func(i storage.Info) error { seen = append(seen, i.Key); return nil })
	if !errors.Is(err, storage.ErrUnavailable) || len(seen) != 1 {
		t.Errorf("List of a store that hangs after one object = %v after %v, want ErrUnavailable after one", err, seen)
	}
	stop := errors.New("stop")
	if err := s.List(ctx, "", func(storage.Info) error { return stop }); !errors.Is(err, stop) || errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("List whose fn fails = %v, want fn's error", err)
	}
	// A Get that answers in time gives a reader that outlives the timer.
	rc, err := s.Get(ctx, "ok", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(40 * time.Millisecond)
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(data) != "content" {
		t.Errorf("reading a Get after the timeout: %q, %v", data, err)
	}
	// The caller's own cancellation is not unavailability.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Stat(cctx, "x"); !errors.Is(err, context.Canceled) || errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Stat with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestAbortIncompleteUploadsLocal: a local store has no incomplete uploads
// to abort, also behind decorators; an invalid prefix is refused.
func TestAbortIncompleteUploadsLocal(t *testing.T) {
	s := storage.Limit(storage.Retry(storage.Timeout(newLocal(t), time.Second), 2), 1)
	if got, err := storage.AbortIncompleteUploads(context.Background(), s, "blobs/", 0); err != nil || len(got) != 0 {
		t.Errorf("AbortIncompleteUploads of a local store = %v, %v; want none", got, err)
	}
	if _, err := storage.AbortIncompleteUploads(context.Background(), s, "../x", 0); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("AbortIncompleteUploads with prefix ../x = %v, want ErrInvalidKey", err)
	}
}
