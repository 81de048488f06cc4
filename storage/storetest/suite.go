// Package storetest is the conformance suite every storage.Store backend
// runs from its tests: the written contract of storage.Store, checked.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/storage"
)

// Config describes the backend under test.
type Config struct {
	// New returns an empty store; it is called once per subtest, and the
	// store is closed when the subtest ends.
	New func(t *testing.T) storage.Store
	// LargeSize is the size of the object that must take the backend's
	// multipart or chunked path (larger than its part size).
	LargeSize int
	// Leftovers, if set, reports objects or uploads the backend keeps
	// outside what List shows (staged temporary files, incomplete multipart
	// uploads) after all operations have returned: a failed Put must leave
	// none.
	Leftovers func(t *testing.T, s storage.Store) []string
}

// Run runs the suite.
func Run(t *testing.T, cfg Config) {
	tests := []struct {
		name string
		fn   func(t *testing.T, cfg Config, s storage.Store)
	}{
		{"PutGet", testPutGet},
		{"Range", testRange},
		{"Stat", testStat},
		{"List", testList},
		{"Delete", testDelete},
		{"SaveWrongHash", testSaveWrongHash},
		{"WrongHashKeepsOld", testWrongHashKeepsOld},
		{"ShortReader", testShortReader},
		{"FailingReader", testFailingReader},
		{"ReadsNoMoreThanSize", testReadsNoMoreThanSize},
		{"SourceOpenedAndClosed", testSourceOpenedAndClosed},
		{"Overwrite", testOverwrite},
		{"ConcurrentPuts", testConcurrentPuts},
		{"Large", testLarge},
		{"LargeWrongHash", testLargeWrongHash},
		{"LargeFailingReader", testLargeFailingReader},
		{"ContextCancel", testContextCancel},
		{"OddKeys", testOddKeys},
		{"InvalidKeys", testInvalidKeys},
		{"InvalidArguments", testInvalidArguments},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := cfg.New(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, cfg, s)
			if cfg.Leftovers != nil {
				if left := cfg.Leftovers(t, s); len(left) > 0 {
					t.Errorf("leftovers after %s: %v", tc.name, left)
				}
			}
		})
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, storage.BytesSource(data), int64(len(data)), storage.SHA256Hex(data)); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

func get(t *testing.T, s storage.Store, key string, offset, length int64) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key, offset, length)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", key, offset, length, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): reading: %v", key, offset, length, err)
	}
	return data
}

