package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/storage"
)

// setChunkSize lowers ChunkSize for one (non-parallel) test.
func setChunkSize(t *testing.T, n int64) {
	t.Helper()
	old := ChunkSize
	ChunkSize = n
	t.Cleanup(func() { ChunkSize = old })
}

// chunkSums returns the sha256 of each chunk of data.
func chunkSums(data []byte, chunkSize int) [][32]byte {
	var out [][32]byte
	for start := 0; start < len(data); start += chunkSize {
		out = append(out, sha256.Sum256(data[start:min(start+chunkSize, len(data))]))
	}
	return out
}

// checkSidecar checks that the sidecar of e's blob lists the hashes of
// data's chunks of chunkSize.
func checkSidecar(t *testing.T, s storage.Store, e Entry, data []byte, chunkSize int) {
	t.Helper()
	idx, err := readChunks(context.Background(), s, e)
	if err != nil {
		t.Fatalf("%s: %v", e.Path, err)
	}
	want := chunkSums(data, chunkSize)
	if idx.chunkSize != int64(chunkSize) || len(idx.sums) != len(want) {
		t.Fatalf("%s: sidecar of %d chunks of %d, want %d of %d", e.Path, len(idx.sums), idx.chunkSize, len(want), chunkSize)
	}
	for i := range want {
		if idx.sums[i] != want[i] {
			t.Errorf("%s: chunk %d: sidecar hash differs from the content's", e.Path, i)
		}
	}
}

const testChunk = 1024

