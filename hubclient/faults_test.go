package hubclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
)

// countingDialer is a transport whose dials are counted, and fail with
// fail when it is set.
func countingDialer(dials *atomic.Int32, fail error) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			if fail != nil {
				return nil, fail
			}
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// TestUnreachableHost: a refused connection or a name that does not
// resolve is not a "hub server error": it says which host could not be
// reached, wraps ErrUnreachable, and is given up on after the short
// ConnectRetries budget (1 + 2 attempts by default), not after the
// MaxRetries of a failing server.
func TestUnreachableHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	dnsErr := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "hub.invalid", IsNotFound: true}}
	for _, tc := range []struct {
		name, endpoint, host string
		fail                 error
	}{
		{"connection refused", "http://" + refused, refused, nil},
		{"no such host", "http://hub.invalid", "hub.invalid", dnsErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dials atomic.Int32
			c, err := hubclient.New(hubclient.Options{Endpoint: tc.endpoint, HTTPClient: countingDialer(&dials, tc.fail),
				RetryBaseDelay: time.Millisecond, RetryMaxDelay: time.Millisecond, ConnectRetryDelay: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Download(context.Background(), "org/m", "", hubclient.DownloadOptions{CacheDir: t.TempDir()})
			var ue *hubclient.UnreachableError
			if !errors.Is(err, hubclient.ErrUnreachable) || !errors.As(err, &ue) || ue.Host != tc.host {
				t.Fatalf("err = %v, want an *UnreachableError for %s", err, tc.host)
			}
			msg := err.Error()
			t.Log(msg)
			if errors.Is(err, hubclient.ErrServer) || strings.Contains(msg, "hub server error") ||
				!strings.Contains(msg, "could not reach "+tc.host) {
				t.Errorf("message %q: want it to say %s could not be reached, not a server error", msg, tc.host)
			}
			if n := dials.Load(); n != 3 {
				t.Errorf("%d connection attempts, want 3 (1 + the default ConnectRetries)", n)
			}
		})
	}
}