func keys(t *testing.T, s storage.Store, prefix string) []string {
	t.Helper()
	var out []string
	var mu sync.Mutex
	err := s.List(context.Background(), prefix, func(i storage.Info) error {
		mu.Lock()
		out = append(out, i.Key)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	sort.Strings(out)
	return out
}

func assertAbsent(t *testing.T, s storage.Store, key string) {
	t.Helper()
	if _, err := s.Stat(context.Background(), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(%q) = %v, want ErrNotFound", key, err)
	}
	if _, err := s.Get(context.Background(), key, 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(%q) = %v, want ErrNotFound", key, err)
	}
	if ks := keys(t, s, ""); slices.Contains(ks, key) {
		t.Errorf("List shows %q: %v", key, ks)
	}
}

func testPutGet(t *testing.T, _ Config, s storage.Store) {
	for i, n := range []int{0, 1, 31, 4096, 1<<20 + 3} {
		data := randomBytes(uint64(i), n)
		key := fmt.Sprintf("putget/obj-%d", n)
		put(t, s, key, data)
		if got := get(t, s, key, 0, -1); !bytes.Equal(got, data) {
			t.Errorf("%s: got %d bytes back, want the %d put", key, len(got), len(data))
		}
	}
}

func testRange(t *testing.T, _ Config, s storage.Store) {
	data := randomBytes(7, 10000)
	put(t, s, "range/obj", data)
	n := int64(len(data))
	for _, r := range [][2]int64{{0, -1}, {0, n}, {0, 1}, {1, 10}, {9999, 1}, {9999, -1}, {5000, -1}, {n, -1}, {n, 0}, {0, 0}, {123, 0}, {4096, 4096}} {
		want := data[r[0]:]
		if r[1] >= 0 {
			want = data[r[0] : r[0]+r[1]]
		}
		if got := get(t, s, "range/obj", r[0], r[1]); !bytes.Equal(got, want) {
			t.Errorf("Get(%d, %d): got %d bytes, want %d (content differs: %v)", r[0], r[1], len(got), len(want), len(got) == len(want))
		}
	}
	for _, r := range [][2]int64{{-1, 5}, {n + 1, -1}, {n + 1, 0}, {0, n + 1}, {n - 1, 2}, {n, 1}} {
		rc, err := s.Get(context.Background(), "range/obj", r[0], r[1])
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, storage.ErrInvalidRange) {
			t.Errorf("Get(%d, %d) = %v, want ErrInvalidRange", r[0], r[1], err)
		}
	}
	put(t, s, "range/empty", nil)
	if got := get(t, s, "range/empty", 0, 0); len(got) != 0 {
		t.Errorf("empty object: got %d bytes", len(got))
	}
	if got := get(t, s, "range/empty", 0, -1); len(got) != 0 {
		t.Errorf("empty object: got %d bytes", len(got))
	}
	if _, err := s.Get(context.Background(), "range/empty", 1, -1); !errors.Is(err, storage.ErrInvalidRange) {
		t.Errorf("Get(empty, 1, -1) = %v, want ErrInvalidRange", err)
	}
	if _, err := s.Get(context.Background(), "range/missing", 0, 0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(missing, 0, 0) = %v, want ErrNotFound", err)
	}
}

func testStat(t *testing.T, _ Config, s storage.Store) {
	before := time.Now().Add(-time.Hour)
	data := randomBytes(3, 777)
	put(t, s, "stat/a", data)
	info, err := s.Stat(context.Background(), "stat/a")
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != "stat/a" || info.Size != 777 {
		t.Errorf("Stat = %+v, want key stat/a size 777", info)
	}
	if info.ModTime.Before(before) || info.ModTime.After(time.Now().Add(time.Hour)) {
		t.Errorf("ModTime %v is not about now", info.ModTime)
	}
	if info.Version == "" {
		t.Error("empty Version")
	}
	put(t, s, "stat/a", randomBytes(4, 777))
	info2, err := s.Stat(context.Background(), "stat/a")
	if err != nil {
		t.Fatal(err)
	}
	if info2.Version == info.Version {
		t.Errorf("Version %q did not change when the object was replaced", info.Version)
	}
	for _, k := range []string{"stat/missing", "stat", "nothing/here"} {
		if _, err := s.Stat(context.Background(), k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%q) = %v, want ErrNotFound", k, err)
		}
	}
}

func testList(t *testing.T, _ Config, s storage.Store) {
	if ks := keys(t, s, ""); len(ks) != 0 {
		t.Fatalf("new store lists %v", ks)
	}
	all := []string{"l/a", "l/b/c", "l/b/d/e", "l/bc", "l-x", "m/a"}
	for i, k := range all {
		put(t, s, k, randomBytes(uint64(i), i*10))
	}
	sizes := map[string]int64{}
	err := s.List(context.Background(), "", func(i storage.Info) error { sizes[i.Key] = i.Size; return nil })
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range all {
		if sizes[k] != int64(i*10) {
			t.Errorf("List: %s has size %d, want %d", k, sizes[k], i*10)
		}
	}
	cases := map[string][]string{
		"":       all,
		"l":      {"l-x", "l/a", "l/b/c", "l/b/d/e", "l/bc"},
		"l/":     {"l/a", "l/b/c", "l/b/d/e", "l/bc"},
		"l/b":    {"l/b/c", "l/b/d/e", "l/bc"},
		"l/b/":   {"l/b/c", "l/b/d/e"},
		"l/b/d/": {"l/b/d/e"},
		"l/a":    {"l/a"},
		"l/a/":   nil,
		"zz":     nil,
		"zz/y/":  nil,
	}
	for prefix, want := range cases {
		want = slices.Clone(want)
		sort.Strings(want)
		if got := keys(t, s, prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %v, want %v", prefix, got, want)
		}
	}
	stop := errors.New("stop")
	n := 0
	err = s.List(context.Background(), "", func(storage.Info) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("List with fn failing: err %v after %d calls, want stop after 1", err, n)
	}
}