// chunkMirror pushes org/model with big.bin, 10 chunks of testChunk (the
// last one short), and returns its bytes and entry.
func chunkMirror(t *testing.T, s storage.Store) ([]byte, Entry) {
	t.Helper()
	setChunkSize(t, testChunk)
	data := randomBytes(21, 10*testChunk-100)
	files := []PushFile{
		streamFile("big.bin", data, "", "", true),
		streamFile("config.json", []byte(`{"a": 1}`), "", "", false),
	}
	if _, err := Push(context.Background(), s, "org/model", files, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := Resolve(context.Background(), s, "org/model", "main")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := m.File("big.bin")
	return data, e
}

// keyCountingStore counts the bytes read by Get, per key.
type keyCountingStore struct {
	storage.Store
	mu   sync.Mutex
	read map[string]int64
}

func newKeyCounting(s storage.Store) *keyCountingStore {
	return &keyCountingStore{Store: s, read: map[string]int64{}}
}

func (c *keyCountingStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := c.Store.Get(ctx, key, offset, length)
	if err != nil {
		return rc, err
	}
	return &keyCountingReader{rc: rc, c: c, key: key}, nil
}

func (c *keyCountingStore) take(key string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.read[key]
	delete(c.read, key)
	return n
}

type keyCountingReader struct {
	rc  io.ReadCloser
	c   *keyCountingStore
	key string
}

func (r *keyCountingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.c.mu.Lock()
	r.c.read[r.key] += int64(n)
	r.c.mu.Unlock()
	return n, err
}

func (r *keyCountingReader) Close() error { return r.rc.Close() }

// rangeGet requests big.bin with an optional Range and returns the status,
// the body received and the error reading it.
func rangeGet(t *testing.T, srv *httptest.Server, rng string) (int, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/org/model/resolve/main/big.bin", nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func chunkServer(t *testing.T, s storage.Store) *httptest.Server {
	srv := httptest.NewServer(NewServer(s, ServerOptions{SmallFile: testChunk}))
	t.Cleanup(srv.Close)
	return srv
}

func TestChunkSidecarFormat(t *testing.T) {
	data := randomBytes(7, 5*MinChunkSize+3)
	e := Entry{Path: "x", Size: int64(len(data)), SHA256: storage.SHA256Hex(data)}
	good := encodeChunks(e.SHA256, e.Size, MinChunkSize, chunkSums(data, MinChunkSize))
	idx, err := parseChunks(good, e)
	if err != nil || idx.chunkSize != MinChunkSize || len(idx.sums) != 6 || idx.sums[5] != sha256.Sum256(data[5*MinChunkSize:]) {
		t.Fatalf("round trip: %+v %v", idx, err)
	}
	if int64(len(good)) > maxChunksFileSize(e.Size) {
		t.Errorf("a sidecar of %d bytes exceeds its bound %d", len(good), maxChunksFileSize(e.Size))
	}
	refused := func(what string, b []byte, e Entry) {
		t.Helper()
		if _, err := parseChunks(b, e); !errors.Is(err, ErrBadChunks) {
			t.Errorf("%s: %v, want ErrBadChunks", what, err)
		}
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		refused(fmt.Sprintf("bit flipped in byte %d", i), b, e)
	}
	for _, n := range []int{0, 7, chunksHeader, chunksHeader + 32, len(good) - 32, len(good) - 1} {
		refused(fmt.Sprintf("truncated to %d", n), good[:n], e)
	}
	refused("a byte appended", append(bytes.Clone(good), 0), e)
	refused("other entry size", good, Entry{Size: e.Size + 1, SHA256: e.SHA256})
	refused("other entry sha256", good, Entry{Size: e.Size, SHA256: storage.SHA256Hex(nil)})
	// Well-formed (trailer and all) but out of range.
	for _, cs := range []int64{MinChunkSize / 2, MaxChunkSize * 2, e.Size, 0} {
		sums := [][32]byte{{}}
		if cs > 0 {
			sums = chunkSums(data, int(min(cs, e.Size)))
		}
		refused(fmt.Sprintf("chunk size %d", cs), encodeChunks(e.SHA256, e.Size, cs, sums), e)
	}
	v2 := bytes.Clone(good[:len(good)-32])
	v2[11] = 2
	trailer := sha256.Sum256(v2)
	refused("version 2", append(v2, trailer[:]...), e)
	refused("garbage", randomBytes(8, len(good)), e)
	// Too many chunks for the bound, well-formed otherwise.
	hugeSize := int64(MaxChunks+1) * MinChunkSize
	refused("more than MaxChunks", encodeChunks(e.SHA256, hugeSize, MinChunkSize, make([][32]byte, MaxChunks+1)), Entry{Size: hugeSize, SHA256: e.SHA256})
}

func TestSidecarChunkSize(t *testing.T) {
	for _, c := range []struct{ size, want int64 }{
		{0, 0}, {ChunkSize, 0}, {ChunkSize + 1, ChunkSize}, {MaxChunks * ChunkSize, ChunkSize},
		{MaxChunks*ChunkSize + 1, 2 * ChunkSize}, {MaxChunks * MaxChunkSize, MaxChunkSize}, {MaxChunks*MaxChunkSize + 1, 0},
	} {
		if got := sidecarChunkSize(c.size); got != c.want {
			t.Errorf("sidecarChunkSize(%d) = %d, want %d", c.size, got, c.want)
		}
	}
}

func TestServerRangeReadsOnlyCoveringChunksLocal(t *testing.T) {
	testServerRangeReadsOnlyCoveringChunks(t, newStore(t))
}

func TestServerRangeReadsOnlyCoveringChunksS3(t *testing.T) {
	testServerRangeReadsOnlyCoveringChunks(t, s3Store(t))
}

// testServerRangeReadsOnlyCoveringChunks: a range of an unverified blob with
// a sidecar reads the chunks that cover it, not the whole blob.
func testServerRangeReadsOnlyCoveringChunks(t *testing.T, s storage.Store) {
	data, e := chunkMirror(t, s)
	blob := BlobKey(e.SHA256)
	counting := newKeyCounting(s)
	srv := chunkServer(t, counting)
	for _, c := range []struct {
		rng        string
		start, end int   // want data[start:end]
		read       int64 // bytes of the blob read
	}{
		{"bytes=4500-5600", 4500, 5601, 2 * testChunk}, // chunks 4 and 5
		{"bytes=5120-6143", 5120, 6144, testChunk},     // exactly chunk 5
		{"bytes=0-0", 0, 1, testChunk},
		{"bytes=-10", len(data) - 10, len(data), int64(len(data) - 9*testChunk)}, // the short last chunk
		{fmt.Sprintf("bytes=%d-", 8*testChunk+1), 8*testChunk + 1, len(data), int64(len(data) - 8*testChunk)},
	} {
		status, body, err := rangeGet(t, srv, c.rng)
		if status != 206 || err != nil || !bytes.Equal(body, data[c.start:c.end]) {
			t.Errorf("%s: %d, %d bytes, %v; want data[%d:%d]", c.rng, status, len(body), err, c.start, c.end)
		}
		if got := counting.take(blob); got != c.read {
			t.Errorf("%s: read %d bytes of the blob, want %d (the covering chunks)", c.rng, got, c.read)
		}
	}
	// A full GET verifies chunk by chunk and counts as a verification:
	// later ranges read just their bytes.
	if status, body, err := rangeGet(t, srv, ""); status != 200 || err != nil || !bytes.Equal(body, data) {
		t.Fatalf("full GET: %d, %d bytes, %v", status, len(body), err)
	}
	if got := counting.take(blob); got != e.Size {
		t.Errorf("full GET read %d bytes, want %d", got, e.Size)
	}
	if status, body, _ := rangeGet(t, srv, "bytes=4500-5600"); status != 206 || !bytes.Equal(body, data[4500:5601]) {
		t.Errorf("range after a full GET: %d", status)
	}
	if got := counting.take(blob); got != 1101 {
		t.Errorf("range of a verified blob read %d bytes, want 1101", got)
	}
}

func TestServerChunkCorruptionLocal(t *testing.T) { testServerChunkCorruption(t, newStore(t)) }

func TestServerChunkCorruptionS3(t *testing.T) { testServerChunkCorruption(t, s3Store(t)) }

// testServerChunkCorruption corrupts chunk 5 of a blob in storage: no
// response delivers a byte of it, ranges elsewhere still work.
func testServerChunkCorruption(t *testing.T, s storage.Store) {
	data, e := chunkMirror(t, s)
	bad := bytes.Clone(data)
	bad[5*testChunk+100] ^= 0xff
	if err := storage.PutBytes(context.Background(), s, BlobKey(e.SHA256), bad); err != nil {
		t.Fatal(err)
	}
	srv := chunkServer(t, s)

	// A range within the corrupt chunk: refused before anything is sent.
	if status, body, _ := rangeGet(t, srv, "bytes=5200-5300"); status != 500 || bytes.Contains(body, bad[5200:5300]) {
		t.Errorf("range in the corrupt chunk: %d, %d bytes", status, len(body))
	}
	// Starting in chunk 4: chunk 4 is sent, then the connection is cut.
	status, body, err := rangeGet(t, srv, "bytes=4500-5600")
	if status == 206 && (err == nil || len(body) > 5*testChunk-4500 || !bytes.Equal(body, data[4500:4500+len(body)])) {
		t.Errorf("range over chunks 4 and 5: %d bytes, %v; want at most the %d bytes of chunk 4", len(body), err, 5*testChunk-4500)
	} else if status != 206 && status != 500 && !(status == 0 && err != nil) { // 0: cut before the headers left the buffer
		t.Errorf("range over chunks 4 and 5: status %d", status)
	}
	// Other chunks are fine.
	for _, rng := range []string{"bytes=1000-3000", "bytes=6144-7000", "bytes=-5"} {
		var start, end int
		switch rng {
		case "bytes=1000-3000":
			start, end = 1000, 3001
		case "bytes=6144-7000":
			start, end = 6144, 7001
		default:
			start, end = len(data)-5, len(data)
		}
		if status, body, err := rangeGet(t, srv, rng); status != 206 || err != nil || !bytes.Equal(body, data[start:end]) {
			t.Errorf("%s, away from the corrupt chunk: %d, %d bytes, %v", rng, status, len(body), err)
		}
	}
	// Full GET: chunks 0 to 4 at most, then the connection is cut.
	status, body, err = rangeGet(t, srv, "")
	if err == nil || len(body) > 5*testChunk || !bytes.Equal(body, data[:len(body)]) {
		t.Errorf("full GET of a blob with a corrupt chunk: %d, %d bytes, %v; want an error and at most %d bytes", status, len(body), err, 5*testChunk)
	}
	// Nothing counts as verified: the range still fails.
	if status, _, _ := rangeGet(t, srv, "bytes=5200-5300"); status != 500 {
		t.Errorf("range in the corrupt chunk, again: %d", status)
	}

	// A sidecar that agrees with the corrupt blob (written from the wrong
	// bytes): the chunks match, the whole blob does not, and a full GET
	// withholds the last chunk.
	if err := writeChunks(context.Background(), s, e, testChunk, chunkSums(bad, testChunk)); err != nil {
		t.Fatal(err)
	}
	srv = chunkServer(t, s)
	status, body, err = rangeGet(t, srv, "")
	if err == nil || len(body) > 9*testChunk {
		t.Errorf("full GET of a corrupt blob whose sidecar matches it: %d, %d bytes, %v; want an error and at most %d bytes", status, len(body), err, 9*testChunk)
	}
}

// TestServerLyingSidecar: a sidecar that does not describe the blob never
// gets a mismatching byte served; the request falls back to verifying the
// whole blob (and then serves it, the blob being right) or is refused.
func TestServerLyingSidecar(t *testing.T) {
	s := newStore(t)
	data, e := chunkMirror(t, s)
	key := ChunksKey(e.SHA256)
	good, err := storage.ReadAll(context.Background(), s, key, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	other := randomBytes(99, len(data))
	otherSums := chunkSums(other, testChunk)
	for _, c := range []struct {
		name    string
		sidecar []byte
		// refused lists the requests that may be refused (a lie found
		// after bytes were sent); the others must be served.
		refused map[string]bool
	}{
		{"hashes of other data", encodeChunks(e.SHA256, e.Size, testChunk, otherSums), nil},
		{"chunk 3 of other data", encodeChunks(e.SHA256, e.Size, testChunk, append(append(chunkSums(data, testChunk)[:3:3], otherSums[3]), chunkSums(data, testChunk)[4:]...)),
			map[string]bool{"": true, "bytes=2000-3500": true}},
		{"truncated", good[:len(good)-40], nil},
		{"garbage", randomBytes(5, len(good)), nil},
		{"another blob's", encodeChunks(storage.SHA256Hex(other), e.Size, testChunk, otherSums), nil},
		{"other chunk size", encodeChunks(e.SHA256, e.Size, 2*testChunk, chunkSums(other, 2*testChunk)), nil},
		{"empty", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := storage.PutBytes(context.Background(), s, key, c.sidecar); err != nil {
				t.Fatal(err)
			}
			for _, rng := range []string{"bytes=3500-4600", "bytes=3100-3200", "bytes=2000-3500", ""} {
				srv := chunkServer(t, s) // nothing verified, nothing cached
				status, body, err := rangeGet(t, srv, rng)
				want := data
				if rng != "" {
					var a, b int
					fmt.Sscanf(rng, "bytes=%d-%d", &a, &b)
					want = data[a : b+1]
				}
				if !bytes.Equal(body, want[:min(len(body), len(want))]) && status < 300 {
					t.Fatalf("%q: served bytes that are not the file's", rng)
				}
				if c.refused[rng] {
					if err == nil && status < 300 && !bytes.Equal(body, want) {
						t.Errorf("%q: %d, %d bytes without an error", rng, status, len(body))
					}
					continue
				}
				// The blob is right, so the fallback serves it.
				if status >= 300 || err != nil || !bytes.Equal(body, want) {
					t.Errorf("%q: %d, %d bytes, %v", rng, status, len(body), err)
				}
			}
		})
	}

	// A lying sidecar and a corrupt blob: refused.
	if err := storage.PutBytes(context.Background(), s, key, encodeChunks(e.SHA256, e.Size, testChunk, otherSums)); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	bad[3300] ^= 1
	if err := storage.PutBytes(context.Background(), s, BlobKey(e.SHA256), bad); err != nil {
		t.Fatal(err)
	}
	for _, rng := range []string{"bytes=3100-3200", "bytes=100-200", ""} {
		if status, body, _ := rangeGet(t, chunkServer(t, s), rng); status != 500 {
			t.Errorf("lying sidecar, corrupt blob, %q: %d, %d bytes", rng, status, len(body))
		}
	}
}

// TestServerWithoutSidecars: a mirror from before sidecars is served as
// before, verifying the whole blob once.
func TestServerWithoutSidecars(t *testing.T) {
	s := newStore(t)
	data, e := chunkMirror(t, s)
	if err := s.Delete(context.Background(), ChunksKey(e.SHA256)); err != nil {
		t.Fatal(err)
	}
	counting := newKeyCounting(s)
	srv := chunkServer(t, counting)
	for i, rng := range []string{"bytes=4500-5600", "bytes=0-99"} {
		status, body, err := rangeGet(t, srv, rng)
		var a, b int
		fmt.Sscanf(rng, "bytes=%d-%d", &a, &b)
		if status != 206 || err != nil || !bytes.Equal(body, data[a:b+1]) {
			t.Errorf("%s: %d, %d bytes, %v", rng, status, len(body), err)
		}
		want := int64(b - a + 1)
		if i == 0 {
			want += e.Size // the whole blob, verified first
		}
		if got := counting.take(BlobKey(e.SHA256)); got != want {
			t.Errorf("%s: read %d bytes, want %d", rng, got, want)
		}
	}
	if status, body, err := rangeGet(t, chunkServer(t, s), ""); status != 200 || err != nil || !bytes.Equal(body, data) {
		t.Errorf("full GET: %d, %d bytes, %v", status, len(body), err)
	}
	bad := bytes.Clone(data)
	bad[10] ^= 1
	if err := storage.PutBytes(context.Background(), s, BlobKey(e.SHA256), bad); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := rangeGet(t, chunkServer(t, s), "bytes=5000-5010"); status != 500 {
		t.Errorf("range of a corrupt blob without a sidecar: %d", status)
	}
	if status, body, err := rangeGet(t, chunkServer(t, s), ""); err == nil || len(body) == len(data) {
		t.Errorf("full GET of a corrupt blob without a sidecar: %d, %d bytes, %v", status, len(body), err)
	}
}

// failOnceStore fails the first Put of a blob half-way with a transient
// error, after reading from its reader.
type failOnceStore struct {
	storage.Store
	mu     sync.Mutex
	failed bool
}

func (f *failOnceStore) Put(ctx context.Context, key string, src storage.Source, size int64, sum string) error {
	f.mu.Lock()
	fail := !f.failed && key != "" && bytes.HasPrefix([]byte(key), []byte(blobPrefix))
	f.failed = f.failed || fail
	f.mu.Unlock()
	if fail {
		r, err := src(ctx)
		if err != nil {
			return err
		}
		defer r.Close()
		io.CopyN(io.Discard, r, size/2)
		return storage.MarkTransient(errors.New("connection reset"))
	}
	return f.Store.Put(ctx, key, src, size, sum)
}

// TestPushWritesChunkSidecars: Push writes a sidecar for each blob larger
// than a chunk, from a hash pass, a stream, or a retried upload, never for
// smaller ones; a rerun writes nothing, and restores a missing sidecar when
// it reads the file anyway.
func TestPushWritesChunkSidecars(t *testing.T) {
	setChunkSize(t, 4096)
	ctx := context.Background()
	s := newStore(t)
	dir, files := modelDir(t)
	res := pushDir(t, s, "org/m", dir, PushOptions{})
	m, err := Resolve(ctx, s, "org/m", res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Files {
		_, err := s.Stat(ctx, ChunksKey(e.SHA256))
		if e.Size <= 4096 {
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s (%d bytes): sidecar: %v, want none", e.Path, e.Size, err)
			}
			continue
		}
		checkSidecar(t, s, e, files[e.Path], 4096)
	}
	before := objects(t, s)
	pushDir(t, s, "org/m", dir, PushOptions{})
	after := objects(t, s)
	if len(after) != len(before) {
		t.Errorf("a rerun changed the objects: %d, then %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("a rerun rewrote %s", k)
		}
	}
	// A missing or wrong sidecar of a present blob is restored by a push
	// that reads the file anyway.
	e, _ := m.File("model.safetensors")
	if err := s.Delete(ctx, ChunksKey(e.SHA256)); err != nil {
		t.Fatal(err)
	}
	pushDir(t, s, "org/m", dir, PushOptions{})
	checkSidecar(t, s, e, files["model.safetensors"], 4096)
	if err := storage.PutBytes(ctx, s, ChunksKey(e.SHA256), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	pushDir(t, s, "org/m", dir, PushOptions{})
	checkSidecar(t, s, e, files["model.safetensors"], 4096)

	// Streams of known sha256 (as from a Hub): hashed on the way up.
	big := randomBytes(31, 50000)
	res2, err := Push(ctx, s, "org/stream", []PushFile{streamFile("w.bin", big, storage.SHA256Hex(big), "", true)}, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := Resolve(ctx, s, "org/stream", res2.Commit)
	e2, _ := m2.File("w.bin")
	checkSidecar(t, s, e2, big, 4096)

	// A seekable source whose first upload fails half-way: the retrying
	// store opens it again, the chunk hashes start over.
	seekable := randomBytes(32, 30000)
	retrying := storage.Retry(&failOnceStore{Store: s}, 3)
	f := PushFile{Path: "s.bin", Size: int64(len(seekable)), SHA256: storage.SHA256Hex(seekable), LFS: true,
		Open: func(context.Context) (io.ReadCloser, error) {
			return struct {
				*bytes.Reader
				io.Closer
			}{bytes.NewReader(seekable), io.NopCloser(nil)}, nil
		}}
	res3, err := Push(ctx, retrying, "org/seek", []PushFile{f}, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m3, _ := Resolve(ctx, s, "org/seek", res3.Commit)
	e3, _ := m3.File("s.bin")
	checkSidecar(t, s, e3, seekable, 4096)

	// A stream (as from the Hub) whose first upload fails half-way: the
	// retrying store opens it again, which streams it again.
	streamed := randomBytes(33, 30000)
	opens := 0
	sf := streamFile("t.bin", streamed, storage.SHA256Hex(streamed), "", true)
	open := sf.Open
	sf.Open = func(ctx context.Context) (io.ReadCloser, error) { opens++; return open(ctx) }
	res4, err := Push(ctx, storage.Retry(&failOnceStore{Store: s}, 3), "org/streamed", []PushFile{sf}, PushOptions{})
	if err != nil {
		t.Fatalf("a streamed upload that failed once was not retried: %v", err)
	}
	if opens != 2 {
		t.Errorf("the stream was opened %d times, want 2", opens)
	}
	m4, _ := Resolve(ctx, s, "org/streamed", res4.Commit)
	e4, _ := m4.File("t.bin")
	if got, err := storage.ReadAll(ctx, s, BlobKey(e4.SHA256), e4.Size); err != nil || !bytes.Equal(got, streamed) {
		t.Errorf("stored blob: %d bytes, %v", len(got), err)
	}
	checkSidecar(t, s, e4, streamed, 4096)
}

// TestPullWritesChunkSidecars: a pull streams LFS files into storage and
// hashes their chunks on the way; the server then serves ranges from them.
func TestPullWritesChunkSidecars(t *testing.T) {
	setChunkSize(t, 64<<10)
	ctx := context.Background()
	hub := hubtest.New(t)
	hubRepo(hub, "org/model", 3)
	c := hubClient(t, hub)
	s := newStore(t)
	res, err := Pull(ctx, c, s, "org/model", "main", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Resolve(ctx, s, "org/model", res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range m.Files {
		if e.Size <= 64<<10 {
			continue
		}
		data, err := storage.ReadAll(ctx, s, BlobKey(e.SHA256), e.Size)
		if err != nil {
			t.Fatal(err)
		}
		checkSidecar(t, s, e, data, 64<<10)
		n++
	}
	if n != 2 {
		t.Errorf("%d files larger than a chunk, want 2", n)
	}
	// A second pull uploads nothing and writes nothing.
	before := objects(t, s)
	if _, err := Pull(ctx, c, s, "org/model", "main", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	after := objects(t, s)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("a second pull rewrote %s", k)
		}
	}
}

// TestPullRepairsChunkSidecars: a pull of files the mirror has, whose
// chunk sidecars are missing or malformed, writes them again (from the
// stored blob: nothing is downloaded), and a stored blob that does not
// match is replaced.
func TestPullRepairsChunkSidecars(t *testing.T) {
	setChunkSize(t, 64<<10)
	ctx := context.Background()
	hub := hubtest.New(t)
	hubRepo(hub, "org/model", 5)
	c := hubClient(t, hub)
	s := newStore(t)
	res, err := Pull(ctx, c, s, "org/model", "main", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Resolve(ctx, s, "org/model", res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	big, _ := m.File("model.safetensors")
	onnx, _ := m.File("onnx/model.onnx")
	bigData, _ := storage.ReadAll(ctx, s, BlobKey(big.SHA256), big.Size)
	onnxData, _ := storage.ReadAll(ctx, s, BlobKey(onnx.SHA256), onnx.Size)
	if err := s.Delete(ctx, ChunksKey(big.SHA256)); err != nil {
		t.Fatal(err)
	}
	if err := storage.PutBytes(ctx, s, ChunksKey(onnx.SHA256), []byte("HMCHUNKS garbage")); err != nil {
		t.Fatal(err)
	}
	hub.ResetRequests()
	res2, err := Pull(ctx, c, s, "org/model", "main", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkSidecar(t, s, big, bigData, 64<<10)
	checkSidecar(t, s, onnx, onnxData, 64<<10)
	if n := hub.BytesSent(""); n != 0 || res2.Uploaded != 0 {
		t.Errorf("repairing sidecars downloaded %d bytes and uploaded %d blobs, want none", n, res2.Uploaded)
	}

	// A stored blob that does not match its hash is replaced, and its
	// sidecar rebuilt.
	if err := s.Delete(ctx, ChunksKey(big.SHA256)); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(bigData)
	bad[100] ^= 1
	if err := s.Put(ctx, BlobKey(big.SHA256), storage.BytesSource(bad), int64(len(bad)), storage.SHA256Hex(bad)); err != nil {
		t.Fatal(err)
	}
	res3, err := Pull(ctx, c, s, "org/model", "main", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res3.Uploaded != 1 {
		t.Errorf("%d blobs uploaded, want the corrupt one replaced", res3.Uploaded)
	}
	if got, _ := storage.ReadAll(ctx, s, BlobKey(big.SHA256), big.Size); !bytes.Equal(got, bigData) {
		t.Error("the corrupt blob was not replaced")
	}
	checkSidecar(t, s, big, bigData, 64<<10)
}

// chachaReader returns n pseudo-random bytes of seed.
func chachaReader(seed byte, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{seed}), n)
}

// BenchmarkServerUnverified measures requests for a 1 GiB blob in a local
// store that the server has not verified yet, with a chunk sidecar (8 MiB
// chunks) and without one: the time to the first byte of a 1 MiB range in
// the middle (without a sidecar the whole blob is verified first), and the
// throughput of a full GET. Each iteration uses a new Server, so nothing is
// verified or cached. Run with -benchtime=3x.
func BenchmarkServerUnverified(b *testing.B) {
	if testing.Short() {
		b.Skip("writes 1 GiB")
	}
	const size = 1 << 30
	ctx := context.Background()
	s, err := storage.NewLocal(b.TempDir(), true)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	io.Copy(h, chachaReader(1, size))
	sum := hex.EncodeToString(h.Sum(nil))
	f := PushFile{Path: "big.bin", Size: size, SHA256: sum, LFS: true,
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(chachaReader(1, size)), nil }}
	if _, err := Push(ctx, s, "org/model", []PushFile{f}, PushOptions{}); err != nil {
		b.Fatal(err)
	}
	want, _ := io.ReadAll(io.LimitReader(chachaReader(1, size/2+1<<20), size/2+1<<20))
	want = want[size/2:]
	get := func(b *testing.B, rng string) (*http.Response, func()) {
		srv := httptest.NewServer(NewServer(s, ServerOptions{}))
		req, _ := http.NewRequest("GET", srv.URL+"/org/model/resolve/main/big.bin", nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		return resp, func() { resp.Body.Close(); srv.Close() }
	}
	rangeFirstByte := func(b *testing.B) {
		var total time.Duration
		n := 0
		for b.Loop() {
			start := time.Now()
			resp, done := get(b, fmt.Sprintf("bytes=%d-%d", size/2, size/2+1<<20-1))
			first := make([]byte, 1)
			if _, err := io.ReadFull(resp.Body, first); err != nil {
				b.Fatal(err)
			}
			ttfb := time.Since(start)
			rest, err := io.ReadAll(resp.Body)
			done()
			if err != nil || resp.StatusCode != 206 || !bytes.Equal(append(first, rest...), want) {
				b.Fatalf("%d, %v", resp.StatusCode, err)
			}
			total += ttfb
			n++
		}
		b.ReportMetric(float64(total.Microseconds())/1000/float64(n), "ms-to-first-byte")
	}
	fullGET := func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			resp, done := get(b, "")
			n, err := io.Copy(io.Discard, resp.Body)
			done()
			if err != nil || resp.StatusCode != 200 || n != size {
				b.Fatalf("%d, %d bytes, %v", resp.StatusCode, n, err)
			}
		}
	}
	b.Run("range/sidecar", rangeFirstByte)
	b.Run("full/sidecar", fullGET)
	if err := s.Delete(ctx, ChunksKey(sum)); err != nil {
		b.Fatal(err)
	}
	b.Run("range/no-sidecar", rangeFirstByte)
	b.Run("full/no-sidecar", fullGET)
}

// BenchmarkPushChunkHashing measures what hashing chunks on the way costs
// a Push of a 64 MiB stream of known sha256 (as Pull pushes LFS files)
// into a local store: with a sidecar of 8 MiB chunks, and with ChunkSize at
// MaxChunkSize, where a 64 MiB blob gets none.
func BenchmarkPushChunkHashing(b *testing.B) {
	const size = 64 << 20
	data, _ := io.ReadAll(chachaReader(2, size))
	sum := storage.SHA256Hex(data)
	for _, c := range []struct {
		name      string
		chunkSize int64
	}{{"sidecar", 8 << 20}, {"none", MaxChunkSize}} {
		b.Run(c.name, func(b *testing.B) {
			old := ChunkSize
			ChunkSize = c.chunkSize
			defer func() { ChunkSize = old }()
			b.SetBytes(size)
			for b.Loop() {
				b.StopTimer()
				s, err := storage.NewLocal(b.TempDir(), true)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := Push(context.Background(), s, "org/m", []PushFile{streamFile("w.bin", data, sum, "", true)}, PushOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := s.Stat(context.Background(), ChunksKey(sum)); (err == nil) != (c.chunkSize < size) {
					b.Fatalf("sidecar: %v", err)
				}
				s.Close()
				b.StartTimer()
			}
		})
	}
}

// FuzzParseChunks: a sidecar read from storage is untrusted; whatever its
// bytes, parseChunks returns an index consistent with the entry or
// ErrBadChunks, and never panics or allocates for chunks it cannot hold.
//
//	go test -run '^$' -fuzz '^FuzzParseChunks$' -fuzztime 2m ./mirror/
func FuzzParseChunks(f *testing.F) {
	data := randomBytes(11, 3*MinChunkSize+5)
	e := Entry{Path: "x", Size: int64(len(data)), SHA256: storage.SHA256Hex(data)}
	f.Add(encodeChunks(e.SHA256, e.Size, MinChunkSize, chunkSums(data, MinChunkSize)), e.Size)
	f.Add([]byte("HMCHUNKS"), int64(5000))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		entry := Entry{Path: "x", Size: size, SHA256: e.SHA256}
		idx, err := parseChunks(b, entry)
		if err != nil {
			if !errors.Is(err, ErrBadChunks) {
				t.Fatalf("error %v does not wrap ErrBadChunks", err)
			}
			return
		}
		if idx.size != size || idx.chunkSize < MinChunkSize || idx.chunkSize > MaxChunkSize ||
			int64(len(idx.sums)) != chunkCount(size, idx.chunkSize) || size <= idx.chunkSize {
			t.Fatalf("inconsistent index %d chunks of %d for %d bytes", len(idx.sums), idx.chunkSize, size)
		}
	})
}
