package hubclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
)

const testChunk = 64 << 10

// parallelRepo adds, for each size, an LFS file "lfs-<size>" and a regular
// file "git-<size>" of that many pseudo-random bytes.
func parallelRepo(hub *hubtest.Hub, id string, sizes []int64) map[string][]byte {
	r := hub.AddRepo(id)
	files := map[string][]byte{}
	for i, n := range sizes {
		data := pseudo(uint64(100+i), n)
		for _, lfs := range []bool{true, false} {
			p := fmt.Sprintf("git-%d", n)
			if lfs {
				p = fmt.Sprintf("lfs-%d", n)
			}
			r.AddContent(p, hubtest.Bytes(data), lfs)
			files[p] = data
		}
	}
	return files
}

// parallelGoroutines counts the goroutines running code of a parallel
// reader (its fetchers).
func parallelGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "hubclient.(*parallelReader)")
}

// checkNoFetchers fails when a fetcher goroutine is still running.
func checkNoFetchers(t *testing.T) {
	t.Helper()
	if n := parallelGoroutines(); n != 0 {
		t.Errorf("%d goroutines of a parallel reader still run", n)
	}
}

func readParallel(t *testing.T, c *hubclient.Client, repo, path string, opts hubclient.ParallelOptions) ([]byte, error) {
	t.Helper()
	rc, _, err := c.OpenFileParallel(context.Background(), repo, "main", path, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if cerr := rc.Close(); cerr != nil && err == nil {
		t.Errorf("%s: Close: %v", path, cerr)
	}
	return got, err
}

// TestOpenFileParallelContent: LFS and regular files of every size class
// come out byte for byte, verified; a file of at most one range takes one
// request without a Range (OpenFile's path), a larger one one ranged GET
// per range; the token goes to the hub, never to the CDN.
func TestOpenFileParallelContent(t *testing.T) {
	hub := hubtest.New(t)
	sizes := []int64{0, 1, testChunk, testChunk + 1, 10*testChunk + 123}
	files := parallelRepo(hub, "org/p", sizes)
	hub.SetToken("hf_secret")
	c := newClient(t, hub, "hf_secret")
	opts := hubclient.ParallelOptions{Connections: 4, ChunkSize: testChunk}
	for _, n := range sizes {
		for _, kind := range []string{"lfs", "git"} {
			p := fmt.Sprintf("%s-%d", kind, n)
			hub.ResetRequests()
			rc, meta, err := c.OpenFileParallel(context.Background(), "org/p", "main", p, opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, files[p]) || meta.Size != n {
				t.Errorf("%s: %d bytes (meta %d), %v", p, len(got), meta.Size, err)
			}
			if s, ok := rc.(interface{ SHA256() string }); !ok || s.SHA256() != sha(files[p]) {
				t.Errorf("%s: SHA256() missing or wrong", p)
			}
			// Another Read after EOF stays at EOF.
			if k, err := rc.Read(make([]byte, 1)); k != 0 || err != io.EOF {
				t.Errorf("%s: Read after EOF: %d, %v", p, k, err)
			}
			rc.Close()
			gets := hub.Downloads(p)
			wantGets := int((n + testChunk - 1) / testChunk)
			if n <= testChunk {
				wantGets = 1
			}
			if len(gets) != wantGets {
				t.Errorf("%s: %d GETs, want %d", p, len(gets), wantGets)
			}
			for _, g := range gets {
				if ranged := g.Range != ""; ranged != (n > testChunk) {
					t.Errorf("%s: GET with Range %q", p, g.Range)
				}
				if g.Auth != (g.Host == "hub") {
					t.Errorf("%s: GET on the %s with Authorization %v: the token goes to the hub only", p, g.Host, g.Auth)
				}
			}
		}
	}
	checkNoFetchers(t)
}

// TestOpenFileParallelConnections: behind a per-connection cap, the
// reader has several ranged GETs in flight at once: all of them with
// FixedConnections, at least two after the ramp-up without (all of them
// unless CPU contention hides the gain of the second); with Connections 1
// it has one.
func TestOpenFileParallelConnections(t *testing.T) {
	hub := hubtest.New(t)
	data := pseudo(3, 48*testChunk)
	hub.AddRepo("org/p").AddContent("big.bin", hubtest.Bytes(data), true)
	hub.SetBandwidth(1 << 20)
	c := newClient(t, hub, "")
	for _, tc := range []struct {
		conns int
		fixed bool
		peak  int
	}{{4, true, 4}, {4, false, 2}, {1, false, 1}} {
		hub.ResetRequests()
		got, err := readParallel(t, c, "org/p", "big.bin", hubclient.ParallelOptions{Connections: tc.conns, FixedConnections: tc.fixed, ChunkSize: testChunk})
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("connections %d: %d bytes, %v", tc.conns, len(got), err)
		}
		if peak := hub.PeakDownloads(); peak < tc.peak || peak > tc.conns {
			t.Errorf("connections %d, fixed %v: %d downloads at once, want %d to %d", tc.conns, tc.fixed, peak, tc.peak, tc.conns)
		}
	}
	checkNoFetchers(t)
}