func testDelete(t *testing.T, _ Config, s storage.Store) {
	put(t, s, "del/a", []byte("a"))
	put(t, s, "del/b", []byte("b"))
	if err := s.Delete(context.Background(), "del/a"); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, s, "del/a")
	if got := keys(t, s, "del/"); !slices.Equal(got, []string{"del/b"}) {
		t.Errorf("after delete: %v", got)
	}
	if err := s.Delete(context.Background(), "del/a"); err != nil {
		t.Errorf("second Delete: %v, want nil", err)
	}
	if err := s.Delete(context.Background(), "never/was"); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
	put(t, s, "del/a", []byte("again"))
	if got := get(t, s, "del/a", 0, -1); string(got) != "again" {
		t.Errorf("put after delete: %q", got)
	}
}

func testSaveWrongHash(t *testing.T, _ Config, s storage.Store) {
	data := randomBytes(11, 5000)
	wrong := storage.SHA256Hex(append(slices.Clone(data), 0))
	err := s.Put(context.Background(), "wrong/a", storage.BytesSource(data), int64(len(data)), wrong)
	if !errors.Is(err, storage.ErrHashMismatch) {
		t.Fatalf("Put with a wrong hash = %v, want ErrHashMismatch", err)
	}
	assertAbsent(t, s, "wrong/a")
	// A flipped byte in the middle, the last byte, an empty object.
	corrupt := slices.Clone(data)
	corrupt[2500] ^= 1
	err = s.Put(context.Background(), "wrong/b", storage.BytesSource(corrupt), int64(len(corrupt)), storage.SHA256Hex(data))
	if !errors.Is(err, storage.ErrHashMismatch) {
		t.Fatalf("Put with a flipped byte = %v, want ErrHashMismatch", err)
	}
	assertAbsent(t, s, "wrong/b")
	corrupt = slices.Clone(data)
	corrupt[len(corrupt)-1] ^= 0x80
	err = s.Put(context.Background(), "wrong/c", storage.BytesSource(corrupt), int64(len(corrupt)), storage.SHA256Hex(data))
	if !errors.Is(err, storage.ErrHashMismatch) {
		t.Fatalf("Put with the last byte flipped = %v, want ErrHashMismatch", err)
	}
	assertAbsent(t, s, "wrong/c")
	err = s.Put(context.Background(), "wrong/empty", storage.BytesSource(nil), 0, storage.SHA256Hex([]byte("x")))
	if !errors.Is(err, storage.ErrHashMismatch) {
		t.Fatalf("empty Put with a wrong hash = %v, want ErrHashMismatch", err)
	}
	assertAbsent(t, s, "wrong/empty")
	if ks := keys(t, s, ""); len(ks) != 0 {
		t.Errorf("store lists %v after refused puts", ks)
	}
}

func testWrongHashKeepsOld(t *testing.T, _ Config, s storage.Store) {
	old := randomBytes(12, 3000)
	put(t, s, "keep/a", old)
	bad := randomBytes(13, 3000)
	err := s.Put(context.Background(), "keep/a", storage.BytesSource(bad), int64(len(bad)), storage.SHA256Hex(old))
	if !errors.Is(err, storage.ErrHashMismatch) {
		t.Fatalf("Put = %v, want ErrHashMismatch", err)
	}
	if got := get(t, s, "keep/a", 0, -1); !bytes.Equal(got, old) {
		t.Error("a refused Put changed the object already there")
	}
}

func testShortReader(t *testing.T, _ Config, s storage.Store) {
	data := randomBytes(14, 1000)
	err := s.Put(context.Background(), "short/a", storage.BytesSource(data[:600]), 1000, storage.SHA256Hex(data))
	if !errors.Is(err, storage.ErrShortRead) {
		t.Fatalf("Put of a short reader = %v, want ErrShortRead", err)
	}
	assertAbsent(t, s, "short/a")
}

// failingReader returns its data, then err instead of EOF.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

var errSource = errors.New("storetest: source failed")