// TestUnreachableHubFallsBackToCache: a pull of a branch whose Hub cannot be
// reached answers from a complete snapshot in the cache, as huggingface_hub
// does.
func TestUnreachableHubFallsBackToCache(t *testing.T) {
	hub := hubtest.New(t)
	_, files := testRepo(hub, "org/model")
	c, err := hubclient.New(hubclient.Options{Endpoint: hub.URL(), ConnectRetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	if _, err := c.Download(context.Background(), "org/model", "", hubclient.DownloadOptions{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	hub.Close()
	snap, err := c.Download(context.Background(), "org/model", "", hubclient.DownloadOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.FromCache {
		t.Errorf("snapshot not marked FromCache")
	}
	checkSnapshot(t, snap, files)
}

// hostileHub answers repo info with a fixed commit, the tree listing with
// tree, and resolve requests with resolve (nil: 404).
func hostileHub(t *testing.T, tree func(w io.Writer), resolve http.HandlerFunc) string {
	const commit = "0123456789abcdef0123456789abcdef01234567"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/models/org/m/revision/"):
			fmt.Fprintf(w, `{"id":"org/m","sha":%q,"siblings":[]}`, commit)
		case strings.HasPrefix(r.URL.Path, "/api/models/org/m/tree/"):
			tree(w)
		case strings.HasPrefix(r.URL.Path, "/org/m/resolve/") && resolve != nil:
			w.Header().Set("X-Repo-Commit", commit)
			resolve(w, r)
		default:
			w.Header().Set("X-Repo-Commit", commit)
			http.Error(w, "not found", http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestHostileValuesStayShortInErrors: a listing entry with a huge path, a
// path beyond MaxPathBytes, or a huge header fails the pull with a short
// error (it quotes at most a few hundred bytes of any server value), and a
// huge entry is refused without reading it all.
func TestHostileValuesStayShortInErrors(t *testing.T) {
	huge := strings.Repeat("a", 8<<20) + `\`
	long := strings.Repeat("d/", 1000) + "f.bin"
	blob := "0123456789abcdef0123456789abcdef01234567"
	entry := func(path string) string {
		return fmt.Sprintf(`{"type":"file","oid":%q,"size":3,"path":%q}`, blob, path)
	}
	for _, tc := range []struct {
		name    string
		tree    func(w io.Writer)
		resolve http.HandlerFunc
		want    error
	}{
		{"8 MB path", func(w io.Writer) { io.WriteString(w, "["+entry("ok.txt")+","+entry(huge)+"]") }, nil, hubclient.ErrServer},
		{"2000-byte path", func(w io.Writer) { io.WriteString(w, "["+entry(long)+"]") }, nil, hubclient.ErrServer},
		{"100 KB ETag", func(w io.Writer) { io.WriteString(w, "["+entry("a.txt")+"]") }, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", strings.Repeat("e", 100<<10))
			w.Header().Set("Content-Length", "3")
		}, hubclient.ErrServer},
		{"100 KB error message", func(w io.Writer) { io.WriteString(w, "["+entry("a.txt")+"]") }, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Error-Message", strings.Repeat("m", 100<<10))
			w.WriteHeader(http.StatusForbidden)
		}, hubclient.ErrForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := hubclient.New(hubclient.Options{Endpoint: hostileHub(t, tc.tree, tc.resolve),
				RetryBaseDelay: time.Millisecond, RetryMaxDelay: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Download(context.Background(), "org/m", "", hubclient.DownloadOptions{CacheDir: t.TempDir()})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %.2000v, want %v", err, tc.want)
			}
			t.Logf("%v", err)
			if n := len(err.Error()); n > 1500 {
				t.Errorf("error message of %d bytes: %.300s...", n, err)
			}
		})
	}
}

// TestTricklingAnswersGiveUp: a body sent far below Options.SpeedLimit (a
// download, a streamed file, a tree listing) fails its attempt once it has
// been that slow for SpeedTime, and the call gives up after 1 + MaxRetries
// such attempts instead of lasting forever; a metadata answer that takes
// longer than APITimeout fails likewise, whatever its speed.
func TestTricklingAnswersGiveUp(t *testing.T) {
	hub := hubtest.New(t)
	repo := hub.AddRepo("org/m").AddFile("big.bin", pseudo(11, 300000)).AddFile("config.json", []byte(`{}`))
	opts := hubclient.Options{Endpoint: hub.URL(), MaxRetries: 1, RetryBaseDelay: time.Millisecond, RetryMaxDelay: time.Millisecond,
		SpeedLimit: 1024, SpeedTime: 100 * time.Millisecond}
	c, err := hubclient.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	// Without the limits, each of these would take minutes to hours.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Requests are counted from mark on (ResetRequests would race with the
	// answers of abandoned attempts still being written).
	mark := 0
	count := func(kind string) int {
		n := 0
		for _, r := range hub.Requests()[mark:] {
			if (r.Kind == kind || kind == "download" && r.Kind == "blob") && r.Method == http.MethodGet {
				n++
			}
		}
		return n
	}
	reset := func() { mark = len(hub.Requests()) }
	check := func(what string, err error, want string, attempts int) {
		t.Helper()
		t.Logf("%s: %v", what, err)
		if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", what, err, want)
		}
		if attempts != 2 {
			t.Errorf("%s: %d attempts, want 2 (1 + MaxRetries)", what, attempts)
		}
	}

	hub.Inject(hubtest.Fault{Kind: hubtest.Trickle, Rate: 200, Times: -1})
	_, err = c.Download(ctx, "org/m", "", hubclient.DownloadOptions{CacheDir: t.TempDir(), Include: []string{"big.bin"}})
	check("Download", err, "too slow", count("download"))

	reset()
	rc, _, err := c.OpenFile(ctx, "org/m", "main", "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	check("OpenFile", err, "too slow", count("download"))
	hub.ClearFaults()

	// The tree listing of a commit (repo info is not needed).
	reset()
	hub.Inject(hubtest.Fault{Kind: hubtest.Trickle, Scope: hubtest.ScopeAPI, Rate: 20, Times: -1})
	_, err = c.Download(ctx, "org/m", repo.Commit(), hubclient.DownloadOptions{CacheDir: t.TempDir()})
	check("tree listing", err, "too slow", count("tree"))

	// Fast enough, but never done: the API timeout.
	opts.SpeedLimit, opts.APITimeout = -1, 300*time.Millisecond
	if c, err = hubclient.New(opts); err != nil {
		t.Fatal(err)
	}
	reset()
	_, err = c.Download(ctx, "org/m", repo.Commit(), hubclient.DownloadOptions{CacheDir: t.TempDir()})
	check("tree listing past the API timeout", err, "API timeout", count("tree"))
}

// killAt copies the partial download of a file, as a kill would leave it,
// once n bytes of it are written, then cancels the download.
type killAt struct {
	hubclient.NopProgress
	path, from, to string
	n              int64
	got            atomic.Int64
	once           sync.Once
	cancel         context.CancelFunc
	err            error
}

func (k *killAt) FileAdvance(path string, n int64) {
	if path != k.path || k.got.Add(n) < k.n {
		return
	}
	k.once.Do(func() {
		for _, suffix := range []string{".incomplete", ".incomplete.ranges"} {
			data, err := os.ReadFile(k.from + suffix)
			if err == nil {
				err = os.WriteFile(k.to+suffix, data, 0o644)
			}
			k.err = errors.Join(k.err, err)
		}
		k.cancel()
	})
}

// TestKillKeepsRecentProgress: a download killed after 20 MiB of a file
// (faster than the 2 s between timed records) resumes from at least
// 20 MiB minus the 8 MiB between records by size.
func TestKillKeepsRecentProgress(t *testing.T) {
	hub := hubtest.New(t)
	content := pseudo(12, 24<<20)
	hub.AddRepo("org/m").AddFile("big.bin", content)
	c := newClient(t, hub, "")
	first, second := t.TempDir(), t.TempDir()
	blobs := filepath.Join("models--org--m", "blobs")
	if err := os.MkdirAll(filepath.Join(second, blobs), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const killed = 20 << 20
	kill := &killAt{path: "big.bin", n: killed, cancel: cancel,
		from: filepath.Join(first, blobs, sha(content)), to: filepath.Join(second, blobs, sha(content))}
	_, err := c.Download(ctx, "org/m", "", hubclient.DownloadOptions{CacheDir: first, Connections: 1, Progress: kill})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if kill.err != nil {
		t.Fatalf("the state at the kill: %v", kill.err)
	}
	snap, err := c.Download(context.Background(), "org/m", "", hubclient.DownloadOptions{CacheDir: second})
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, map[string][]byte{"big.bin": content})
	if got := snap.Files[0].Resumed; got < killed-8<<20 {
		t.Errorf("resumed %d bytes after a kill at %d, want at least %d", got, killed, killed-8<<20)
	}
}

// TestRepoPathLength: paths up to MaxPathBytes are valid; a longer one is
// refused with an error that quotes only the start of it.
func TestRepoPathLength(t *testing.T) {
	ok := strings.Repeat("abcdefg/", hubclient.MaxPathBytes/8-2) + "model.bin"
	if len(ok) > hubclient.MaxPathBytes {
		t.Fatalf("test path of %d bytes", len(ok))
	}
	if err := hubclient.ValidateRepoPath(ok); err != nil {
		t.Errorf("a path of %d bytes: %v", len(ok), err)
	}
	long := strings.Repeat("a", 1<<20)
	err := hubclient.ValidateRepoPath(long)
	if !errors.Is(err, hubclient.ErrUnsafePath) || len(err.Error()) > 400 {
		t.Errorf("a path of 1 MiB: error of %d bytes: %.300v", len(err.Error()), err)
	}
}
