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

func (f *flaky) Put(ctx context.Context, key string, r io.Reader, size int64, sum string) error {
	f.calls.Add(1)
	if f.failures.Add(-1) >= 0 {
		io.CopyN(io.Discard, r, size/2)
		return f.err
	}
	return f.Store.Put(ctx, key, r, size, sum)
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
	if err := s.Put(context.Background(), "a", bytes.NewReader(data), 1000, storage.SHA256Hex(data)); err != nil {
		t.Fatalf("Put after two transient failures: %v", err)
	}
	if got := f.calls.Load(); got != 3 {
		t.Errorf("%d calls, want 3", got)
	}
	// A reader that cannot seek is not retried.
	f.failures.Store(1)
	f.calls.Store(0)
	err := s.Put(context.Background(), "b", io.MultiReader(bytes.NewReader(data)), 1000, storage.SHA256Hex(data))
	if !errors.Is(err, transient) || f.calls.Load() != 1 {
		t.Errorf("unseekable Put: %v after %d calls, want the transient error after 1", err, f.calls.Load())
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