func testFailingReader(t *testing.T, _ Config, s storage.Store) {
	data := randomBytes(15, 100000)
	err := s.Put(context.Background(), "fail/a", storage.StreamSource(&failingReader{data: data[:50000], err: errSource}), int64(len(data)), storage.SHA256Hex(data))
	if !errors.Is(err, errSource) {
		t.Fatalf("Put of a failing reader = %v, want the reader's error", err)
	}
	assertAbsent(t, s, "fail/a")
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func testReadsNoMoreThanSize(t *testing.T, _ Config, s storage.Store) {
	data := randomBytes(16, 2000)
	cr := &countingReader{r: bytes.NewReader(data)}
	if err := s.Put(context.Background(), "exact/a", storage.StreamSource(cr), 1500, storage.SHA256Hex(data[:1500])); err != nil {
		t.Fatal(err)
	}
	if cr.n != 1500 {
		t.Errorf("Put read %d bytes of a source, size was 1500", cr.n)
	}
	if got := get(t, s, "exact/a", 0, -1); !bytes.Equal(got, data[:1500]) {
		t.Errorf("stored %d bytes, want the first 1500", len(got))
	}
}

// testSourceOpenedAndClosed: Put opens its source and closes what it
// opened, whether it succeeds or fails; a source that cannot be opened fails
// the Put with its error and leaves nothing.
func testSourceOpenedAndClosed(t *testing.T, _ Config, s storage.Store) {
	data := randomBytes(19, 3000)
	var opens, closes int
	src := func(context.Context) (io.ReadCloser, error) {
		opens++
		return &closeCounter{Reader: bytes.NewReader(data), n: &closes}, nil
	}
	if err := s.Put(context.Background(), "src/a", src, int64(len(data)), storage.SHA256Hex(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), "src/b", src, int64(len(data)), storage.SHA256Hex(data[1:])); !errors.Is(err, storage.ErrHashMismatch) {
		t.Errorf("Put with a wrong sha256 = %v, want ErrHashMismatch", err)
	}
	if opens < 2 || closes != opens {
		t.Errorf("the source was opened %d times and closed %d times, want as many closes as opens (at least 2)", opens, closes)
	}
	failOpen := func(context.Context) (io.ReadCloser, error) { return nil, errSource }
	if err := s.Put(context.Background(), "src/c", failOpen, 1, storage.SHA256Hex([]byte("x"))); !errors.Is(err, errSource) {
		t.Errorf("Put of a source that cannot be opened = %v, want its error", err)
	}
	assertAbsent(t, s, "src/b")
	assertAbsent(t, s, "src/c")
}

type closeCounter struct {
	io.Reader
	n *int
}

func (c *closeCounter) Close() error { *c.n++; return nil }

func testOverwrite(t *testing.T, _ Config, s storage.Store) {
	a := randomBytes(17, 4000)
	put(t, s, "ow/a", a)
	put(t, s, "ow/a", a)
	if got := keys(t, s, "ow/"); !slices.Equal(got, []string{"ow/a"}) {
		t.Errorf("after putting the same object twice: %v", got)
	}
	if got := get(t, s, "ow/a", 0, -1); !bytes.Equal(got, a) {
		t.Error("content changed after an identical put")
	}
	b := randomBytes(18, 100)
	put(t, s, "ow/a", b)
	if got := get(t, s, "ow/a", 0, -1); !bytes.Equal(got, b) {
		t.Error("overwrite with other content did not replace the object")
	}
	if info, err := s.Stat(context.Background(), "ow/a"); err != nil || info.Size != 100 {
		t.Errorf("Stat after overwrite = %+v, %v", info, err)
	}
}

func testConcurrentPuts(t *testing.T, _ Config, s storage.Store) {
	const n = 8
	same := randomBytes(19, 200000)
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs[i] = s.Put(context.Background(), "conc/same", storage.BytesSource(same), int64(len(same)), storage.SHA256Hex(same))
		}()
		go func() {
			defer wg.Done()
			d := randomBytes(uint64(100+i), 10000+i)
			errs[n+i] = s.Put(context.Background(), fmt.Sprintf("conc/k%d", i), storage.BytesSource(d), int64(len(d)), storage.SHA256Hex(d))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("put %d: %v", i, err)
		}
	}
	if got := get(t, s, "conc/same", 0, -1); !bytes.Equal(got, same) {
		t.Error("concurrent puts of the same object left other content")
	}
	for i := 0; i < n; i++ {
		if got := get(t, s, fmt.Sprintf("conc/k%d", i), 0, -1); !bytes.Equal(got, randomBytes(uint64(100+i), 10000+i)) {
			t.Errorf("conc/k%d differs", i)
		}
	}
	if got := keys(t, s, "conc/"); len(got) != n+1 {
		t.Errorf("List shows %d objects, want %d: %v", len(got), n+1, got)
	}
}

