package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/storage"
)

// streamRepo adds org/big to hub: an LFS file big.bin of size bytes and a
// small config.json. It returns big.bin's content and sha256.
func streamRepo(t *testing.T, hub *hubtest.Hub, size int64) ([]byte, string) {
	t.Helper()
	r := hub.AddRepo("org/big")
	r.AddContent("config.json", hubtest.Bytes([]byte(`{"model_type": "gpt2"}`)), false)
	r.AddContent("big.bin", hubtest.PseudoRandom(7, size), true)
	f := r.File("big.bin")
	return contentOf(t, f), f.SHA256
}

// watchdog fails the test when done is not closed within a long time: a
// guard against a hang (the test hub holds bytes a client waits for), not
// a measure of speed.
func watchdog(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s never happened", what)
	}
}

// clientContext is a context for a test's requests that ends before the
// servers stop, so that a test that fails while a response is under way
// does not hang in their cleanup.
func clientContext(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// streamGet starts a GET of path and returns the response once its headers
// are in (the server sends them with the first byte).
func streamGet(t *testing.T, u *upstreamServer, path string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(clientContext(t), http.MethodGet, u.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	var resp *http.Response
	got := make(chan struct{})
	go func() {
		defer close(got)
		resp, err = http.DefaultClient.Do(req)
	}()
	watchdog(t, "the response to GET "+path, got)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readN reads n bytes of body, failing the test if they do not come.
func readN(t *testing.T, body io.Reader, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err = io.ReadFull(body, buf)
	}()
	watchdog(t, fmt.Sprintf("reading %d bytes", n), done)
	if err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return buf
}

func TestUpstreamStreamsLocal(t *testing.T) { testUpstreamStreams(t, newStore(t)) }

func TestUpstreamStreamsS3(t *testing.T) { testUpstreamStreams(t, s3Store(t)) }

// testUpstreamStreams: the first client of a file the mirror lacks receives
// its first bytes while the upstream still holds the rest (the test hub's
// gate); clients that join mid-way (one whole, one a range) get the same
// bytes, from one upstream download; the blob is stored once complete.
func testUpstreamStreams(t *testing.T, s storage.Store) {
	ctx := context.Background()
	hub := hubtest.New(t)
	const size, head = 300 << 10, 100 << 10
	content, sha := streamRepo(t, hub, size)
	u := newUpstreamServer(t, s, hub, "", UpstreamOptions{})
	gate := hub.Hold("big.bin", head)
	t.Cleanup(gate.Open) // before the servers stop

	first := streamGet(t, u, "/org/big/resolve/main/big.bin")
	if first.StatusCode != http.StatusOK || first.ContentLength != size {
		t.Fatalf("first client: %s, Content-Length %d", first.Status, first.ContentLength)
	}
	got := readN(t, first.Body, head)
	if !bytes.Equal(got, content[:head]) {
		t.Fatal("the first client's head differs from the file's")
	}
	// The upstream has not sent the tail: nothing is stored yet.
	if _, err := s.Stat(ctx, BlobKey(sha)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the blob is in the store before the upstream sent it whole: %v", err)
	}

	// Clients that join now get the bytes so far; a range inside them gets
	// all but its last byte, which waits for the whole file to match.
	const joiners = 3
	var others []*http.Response
	for range joiners {
		resp := streamGet(t, u, "/org/big/resolve/main/big.bin")
		if !bytes.Equal(readN(t, resp.Body, head), content[:head]) {
			t.Fatal("a joining client's head differs from the file's")
		}
		others = append(others, resp)
	}
	ranged := streamGet(t, u, "/org/big/resolve/main/big.bin", "Range", "bytes=1000-50999")
	if ranged.StatusCode != http.StatusPartialContent || ranged.ContentLength != 50000 {
		t.Fatalf("range: %s, Content-Length %d", ranged.Status, ranged.ContentLength)
	}
	if !bytes.Equal(readN(t, ranged.Body, 49999), content[1000:50999]) {
		t.Fatal("the range's bytes differ from the file's")
	}
	// A range beyond what arrived waits for it.
	late := make(chan []byte, 1)
	lateCtx := clientContext(t)
	go func() {
		req, _ := http.NewRequestWithContext(lateCtx, http.MethodGet, u.srv.URL+"/org/big/resolve/main/big.bin", nil)
		req.Header.Set("Range", "bytes=200000-")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			late <- nil
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		late <- b
	}()
	if downloads := len(hub.Downloads("big.bin")); downloads != 1 {
		t.Errorf("%d downloads of big.bin from the hub so far, want 1", downloads)
	}

	gate.Open()
	rest, err := io.ReadAll(first.Body)
	if err != nil {
		t.Fatalf("first client, after the gate: %v", err)
	}
	if !bytes.Equal(append(got, rest...), content) {
		t.Fatal("the first client's file differs from the hub's")
	}
	for i, resp := range others {
		rest, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(append(content[:head:head], rest...), content) {
			t.Fatalf("joining client %d: %v, %d bytes after the head", i, err, len(rest))
		}
	}
	if last, err := io.ReadAll(ranged.Body); err != nil || !bytes.Equal(last, content[50999:51000]) {
		t.Fatalf("the range's last byte: %q, %v", last, err)
	}
	var lateBody []byte
	done := make(chan struct{})
	go func() { lateBody = <-late; close(done) }()
	watchdog(t, "the late range", done)
	if !bytes.Equal(lateBody, content[200000:]) {
		t.Fatalf("the late range: %d bytes, want %d of the file's", len(lateBody), size-200000)
	}
	u.settle(t)
	if downloads := len(hub.Downloads("big.bin")); downloads != 1 {
		t.Errorf("%d downloads of big.bin from the hub, want 1", downloads)
	}
	m, err := Resolve(ctx, s, "org/big", "main")
	if err != nil {
		t.Fatalf("the mirror lacks what was served: %v", err)
	}
	checkAgainstHub(t, s, m, hubClient(t, hub), "org/big")
	// Served from the store now.
	resp, body := u.get(t, "/org/big/resolve/main/big.bin")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
		t.Fatalf("from the store: %s, %d bytes", resp.Status, len(body))
	}
}

func TestUpstreamStreamCorruptLocal(t *testing.T) { testUpstreamStreamCorrupt(t, newStore(t)) }

func TestUpstreamStreamCorruptS3(t *testing.T) { testUpstreamStreamCorrupt(t, s3Store(t)) }

// testUpstreamStreamCorrupt: when the upstream's bytes do not match the
// file's sha256, the clients receiving them get a truncated response (the
// connection closes before Content-Length), and nothing is stored.
func testUpstreamStreamCorrupt(t *testing.T, s storage.Store) {
	ctx := context.Background()
	hub := hubtest.New(t)
	const size, head = 300 << 10, 100 << 10
	content, sha := streamRepo(t, hub, size)
	hub.Inject(hubtest.Fault{Kind: hubtest.WrongBytes, Path: "big.bin", After: size - 10, Times: -1})
	u := newUpstreamServer(t, s, hub, "", UpstreamOptions{})
	gate := hub.Hold("big.bin", head)
	t.Cleanup(gate.Open)

	var resps []*http.Response
	for range 2 {
		resp := streamGet(t, u, "/org/big/resolve/main/big.bin")
		if resp.StatusCode != http.StatusOK || resp.ContentLength != size {
			t.Fatalf("%s, Content-Length %d", resp.Status, resp.ContentLength)
		}
		if !bytes.Equal(readN(t, resp.Body, head), content[:head]) {
			t.Fatal("the head differs from the file's")
		}
		resps = append(resps, resp)
	}
	gate.Open()
	for i, resp := range resps {
		rest, err := io.ReadAll(resp.Body)
		if err == nil {
			t.Errorf("client %d: the corrupt file was received whole (%d bytes)", i, head+len(rest))
		}
		if n := head + len(rest); n >= size {
			t.Errorf("client %d received %d bytes of %d", i, n, size)
		}
	}
	u.settle(t)
	if _, err := s.Stat(ctx, BlobKey(sha)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a corrupt blob is in the store: %v", err)
	}
	if _, err := Resolve(ctx, s, "org/big", "main"); !missing(err) {
		t.Errorf("the mirror has the revision: %v", err)
	}
}

func TestUpstreamStreamConcurrentLocal(t *testing.T) { testUpstreamStreamConcurrent(t, newStore(t)) }

func TestUpstreamStreamConcurrentS3(t *testing.T) { testUpstreamStreamConcurrent(t, s3Store(t)) }

// testUpstreamStreamConcurrent: clients that ask for the same file at the
// same time share one upstream download and receive identical bytes.
func testUpstreamStreamConcurrent(t *testing.T, s storage.Store) {
	hub := hubtest.New(t)
	const size = 1<<20 + 17
	content, _ := streamRepo(t, hub, size)
	hub.Inject(hubtest.Fault{Kind: hubtest.Trickle, Path: "big.bin", Rate: 8 << 20, Times: -1})
	u := newUpstreamServer(t, s, hub, "", UpstreamOptions{})
	const clients = 6
	bodies := make([][]byte, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			resp, err := http.Get(u.srv.URL + "/org/big/resolve/main/big.bin")
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs[i] = errors.New(resp.Status)
				return
			}
			bodies[i], errs[i] = io.ReadAll(resp.Body)
		})
	}
	wg.Wait()
	for i := range clients {
		if errs[i] != nil || !bytes.Equal(bodies[i], content) {
			t.Fatalf("client %d: %v, %d bytes", i, errs[i], len(bodies[i]))
		}
	}
	u.settle(t)
	if n := len(hub.Downloads("big.bin")); n != 1 {
		t.Errorf("%d downloads of big.bin from the hub, want 1", n)
	}
}