// TestOpenFileParallelWindow: a reader that reads nothing holds at most
// Connections+1 ranges: the fetchers stop there.
func TestOpenFileParallelWindow(t *testing.T) {
	hub := hubtest.New(t)
	data := pseudo(4, 30*testChunk)
	hub.AddRepo("org/p").AddContent("big.bin", hubtest.Bytes(data), true)
	c := newClient(t, hub, "")
	opts := hubclient.ParallelOptions{Connections: 3, FixedConnections: true, ChunkSize: testChunk}
	if got, want := opts.MaxMemory(), int64(4*testChunk); got != want {
		t.Errorf("MaxMemory %d, want %d", got, want)
	}
	rc, _, err := c.OpenFileParallel(context.Background(), "org/p", "main", "big.bin", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for len(hub.Downloads("big.bin")) < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // room for a fetcher that would run ahead
	if n := len(hub.Downloads("big.bin")); n != 4 {
		t.Errorf("%d ranges fetched before any Read, want 4 (Connections+1)", n)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("%d bytes, %v", len(got), err)
	}
}

// TestOpenFileParallelFaults: every fault of the test hub ends with the
// right bytes or the right typed error, and no fetcher left running.
func TestOpenFileParallelFaults(t *testing.T) {
	const size = 10*testChunk + 77
	for _, tc := range []struct {
		name  string
		fault hubtest.Fault
		check func(t *testing.T, hub *hubtest.Hub, err error)
	}{
		{"drop mid-range", hubtest.Fault{Kind: hubtest.DropConnection, After: testChunk / 3, Times: 3}, func(t *testing.T, hub *hubtest.Hub, err error) {
			// A broken range resumes from the bytes it has, not its start.
			resumed := 0
			for _, r := range hub.Downloads("big.bin") {
				if r.Start%testChunk != 0 {
					resumed++
				}
			}
			if resumed == 0 {
				t.Error("no GET resumed a range in its middle")
			}
		}},
		{"429 with Retry-After", hubtest.Fault{Kind: hubtest.TooManyRequests, RetryAfter: 1, Times: 2}, nil},
		{"503", hubtest.Fault{Kind: hubtest.ServiceUnavailable, Times: 3}, nil},
		{"200 to a Range", hubtest.Fault{Kind: hubtest.IgnoreRange}, func(t *testing.T, hub *hubtest.Hub, err error) {
			var full bool
			for _, r := range hub.Downloads("") {
				full = full || (r.Range != "" && r.Status == http.StatusOK)
			}
			if !full {
				t.Error("no 200 answer to a Range request: the fault did not hit")
			}
		}},
		{"expired URL", hubtest.Fault{Kind: hubtest.ExpiredURL, Times: 2}, func(t *testing.T, hub *hubtest.Hub, err error) {
			resolves := 0
			for _, r := range hub.Requests() {
				if r.Kind == "resolve" && r.Method == http.MethodHead {
					resolves++
				}
			}
			if resolves < 2 {
				t.Errorf("%d resolves: the expired URL was not resolved again", resolves)
			}
		}},
		{"wrong first bytes", hubtest.Fault{Kind: hubtest.WrongBytes, After: 5}, checkIntegrity},
		{"wrong last byte", hubtest.Fault{Kind: hubtest.WrongBytes, After: size - 1, Times: -1}, checkIntegrity},
		{"connection always cut", hubtest.Fault{Kind: hubtest.DropConnection, After: 0, Times: -1}, func(t *testing.T, hub *hubtest.Hub, err error) {
			if !errors.Is(err, hubclient.ErrServer) || !strings.Contains(err.Error(), "big.bin") {
				t.Errorf("err = %v, want ErrServer naming big.bin", err)
			}
			// Each of 4 connections: 1 + MaxRetries attempts at most.
			if n := len(hub.Downloads("big.bin")); n > 4*6 {
				t.Errorf("%d attempts, want at most %d", n, 4*6)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := hubtest.New(t)
			data := pseudo(5, size)
			hub.AddRepo("org/p").AddContent("big.bin", hubtest.Bytes(data), true)
			hub.AddRepo("org/g").AddContent("big.bin", hubtest.Bytes(data), false)
			c := newClient(t, hub, "")
			repos := []string{"org/p", "org/g"}
			if tc.fault.Kind == hubtest.ExpiredURL {
				repos = repos[:1] // only the CDN's URLs expire
			}
			for _, repo := range repos {
				hub.ClearFaults()
				hub.ResetRequests()
				f := tc.fault
				f.Path = "big.bin"
				hub.Inject(f)
				got, err := readParallel(t, c, repo, "big.bin", hubclient.ParallelOptions{Connections: 4, ChunkSize: testChunk})
				if tc.check != nil {
					tc.check(t, hub, err)
				}
				if tc.check == nil || tc.fault.Kind == hubtest.IgnoreRange || tc.fault.Kind == hubtest.ExpiredURL || tc.fault.Kind == hubtest.DropConnection && tc.fault.Times > 0 {
					if err != nil || !bytes.Equal(got, data) {
						t.Errorf("%s: %d bytes, %v", repo, len(got), err)
					}
				}
			}
			checkNoFetchers(t)
		})
	}
}

// checkIntegrity: corrupt bytes end in an *IntegrityError, never io.EOF.
func checkIntegrity(t *testing.T, _ *hubtest.Hub, err error) {
	t.Helper()
	var ie *hubclient.IntegrityError
	if !errors.As(err, &ie) || !errors.Is(err, hubclient.ErrIntegrity) {
		t.Errorf("err = %v, want an *IntegrityError", err)
	}
}

// TestOpenFileParallelCorruptNeverEOF: with the last byte flipped (in the
// last range only), every byte but the last comes out, and the Read that
// would end the stream returns an *IntegrityError, never io.EOF.
func TestOpenFileParallelCorruptNeverEOF(t *testing.T) {
	hub := hubtest.New(t)
	size := int64(3*testChunk + 9) // 4 ranges; the window holds 3
	data := pseudo(6, size)
	hub.AddRepo("org/p").AddContent("big.bin", hubtest.Bytes(data), true)
	c := newClient(t, hub, "")
	rc, _, err := c.OpenFileParallel(context.Background(), "org/p", "main", "big.bin", hubclient.ParallelOptions{Connections: 2, ChunkSize: testChunk})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	// The first 3 ranges are served before any Read; the last one is only
	// asked for once the first is read out: the fault hits it alone.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		served := 0
		for _, r := range hub.Downloads("big.bin") {
			if r.Sent == r.End-r.Start && r.Sent > 0 {
				served++
			}
		}
		if served == 3 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	hub.Inject(hubtest.Fault{Kind: hubtest.WrongBytes, Path: "big.bin", After: size - 1})
	var got []byte
	buf := make([]byte, 7000)
	for {
		n, err := rc.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			t.Fatal("a corrupt stream ended with io.EOF")
		}
		if err != nil {
			if !errors.Is(err, hubclient.ErrIntegrity) {
				t.Errorf("err = %v, want ErrIntegrity", err)
			}
			break
		}
	}
	if int64(len(got)) != size || !bytes.Equal(got[:size-1], data[:size-1]) || got[size-1] == data[size-1] {
		t.Errorf("%d bytes; want all of them, only the last one wrong", len(got))
	}
	if n := len(hub.Downloads("big.bin")); n != 4 {
		t.Errorf("%d GETs, want 4", n)
	}
}

// TestOpenFileParallelCloseAndCancel: Close in the middle of a capped
// stream returns promptly and leaves no fetcher; so does a Read waiting
// when Close is called from another goroutine; a cancelled context makes
// Read fail.
func TestOpenFileParallelCloseAndCancel(t *testing.T) {
	hub := hubtest.New(t)
	data := pseudo(7, 40*testChunk)
	hub.AddRepo("org/p").AddContent("big.bin", hubtest.Bytes(data), true)
	hub.SetBandwidth(256 << 10) // 2.5 s per range: a whole read takes long
	c := newClient(t, hub, "")
	opts := hubclient.ParallelOptions{Connections: 4, ChunkSize: testChunk}

	t.Run("close", func(t *testing.T) {
		rc, _, err := c.OpenFileParallel(context.Background(), "org/p", "main", "big.bin", opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rc.Close()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Close took %v", d)
		}
		checkNoFetchers(t)
		if _, err := rc.Read(make([]byte, 10)); err == nil || err == io.EOF {
			t.Errorf("Read after Close: %v, want an error", err)
		}
	})
	t.Run("close while reading", func(t *testing.T) {
		rc, _, err := c.OpenFileParallel(context.Background(), "org/p", "main", "big.bin", opts)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, rc)
			done <- err
		}()
		time.Sleep(100 * time.Millisecond)
		rc.Close()
		select {
		case err := <-done:
			if err == nil {
				t.Error("a Read cut by Close returned no error")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Read still waits after Close")
		}
		checkNoFetchers(t)
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		rc, _, err := c.OpenFileParallel(ctx, "org/p", "main", "big.bin", opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		cancel()
		_, err = io.Copy(io.Discard, rc)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		rc.Close()
		checkNoFetchers(t)
	})
}

// TestOpenFileExpiredURL: OpenFile (one connection) resolves the file again
// when the CDN refuses its signed URL, as downloads do.
func TestOpenFileExpiredURL(t *testing.T) {
	hub := hubtest.New(t)
	data := pseudo(8, 300000)
	hub.AddRepo("org/p").AddContent("big.bin", hubtest.Bytes(data), true)
	hub.Inject(hubtest.Fault{Kind: hubtest.ExpiredURL, Path: "big.bin"})
	c := newClient(t, hub, "")
	rc, _, err := c.OpenFile(context.Background(), "org/p", "main", "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("%d bytes, %v", len(got), err)
	}
}