func testLarge(t *testing.T, cfg Config, s storage.Store) {
	data := randomBytes(20, cfg.LargeSize)
	put(t, s, "large/a", data)
	if got := get(t, s, "large/a", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("large object: got %d bytes back, want %d", len(got), len(data))
	}
	off := int64(cfg.LargeSize / 3)
	if got := get(t, s, "large/a", off, 1<<20); !bytes.Equal(got, data[off:off+1<<20]) {
		t.Error("range of the large object differs")
	}
	if info, err := s.Stat(context.Background(), "large/a"); err != nil || info.Size != int64(cfg.LargeSize) {
		t.Errorf("Stat = %+v, %v", info, err)
	}
}

func testLargeWrongHash(t *testing.T, cfg Config, s storage.Store) {
	data := randomBytes(21, cfg.LargeSize)
	want := storage.SHA256Hex(data)
	data[len(data)-1] ^= 1 // only the very last byte differs
	err := s.Put(context.Background(), "large/wrong", storage.BytesSource(data), int64(len(data)), want)
	if !errors.Is(err, storage.ErrHashMismatch) {
		t.Fatalf("large Put with a wrong hash = %v, want ErrHashMismatch", err)
	}
	assertAbsent(t, s, "large/wrong")
}

func testLargeFailingReader(t *testing.T, cfg Config, s storage.Store) {
	data := randomBytes(22, cfg.LargeSize)
	r := &failingReader{data: data[:cfg.LargeSize*2/3], err: errSource}
	err := s.Put(context.Background(), "large/fail", storage.StreamSource(r), int64(len(data)), storage.SHA256Hex(data))
	if !errors.Is(err, errSource) {
		t.Fatalf("large Put of a failing reader = %v, want the reader's error", err)
	}
	assertAbsent(t, s, "large/fail")
}