// TestUpstreamStreamJoinLarge: a large file whose download started before
// any client asked for it (a repo info request started the fetch) is teed
// all the same, so a client that comes later gets the bytes so far at once.
func TestUpstreamStreamJoinLarge(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.New(t)
	const size, head = streamFrom + 1<<20, 1 << 20
	content, sha := streamRepo(t, hub, size)
	s := newStore(t)
	u := newUpstreamServer(t, s, hub, "", UpstreamOptions{Pull: PullOptions{Connections: 1}})
	gate := hub.Hold("big.bin", head)
	t.Cleanup(gate.Open)
	info := make(chan int, 1)
	infoCtx := clientContext(t)
	go func() {
		req, _ := http.NewRequestWithContext(infoCtx, http.MethodGet, u.srv.URL+"/api/models/org/big", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			info <- 0
			return
		}
		resp.Body.Close()
		info <- resp.StatusCode
	}()
	watchdog(t, "the download reaching the gate", gate.Reached())
	resp := streamGet(t, u, "/org/big/resolve/main/big.bin")
	if !bytes.Equal(readN(t, resp.Body, head), content[:head]) {
		t.Fatal("the joining client's head differs from the file's")
	}
	if _, err := s.Stat(ctx, BlobKey(sha)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the blob is in the store before the upstream sent it whole: %v", err)
	}
	gate.Open()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(rest, content[head:]) {
		t.Fatalf("after the gate: %d bytes, %v", len(rest), err)
	}
	if code := <-info; code != http.StatusOK {
		t.Errorf("repo info: %d", code)
	}
	u.settle(t)
	if n := len(hub.Downloads("big.bin")); n != 1 {
		t.Errorf("%d downloads of big.bin from the hub, want 1", n)
	}
}