// blockingReader returns its data, then blocks until released.
type blockingReader struct {
	data    []byte
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if len(b.data) > 0 {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	b.once.Do(func() { close(b.reached) })
	<-b.release
	return 0, errors.New("storetest: released")
}

func testContextCancel(t *testing.T, cfg Config, s storage.Store) {
	for _, size := range []int{100000, cfg.LargeSize} {
		data := randomBytes(23, size)
		ctx, cancel := context.WithCancel(context.Background())
		br := &blockingReader{data: data[:size/2], reached: make(chan struct{}), release: make(chan struct{})}
		done := make(chan error, 1)
		key := fmt.Sprintf("cancel/%d", size)
		go func() { done <- s.Put(ctx, key, storage.StreamSource(br), int64(size), storage.SHA256Hex(data)) }()
		select {
		case <-br.reached:
		case err := <-done:
			t.Fatalf("Put returned before reading half the source: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("Put did not read the source")
		}
		cancel()
		var err error
		select {
		case err = <-done:
		case <-time.After(2 * time.Second):
			close(br.release) // a backend blocked in Read sees the release
			err = <-done
		}
		select {
		case <-br.release:
		default:
			close(br.release)
		}
		if err == nil {
			t.Fatalf("cancelled Put of %d bytes succeeded", size)
		}
		assertAbsent(t, s, key)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	put(t, s, "cancel/exists", []byte("x"))
	if err := s.Put(ctx, "cancel/x", storage.BytesSource([]byte("x")), 1, storage.SHA256Hex([]byte("x"))); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(ctx, "cancel/exists"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with a cancelled context = %v, want context.Canceled", err)
	}
	if rc, err := s.Get(ctx, "cancel/exists", 0, -1); !errors.Is(err, context.Canceled) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Get with a cancelled context = %v, want context.Canceled", err)
	}
	if err := s.List(ctx, "", func(storage.Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context = %v, want context.Canceled", err)
	}
}

// OddKeys are valid keys with characters that need escaping in URLs, XML or
// shells; every backend must store and list them unchanged.
var OddKeys = []string{
	"odd/with space",
	"odd/plus+sign",
	"odd/percent%20literal",
	"odd/query?x=1&y=2",
	"odd/hash#frag",
	"odd/quote'\"",
	"odd/semi;colon:comma,at@bang!",
	"odd/brackets[]{}()",
	"odd/tilde~dollar$star*",
	"odd/ümlaut-日本語-😀",
	"odd/.hidden",
	"odd/...",
	"odd/trailing.",
	"odd/a=b",
	"odd/" + strings.Repeat("x", 255),
	"odd/dir with space/file name.json",
	"-leading-dash",
	"odd/<tag>&amp;",
}

func testOddKeys(t *testing.T, _ Config, s storage.Store) {
	for i, k := range OddKeys {
		if err := storage.ValidateKey(k); err != nil {
			t.Fatalf("suite key %q is invalid: %v", k, err)
		}
		put(t, s, k, randomBytes(uint64(i), 10+i))
	}
	for i, k := range OddKeys {
		if got := get(t, s, k, 0, -1); !bytes.Equal(got, randomBytes(uint64(i), 10+i)) {
			t.Errorf("%q: content differs", k)
		}
		if info, err := s.Stat(context.Background(), k); err != nil || info.Key != k {
			t.Errorf("Stat(%q) = %+v, %v", k, info, err)
		}
	}
	want := slices.Clone(OddKeys)
	sort.Strings(want)
	if got := keys(t, s, ""); !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	if got := keys(t, s, "odd/dir with space/"); !slices.Equal(got, []string{"odd/dir with space/file name.json"}) {
		t.Errorf("List of a prefix with a space = %q", got)
	}
	for _, k := range OddKeys {
		if err := s.Delete(context.Background(), k); err != nil {
			t.Errorf("Delete(%q): %v", k, err)
		}
	}
	if got := keys(t, s, ""); len(got) != 0 {
		t.Errorf("after deleting all: %q", got)
	}
}

// InvalidKeys are refused by every method with ErrInvalidKey.
var InvalidKeys = []string{
	"", "/abs", "a/../b", "..", ".", "a/./b", "a//b", "a/", "../x", "a\x00b", "a\nb", "a\\b",
	"\xff\xfe", strings.Repeat("a", 256), strings.Repeat("a/", 600) + "a", storage.TempDir + "/x",
}

func testInvalidKeys(t *testing.T, _ Config, s storage.Store) {
	ctx := context.Background()
	for _, k := range InvalidKeys {
		if err := s.Put(ctx, k, storage.BytesSource([]byte("x")), 1, storage.SHA256Hex([]byte("x"))); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Get(ctx, k, 0, -1); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Stat(ctx, k); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v, want ErrInvalidKey", k, err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
	for _, p := range []string{"/", "/abs", "a//", "../", "a/../"} {
		if err := s.List(ctx, p, func(storage.Info) error { return nil }); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("List(%q) = %v, want ErrInvalidKey", p, err)
		}
	}
	if ks := keys(t, s, ""); len(ks) != 0 {
		t.Errorf("store lists %q after refused puts", ks)
	}
}

func testInvalidArguments(t *testing.T, _ Config, s storage.Store) {
	ctx := context.Background()
	sum := storage.SHA256Hex([]byte("x"))
	for _, bad := range []string{"", "abc", strings.ToUpper(sum), sum[:63] + "g", sum + "0"} {
		if err := s.Put(ctx, "args/a", storage.BytesSource([]byte("x")), 1, bad); !errors.Is(err, storage.ErrInvalidArgument) {
			t.Errorf("Put with sha256 %q = %v, want ErrInvalidArgument", bad, err)
		}
	}
	if err := s.Put(ctx, "args/a", storage.BytesSource([]byte("x")), -1, sum); !errors.Is(err, storage.ErrInvalidArgument) {
		t.Errorf("Put with size -1 = %v, want ErrInvalidArgument", err)
	}
	assertAbsent(t, s, "args/a")
}
