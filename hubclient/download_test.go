package hubclient_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
)

func newClient(t *testing.T, hub *hubtest.Hub, token string) *hubclient.Client {
	t.Helper()
	c, err := hubclient.New(hubclient.Options{
		Endpoint:       hub.URL(),
		Token:          token,
		RetryBaseDelay: 5 * time.Millisecond,
		RetryMaxDelay:  20 * time.Millisecond,
		ReadTimeout:    5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// testRepo adds a repository with small git files, LFS files (one larger
// than a few chunks), nested paths and two paths sharing content.
func testRepo(hub *hubtest.Hub, id string) (*hubtest.Repo, map[string][]byte) {
	files := map[string][]byte{
		"config.json":               []byte(`{"model_type":"bert"}`),
		"README.md":                 []byte("# test model\n"),
		"tokenizer/vocab.txt":       []byte("[PAD]\n[UNK]\nhello\n"),
		"model.safetensors":         pseudo(1, 3<<20+12345),
		"sub/dir/weights.bin":       pseudo(2, 40000),
		"sub/dir/copy-of-vocab.txt": []byte("[PAD]\n[UNK]\nhello\n"),
		"empty.txt":                 {},
	}
	r := hub.AddRepo(id)
	for p, b := range files {
		r.AddFile(p, b)
	}
	return r, files
}

func pseudo(seed uint64, n int64) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(io.NewSectionReader(hubtest.PseudoRandom(seed, n), 0, n), b)
	return b
}

func smallChunks() hubclient.DownloadOptions {
	return hubclient.DownloadOptions{ChunkSize: 256 << 10, Connections: 4, Workers: 3}
}

// checkSnapshot verifies every file of the snapshot byte for byte.
func checkSnapshot(t *testing.T, snap *hubclient.Snapshot, files map[string][]byte) {
	t.Helper()
	if len(snap.Files) != len(files) {
		t.Errorf("snapshot has %d files, want %d", len(snap.Files), len(files))
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(snap.Dir, filepath.FromSlash(p)))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs (%d bytes, want %d)", p, len(got), len(want))
		}
	}
	for _, f := range snap.Files {
		if want, ok := files[f.Path]; ok && f.SHA256 != sha(want) {
			t.Errorf("%s: reported sha256 %s, want %s", f.Path, f.SHA256, sha(want))
		}
	}
}

func TestDownloadIntoCache(t *testing.T) {
	hub := hubtest.New(t)
	repo, files := testRepo(hub, "org/model")
	c := newClient(t, hub, "")
	cache := t.TempDir()
	opts := smallChunks()
	opts.CacheDir = cache
	snap, err := c.Download(context.Background(), "org/model", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Commit != repo.Commit() {
		t.Errorf("commit %s, want %s", snap.Commit, repo.Commit())
	}
	wantDir := filepath.Join(cache, "models--org--model", "snapshots", repo.Commit())
	if snap.Dir != wantDir {
		t.Errorf("dir %s, want %s", snap.Dir, wantDir)
	}
	checkSnapshot(t, snap, files)
	ref, err := os.ReadFile(filepath.Join(cache, "models--org--model", "refs", "main"))
	if err != nil || string(ref) != repo.Commit() {
		t.Errorf("refs/main = %q, %v; want the commit without newline", ref, err)
	}
	link, err := os.Readlink(filepath.Join(wantDir, "sub", "dir", "weights.bin"))
	if want := "../../../../blobs/" + sha(files["sub/dir/weights.bin"]); err != nil || link != want {
		t.Errorf("symlink %q, %v; want %q", link, err, want)
	}
	for _, r := range hub.Requests() {
		if r.Host == "cdn" && r.Auth {
			t.Errorf("Authorization sent to the CDN: %+v", r)
		}
	}
	// The shared content was downloaded once.
	if n := len(hub.Downloads("sub/dir/copy-of-vocab.txt")) + len(hub.Downloads("tokenizer/vocab.txt")); n != 1 {
		t.Errorf("identical files downloaded %d times, want 1", n)
	}
	entries, _ := os.ReadDir(filepath.Join(cache, "models--org--model", "blobs"))
	for _, e := range entries {
		if strings.Contains(e.Name(), "incomplete") {
			t.Errorf("leftover %s in blobs/", e.Name())
		}
	}

	// A second pull downloads nothing and asks only which commit main is.
	hub.ResetRequests()
	snap2, err := c.Download(context.Background(), "org/model", "main", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap2, files)
	reqs := hub.Requests()
	if len(reqs) != 1 || reqs[0].Kind != "info" {
		t.Errorf("second pull sent %d requests (%+v), want only the repo info", len(reqs), reqs)
	}
	for _, f := range snap2.Files {
		if !f.Cached || f.Received != 0 {
			t.Errorf("%s: second pull: cached=%v received=%d", f.Path, f.Cached, f.Received)
		}
	}
	// By commit hash: not even that.
	hub.ResetRequests()
	if _, err := c.Download(context.Background(), "org/model", repo.Commit(), opts); err != nil {
		t.Fatal(err)
	}
	if reqs := hub.Requests(); len(reqs) != 0 {
		t.Errorf("pull by commit of a complete snapshot sent %d requests", len(reqs))
	}
}

func TestDownloadFaults(t *testing.T) {
	big := "model.safetensors"
	cases := []struct {
		name  string
		fault hubtest.Fault
		// maxExtra bounds the download requests beyond a clean pull's.
		maxExtra int
	}{
		{"drop mid-body", hubtest.Fault{Kind: hubtest.DropConnection, Path: big, After: 100000, Times: 3}, 3},
		{"429 retry-after", hubtest.Fault{Kind: hubtest.TooManyRequests, Path: big, RetryAfter: 1, Times: 2}, 2},
		{"503", hubtest.Fault{Kind: hubtest.ServiceUnavailable, Path: big, Times: 3}, 3},
		{"503 on api", hubtest.Fault{Kind: hubtest.ServiceUnavailable, Scope: hubtest.ScopeAPI, Times: 2}, 0},
		{"503 on resolve", hubtest.Fault{Kind: hubtest.ServiceUnavailable, Scope: hubtest.ScopeResolve, Times: 2}, 0},
		{"wrong bytes", hubtest.Fault{Kind: hubtest.WrongBytes, Path: big, After: 2 << 20}, 14},
		{"200 to a range", hubtest.Fault{Kind: hubtest.IgnoreRange, Path: big}, 0},
		{"expired CDN URL", hubtest.Fault{Kind: hubtest.ExpiredURL, Path: big, Times: 2}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hub := hubtest.New(t)
			_, files := testRepo(hub, "org/model")
			c := newClient(t, hub, "")
			opts := smallChunks()
			opts.CacheDir = t.TempDir()
			// A clean pull elsewhere gives the baseline request count.
			if _, err := c.Download(context.Background(), "org/model", "", opts); err != nil {
				t.Fatal(err)
			}
			clean := len(hub.Downloads(""))
			hub.ResetRequests()

			hub.Inject(tc.fault)
			opts.CacheDir = t.TempDir()
			start := time.Now()
			snap, err := c.Download(context.Background(), "org/model", "", opts)
			if err != nil {
				t.Fatal(err)
			}
			checkSnapshot(t, snap, files)
			got := len(hub.Downloads(""))
			if got > clean+tc.maxExtra {
				t.Errorf("%d download requests, want at most %d", got, clean+tc.maxExtra)
			}
			faulted := 0
			for _, r := range hub.Requests() {
				if r.Fault != "" {
					faulted++
				}
			}
			if faulted == 0 {
				t.Errorf("the fault never fired")
			}
			if tc.fault.Kind == hubtest.ExpiredURL {
				heads := 0
				for _, r := range hub.Requests() {
					if r.Kind == "resolve" && r.Method == "HEAD" && r.Path == big {
						heads++
					}
				}
				if heads < 2 {
					t.Errorf("%d HEAD requests for %s: the expired URL was not resolved again", heads, big)
				}
			}
			if tc.fault.Kind == hubtest.TooManyRequests && time.Since(start) < time.Second {
				t.Errorf("pull took %v: Retry-After: 1 was not honoured", time.Since(start))
			}
		})
	}
}

func TestBandwidthCapStillCorrect(t *testing.T) {
	hub := hubtest.New(t)
	_, files := testRepo(hub, "org/model")
	hub.SetBandwidth(8 << 20)
	c := newClient(t, hub, "")
	opts := smallChunks()
	opts.CacheDir = t.TempDir()
	opts.Fsync = true
	snap, err := c.Download(context.Background(), "org/model", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, files)
}

func TestWrongBytesNeverReachSnapshot(t *testing.T) {
	hub := hubtest.New(t)
	_, files := testRepo(hub, "org/model")
	hub.Inject(hubtest.Fault{Kind: hubtest.WrongBytes, Path: "sub/dir/weights.bin", Times: -1})
	c := newClient(t, hub, "")
	opts := smallChunks()
	opts.CacheDir = t.TempDir()
	_, err := c.Download(context.Background(), "org/model", "", opts)
	var ierr *hubclient.IntegrityError
	if !errors.As(err, &ierr) || !errors.Is(err, hubclient.ErrIntegrity) {
		t.Fatalf("err = %v, want an IntegrityError", err)
	}
	want := sha(files["sub/dir/weights.bin"])
	msg := err.Error()
	if !strings.Contains(msg, "sub/dir/weights.bin") || !strings.Contains(msg, want) || !strings.Contains(msg, ierr.Actual) || ierr.Actual == want {
		t.Errorf("error %q should name the file, the expected %s and the actual hash", msg, want)
	}
	repoDir := filepath.Join(opts.CacheDir, "models--org--model")
	filepath.WalkDir(filepath.Join(repoDir, "snapshots"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, "weights.bin") {
			t.Errorf("corrupt file reached the snapshot: %s", p)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(repoDir, "blobs", want)); err == nil {
		t.Errorf("corrupt blob kept under its sha256 name")
	}
	if _, err := os.Stat(filepath.Join(repoDir, "blobs", want+".incomplete")); err == nil {
		t.Errorf("corrupt partial data kept for resuming")
	}
}

// cancelAfter cancels a context once path has received n bytes.
type cancelAfter struct {
	hubclient.NopProgress
	path   string
	n      int64
	got    atomic.Int64
	cancel context.CancelFunc
}

func (p *cancelAfter) FileAdvance(path string, n int64) {
	if path == p.path && p.got.Add(n) >= p.n {
		p.cancel()
	}
}

func TestResumeAfterCancel(t *testing.T) {
	hub := hubtest.New(t)
	_, files := testRepo(hub, "org/model")
	big := "model.safetensors"
	size := int64(len(files[big]))
	hub.SetBandwidth(4 << 20) // slow enough to cancel mid-file
	c := newClient(t, hub, "")
	opts := smallChunks()
	opts.CacheDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts.Progress = &cancelAfter{path: big, n: size / 3, cancel: cancel}
	if _, err := c.Download(ctx, "org/model", "", opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	blob := filepath.Join(opts.CacheDir, "models--org--model", "blobs", sha(files[big]))
	if _, err := os.Stat(blob + ".incomplete"); err != nil {
		t.Fatalf("no partial file after cancel: %v", err)
	}
	if _, err := os.Stat(blob + ".incomplete.ranges"); err != nil {
		t.Fatalf("no range record after cancel: %v", err)
	}
	first := hub.Downloads(big)
	var sentFirst int64
	for _, r := range first {
		sentFirst += r.Sent
	}

	hub.ResetRequests()
	hub.SetBandwidth(0)
	opts.Progress = nil
	snap, err := c.Download(context.Background(), "org/model", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, files)
	var resumed hubclient.FileResult
	for _, f := range snap.Files {
		if f.Path == big {
			resumed = f
		}
	}
	if resumed.Resumed < size/3 {
		t.Errorf("resumed %d bytes, want at least %d", resumed.Resumed, size/3)
	}
	// The rerun asked only for what the first run had not written.
	var sentSecond int64
	for _, r := range hub.Downloads(big) {
		sentSecond += r.Sent
		if r.Start < resumed.Resumed && r.Start == 0 && r.End == size {
			t.Errorf("rerun fetched the whole file: %+v", r)
		}
	}
	if sentSecond != size-resumed.Resumed {
		t.Errorf("rerun received %d bytes, want %d (size %d - resumed %d)", sentSecond, size-resumed.Resumed, size, resumed.Resumed)
	}
	if _, err := os.Stat(blob + ".incomplete.ranges"); err == nil {
		t.Errorf("range record left after completion")
	}
}

func TestGatedAndPrivate(t *testing.T) {
	hub := hubtest.New(t)
	hub.SetToken("hf_secret")
	testRepo(hub, "org/gated")
	hub.Requests()
	hub.AddRepo("org/gated").SetGated(true).AddFile("model.safetensors", pseudo(3, 5000)).AddFile("a.txt", []byte("a"))
	hub.AddRepo("org/private").SetPrivate(true).AddFile("a.txt", []byte("a"))

	anon := newClient(t, hub, "")
	_, err := anon.Download(context.Background(), "org/gated", "", hubclient.DownloadOptions{CacheDir: t.TempDir()})
	if !errors.Is(err, hubclient.ErrGatedRepo) || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Errorf("gated without token: %v; want ErrGatedRepo naming HF_TOKEN", err)
	}
	_, err = anon.Download(context.Background(), "org/private", "", hubclient.DownloadOptions{CacheDir: t.TempDir()})
	if !errors.Is(err, hubclient.ErrRepoNotFound) {
		t.Errorf("private without token: %v; want ErrRepoNotFound", err)
	}
	bad := newClient(t, hub, "hf_wrong")
	_, err = bad.Download(context.Background(), "org/gated", "", hubclient.DownloadOptions{CacheDir: t.TempDir()})
	if !errors.Is(err, hubclient.ErrUnauthorized) {
		t.Errorf("wrong token: %v; want ErrUnauthorized", err)
	}
	if strings.Contains(fmt.Sprint(err), "hf_wrong") {
		t.Errorf("error shows the token: %v", err)
	}

	hub.ResetRequests()
	good := newClient(t, hub, "hf_secret")
	for _, id := range []string{"org/gated", "org/private"} {
		if _, err := good.Download(context.Background(), id, "", hubclient.DownloadOptions{CacheDir: t.TempDir()}); err != nil {
			t.Errorf("%s with token: %v", id, err)
		}
	}
	sawCDN := false
	for _, r := range hub.Requests() {
		switch r.Host {
		case "cdn":
			sawCDN = true
			if r.Auth {
				t.Errorf("token sent to the CDN: %+v", r)
			}
		case "hub":
			if !r.Auth {
				t.Errorf("no token sent to the hub: %+v", r)
			}
		}
	}
	if !sawCDN {
		t.Errorf("no CDN request: the LFS file did not go through the CDN")
	}
}

func TestErrorsAreTyped(t *testing.T) {
	hub := hubtest.New(t)
	repo := hub.AddRepo("org/model").AddFile("a.txt", []byte("a"))
	c := newClient(t, hub, "")
	ctx := context.Background()
	if _, err := c.RepoInfo(ctx, "org/missing", "main"); !errors.Is(err, hubclient.ErrRepoNotFound) {
		t.Errorf("missing repo: %v", err)
	}
	if _, err := c.RepoInfo(ctx, "org/model", "nope"); !errors.Is(err, hubclient.ErrRevisionNotFound) {
		t.Errorf("missing revision: %v", err)
	}
	_, err := c.Resolve(ctx, "org/model", "main", "b.txt")
	if !errors.Is(err, hubclient.ErrEntryNotFound) {
		t.Errorf("missing file: %v", err)
	}
	var herr *hubclient.HTTPError
	if !errors.As(err, &herr) || herr.Commit != repo.Commit() || herr.StatusCode != 404 {
		t.Errorf("HTTPError %+v: want status 404 and the commit", herr)
	}
	// Retries are bounded: a hub that always answers 503 fails after MaxRetries.
	hub.Inject(hubtest.Fault{Kind: hubtest.ServiceUnavailable, Scope: hubtest.ScopeAPI, Times: -1})
	hub.ResetRequests()
	if _, err := c.RepoInfo(ctx, "org/model", "main"); !errors.Is(err, hubclient.ErrServer) {
		t.Errorf("503 forever: %v", err)
	}
	if n := len(hub.Requests()); n != 6 {
		t.Errorf("503 forever: %d requests, want 1 + 5 retries", n)
	}
}

func TestUnsafePathsRefused(t *testing.T) {
	for _, p := range []string{"../evil", "a/../../evil", "/etc/passwd", `a\b`, "a\x00b", "a//b", "./a", "C:/x", ".cache/huggingface/download/x"} {
		t.Run(p, func(t *testing.T) {
			hub := hubtest.New(t)
			hub.AddRepo("org/model").AddFile("ok.txt", []byte("ok")).AddFile(p, []byte("pwned"))
			c := newClient(t, hub, "")
			dir := t.TempDir()
			cache := filepath.Join(dir, "cache")
			_, err := c.Download(context.Background(), "org/model", "", hubclient.DownloadOptions{CacheDir: cache})
			if !errors.Is(err, hubclient.ErrUnsafePath) {
				t.Fatalf("err = %v, want ErrUnsafePath", err)
			}
			if len(hub.Downloads("")) != 0 {
				t.Errorf("files were downloaded before the listing was checked")
			}
			_, err = c.Download(context.Background(), "org/model", "", hubclient.DownloadOptions{CacheDir: cache, LocalDir: filepath.Join(dir, "local")})
			if !errors.Is(err, hubclient.ErrUnsafePath) {
				t.Fatalf("local dir: err = %v, want ErrUnsafePath", err)
			}
			filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if b, _ := os.ReadFile(path); string(b) == "pwned" {
						t.Errorf("hostile file written at %s", path)
					}
				}
				return nil
			})
			// Excluding the hostile file lets the rest through.
			if _, err := c.Download(context.Background(), "org/model", "", hubclient.DownloadOptions{CacheDir: cache, Include: []string{"ok.txt"}}); err != nil {
				t.Errorf("with the hostile file excluded: %v", err)
			}
		})
	}
}

func TestRenamedRepoAndRevisionWithSlash(t *testing.T) {
	hub := hubtest.New(t)
	_, files := testRepo(hub, "old/name")
	hub.Rename("old/name", "new/name")
	repo := hub.AddRepo("x")
	repo.AddFile("a.txt", []byte("pr"))
	repo.Tag("refs/pr/1")
	c := newClient(t, hub, "")
	cache := t.TempDir()
	snap, err := c.Download(context.Background(), "old/name", "main", hubclient.DownloadOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, files)
	snap, err = c.Download(context.Background(), "x", "refs/pr/1", hubclient.DownloadOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := os.ReadFile(filepath.Join(cache, "models--x", "refs", "refs", "pr", "1"))
	if err != nil || string(ref) != repo.Commit() {
		t.Errorf("refs/refs/pr/1 = %q, %v", ref, err)
	}
	if p, err := hubclient.FindSnapshot(cache, "x", "refs/pr/1"); err != nil || p != snap.Dir {
		t.Errorf("FindSnapshot = %q, %v; want %q", p, err, snap.Dir)
	}
}

func TestPaginatedTree(t *testing.T) {
	hub := hubtest.New(t)
	hub.PageSize = 7
	repo := hub.AddRepo("org/many")
	want := map[string][]byte{}
	for i := range 40 {
		p := fmt.Sprintf("d%d/f%02d.txt", i%3, i)
		want[p] = []byte(p)
		repo.AddFile(p, []byte(p))
	}
	c := newClient(t, hub, "")
	files, err := c.ListTree(context.Background(), "org/many", "main")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 40 {
		t.Fatalf("%d files, want 40", len(files))
	}
	trees := 0
	for _, r := range hub.Requests() {
		if r.Kind == "tree" {
			trees++
		}
	}
	if trees < 6 {
		t.Errorf("%d tree pages requested, want >= 6 (43 entries, 7 per page)", trees)
	}
	snap, err := c.Download(context.Background(), "org/many", "", hubclient.DownloadOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, want)
}

func TestFilters(t *testing.T) {
	hub := hubtest.New(t)
	_, files := testRepo(hub, "org/model")
	c := newClient(t, hub, "")
	snap, err := c.Download(context.Background(), "org/model", "", hubclient.DownloadOptions{
		CacheDir: t.TempDir(), Include: []string{"*.json", "sub/"}, Exclude: []string{"*copy*"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range snap.Files {
		got = append(got, f.Path)
	}
	want := []string{"config.json", "sub/dir/weights.bin"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("files %v, want %v", got, want)
	}
	checkSnapshot(t, snap, map[string][]byte{"config.json": files["config.json"], "sub/dir/weights.bin": files["sub/dir/weights.bin"]})
}

func TestOffline(t *testing.T) {
	hub := hubtest.New(t)
	repo, files := testRepo(hub, "org/model")
	c := newClient(t, hub, "")
	cache := t.TempDir()
	if _, err := c.Download(context.Background(), "org/model", "", hubclient.DownloadOptions{CacheDir: cache, Offline: true}); !errors.Is(err, hubclient.ErrNotCached) {
		t.Errorf("offline with an empty cache: %v, want ErrNotCached", err)
	}
	if _, err := c.Download(context.Background(), "org/model", "", hubclient.DownloadOptions{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	hub.ResetRequests()
	snap, err := c.Download(context.Background(), "org/model", "main", hubclient.DownloadOptions{CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(hub.Requests()) != 0 {
		t.Errorf("offline pull sent requests")
	}
	if snap.Commit != repo.Commit() {
		t.Errorf("offline commit %s, want %s", snap.Commit, repo.Commit())
	}
	checkSnapshot(t, snap, files)
	// An incomplete snapshot is reported, not returned.
	os.Remove(filepath.Join(snap.Dir, "config.json"))
	if _, err := c.Download(context.Background(), "org/model", "main", hubclient.DownloadOptions{CacheDir: cache, Offline: true}); !errors.Is(err, hubclient.ErrNotCached) || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("offline with a missing file: %v", err)
	}
	// The Hub failing: a complete cached snapshot still answers.
	hub.Inject(hubtest.Fault{Kind: hubtest.ServiceUnavailable, Scope: hubtest.ScopeAny, Times: -1})
	snap, err = c.Download(context.Background(), "org/model", "main", hubclient.DownloadOptions{CacheDir: cache, Exclude: []string{"config.json"}})
	if err != nil || !snap.FromCache {
		t.Errorf("hub down, complete cache: %v (from cache %v)", err, snap != nil && snap.FromCache)
	}
	if _, err := c.Download(context.Background(), "org/model", "main", hubclient.DownloadOptions{CacheDir: cache}); !errors.Is(err, hubclient.ErrServer) {
		t.Errorf("hub down, incomplete cache: %v, want ErrServer", err)
	}
	hub.ClearFaults()
	if p, err := hubclient.CachedFile(cache, "org/model", "main", "README.md"); err != nil || filepath.Base(p) != "README.md" {
		t.Errorf("CachedFile = %q, %v", p, err)
	}
}

func TestLocalDir(t *testing.T) {
	hub := hubtest.New(t)
	repo, files := testRepo(hub, "org/model")
	c := newClient(t, hub, "")
	dir := t.TempDir()
	local := filepath.Join(dir, "out")
	opts := smallChunks()
	opts.CacheDir = filepath.Join(dir, "cache")
	opts.LocalDir = local
	snap, err := c.Download(context.Background(), "org/model", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Dir != local {
		t.Errorf("dir %s, want %s", snap.Dir, local)
	}
	checkSnapshot(t, snap, files)
	st, err := os.Lstat(filepath.Join(local, "model.safetensors"))
	if err != nil || !st.Mode().IsRegular() {
		t.Errorf("local dir file is not a regular file: %v %v", st, err)
	}
	md, err := os.ReadFile(filepath.Join(local, ".cache", "huggingface", "download", "sub", "dir", "weights.bin.metadata"))
	lines := strings.Split(string(md), "\n")
	if err != nil || len(lines) != 4 || lines[0] != repo.Commit() || lines[1] != sha(files["sub/dir/weights.bin"]) {
		t.Errorf("metadata %q, %v", md, err)
	}
	if gi, _ := os.ReadFile(filepath.Join(local, ".cache", "huggingface", ".gitignore")); string(gi) != "*" {
		t.Errorf(".gitignore = %q", gi)
	}
	hub.ResetRequests()
	if _, err := c.Download(context.Background(), "org/model", "", opts); err != nil {
		t.Fatal(err)
	}
	if n := len(hub.Downloads("")); n != 0 {
		t.Errorf("second local-dir pull downloaded %d times", n)
	}
}

func TestOpenFileVerifies(t *testing.T) {
	hub := hubtest.New(t)
	_, files := testRepo(hub, "org/model")
	c := newClient(t, hub, "")
	ctx := context.Background()
	for _, p := range []string{"config.json", "model.safetensors", "empty.txt"} {
		hub.Inject(hubtest.Fault{Kind: hubtest.DropConnection, Path: p, After: 1000})
		rc, meta, err := c.OpenFile(ctx, "org/model", "main", p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, files[p]) || meta.Size != int64(len(files[p])) {
			t.Errorf("%s: %d bytes, %v", p, len(got), err)
		}
		hub.ClearFaults()
	}
	hub.Inject(hubtest.Fault{Kind: hubtest.WrongBytes, Path: "model.safetensors", After: 5})
	rc, _, err := c.OpenFile(ctx, "org/model", "main", "model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, hubclient.ErrIntegrity) {
		t.Errorf("corrupt stream: %v, want ErrIntegrity", err)
	}
}

func TestSameBlobTwiceInOneRepo(t *testing.T) {
	hub := hubtest.New(t)
	data := pseudo(9, 100000)
	hub.AddRepo("org/m").AddFile("a.bin", data).AddFile("b/a.bin", data)
	c := newClient(t, hub, "")
	snap, err := c.Download(context.Background(), "org/m", "", hubclient.DownloadOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, map[string][]byte{"a.bin": data, "b/a.bin": data})
	var paths []string
	for _, r := range hub.Downloads("") {
		paths = append(paths, r.Path)
	}
	sort.Strings(paths)
	if len(paths) != 1 {
		t.Errorf("downloads %v, want one", paths)
	}
}

func TestStalledServerTimesOut(t *testing.T) {
	hub := hubtest.New(t)
	hub.AddRepo("org/slow").AddFile("model.safetensors", pseudo(5, 300000))
	hub.SetBandwidth(1000) // first piece, then a long silence
	c, err := hubclient.New(hubclient.Options{Endpoint: hub.URL(), ReadTimeout: 150 * time.Millisecond,
		MaxRetries: 2, RetryBaseDelay: time.Millisecond, RetryMaxDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Download(context.Background(), "org/slow", "", hubclient.DownloadOptions{CacheDir: t.TempDir(), Connections: 1})
	if err == nil || !strings.Contains(err.Error(), "read timeout") {
		t.Fatalf("err = %v, want a read timeout", err)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("gave up after %v: the read timeout did not cut the stalled connections", d)
	}
	// The server's response buffer holds the trickle back, so no attempt
	// delivers a byte: the first attempt and MaxRetries retries.
	if n := len(hub.Downloads("model.safetensors")); n != 3 {
		t.Errorf("%d attempts, want 3 (1 + MaxRetries)", n)
	}
}

func TestDownloadFileAndNoExist(t *testing.T) {
	hub := hubtest.New(t)
	repo, files := testRepo(hub, "org/model")
	c := newClient(t, hub, "")
	cache := t.TempDir()
	ctx := context.Background()
	opts := hubclient.DownloadOptions{CacheDir: cache}
	res, err := c.DownloadFile(ctx, "org/model", "main", "model.safetensors", opts)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(res.LocalPath)
	if !bytes.Equal(got, files["model.safetensors"]) || res.SHA256 != sha(got) {
		t.Errorf("DownloadFile gave %d bytes at %s", len(got), res.LocalPath)
	}
	_, err = c.DownloadFile(ctx, "org/model", "main", "missing.bin", opts)
	if !errors.Is(err, hubclient.ErrEntryNotFound) {
		t.Fatalf("missing file: %v", err)
	}
	marker := filepath.Join(cache, "models--org--model", ".no_exist", repo.Commit(), "missing.bin")
	if st, err := os.Stat(marker); err != nil || st.Size() != 0 {
		t.Errorf(".no_exist marker: %v", err)
	}
	if _, err := hubclient.CachedFile(cache, "org/model", "main", "missing.bin"); !errors.Is(err, hubclient.ErrEntryNotFound) {
		t.Errorf("CachedFile of a recorded missing file: %v", err)
	}
	hub.ResetRequests()
	if _, err := c.DownloadFile(ctx, "org/model", repo.Commit(), "model.safetensors", opts); err != nil {
		t.Fatal(err)
	}
	if n := len(hub.Requests()); n != 0 {
		t.Errorf("cached file by commit sent %d requests", n)
	}
}

type countingTransport struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func TestInjectedTransport(t *testing.T) {
	hub := hubtest.New(t)
	_, files := testRepo(hub, "org/model")
	tr := &countingTransport{next: http.DefaultTransport}
	c, err := hubclient.New(hubclient.Options{Endpoint: hub.URL(), HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := c.Download(context.Background(), "org/model", "", hubclient.DownloadOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, files)
	if got, want := tr.n.Load(), int64(len(hub.Requests())); got != want || got == 0 {
		t.Errorf("transport saw %d requests, hub answered %d", got, want)
	}
}

func TestFilesAndOpenFileStream(t *testing.T) {
	hub := hubtest.New(t)
	repo, files := testRepo(hub, "org/model")
	c := newClient(t, hub, "")
	ctx := context.Background()
	commit, list, err := c.Files(ctx, "org/model", "main", nil, []string{"*.md"})
	if err != nil {
		t.Fatal(err)
	}
	if commit != repo.Commit() || len(list) != len(files)-1 {
		t.Fatalf("Files: %s, %d files", commit, len(list))
	}
	for _, f := range list {
		rc, _, err := c.OpenFile(ctx, "org/model", commit, f.Path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, files[f.Path]) {
			t.Errorf("%s: %v", f.Path, err)
		}
		if s, ok := rc.(interface{ SHA256() string }); !ok || s.SHA256() != sha(files[f.Path]) {
			t.Errorf("%s: SHA256() missing or wrong", f.Path)
		}
	}
}

// TestConnectionRampUp: behind a per-connection cap, the pool grows from
// one connection to all of them; with FixedConnections it starts there.
func TestConnectionRampUp(t *testing.T) {
	hub := hubtest.New(t)
	hub.AddRepo("org/m").AddFile("big.bin", pseudo(7, 6<<20))
	hub.SetBandwidth(2 << 20)
	c := newClient(t, hub, "")
	for _, fixed := range []bool{false, true} {
		hub.ResetRequests()
		_, err := c.Download(context.Background(), "org/m", "", hubclient.DownloadOptions{
			CacheDir: t.TempDir(), Connections: 8, ChunkSize: 256 << 10, FixedConnections: fixed})
		if err != nil {
			t.Fatal(err)
		}
		if peak := hub.PeakDownloads(); peak != 8 {
			t.Errorf("fixed=%v: at most %d connections at once, want 8", fixed, peak)
		}
	}
}

// TestPermanentFaultGivesUp: a CDN that always cuts the connection before
// the first byte makes the pull fail after a bounded number of attempts,
// keeping nothing in the snapshot.
func TestPermanentFaultGivesUp(t *testing.T) {
	hub := hubtest.New(t)
	hub.AddRepo("org/m").AddFile("big.bin", pseudo(8, 1<<20))
	hub.Inject(hubtest.Fault{Kind: hubtest.DropConnection, After: 0, Times: -1})
	c := newClient(t, hub, "")
	cache := t.TempDir()
	_, err := c.Download(context.Background(), "org/m", "", hubclient.DownloadOptions{CacheDir: cache, ChunkSize: 256 << 10, Connections: 4})
	if !errors.Is(err, hubclient.ErrServer) || !strings.Contains(err.Error(), "big.bin") {
		t.Fatalf("err = %v, want ErrServer naming big.bin", err)
	}
	// Each connection has 1 + MaxRetries attempts; the first to give up stops the others.
	if n := len(hub.Downloads("big.bin")); n > 4*6 {
		t.Errorf("%d attempts, want at most %d", n, 4*6)
	}
	if matches, _ := filepath.Glob(filepath.Join(cache, "models--org--m", "snapshots", "*", "big.bin")); len(matches) != 0 {
		t.Errorf("snapshot has %v", matches)
	}
}

// TestStalePartialWithoutRecord: partial data that no range record vouches
// for (another tool's leftovers, or a record lost in a crash) is never
// trusted: the file downloads in full and verifies.
func TestStalePartialWithoutRecord(t *testing.T) {
	hub := hubtest.New(t)
	_, files := testRepo(hub, "org/model")
	big := "model.safetensors"
	c := newClient(t, hub, "")
	opts := smallChunks()
	opts.CacheDir = t.TempDir()
	blobs := filepath.Join(opts.CacheDir, "models--org--model", "blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := bytes.Repeat([]byte{0xAA}, len(files[big])/2)
	if err := os.WriteFile(filepath.Join(blobs, sha(files[big])+".incomplete"), stale, 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := c.Download(context.Background(), "org/model", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, snap, files)
	for _, f := range snap.Files {
		if f.Path == big && (f.Resumed != 0 || f.Received != int64(len(files[big]))) {
			t.Errorf("%s: resumed %d, received %d; want 0 and %d", big, f.Resumed, f.Received, len(files[big]))
		}
	}
}

// TestTricklingServerGivesUp: a server that cuts every connection after a
// few bytes still delivers something each time, but far less than the
// progress that refills the retry budget (1 MiB), so a download gives up
// after a bounded number of attempts instead of retrying once per few
// bytes of the file (for a large file, practically forever). A link that
// breaks every 400 KB keeps delivering enough, and completes.
func TestTricklingServerGivesUp(t *testing.T) {
	content := pseudo(9, 4<<20)
	for _, tc := range []struct {
		after    int64
		complete bool
	}{{10000, false}, {400000, true}} {
		hub := hubtest.New(t)
		hub.AddRepo("org/m").AddFile("big.bin", content)
		hub.Inject(hubtest.Fault{Kind: hubtest.DropConnection, After: tc.after, Times: -1})
		c := newClient(t, hub, "")
		ctx := context.Background()

		// Download: one range for the whole file, one connection.
		cache := t.TempDir()
		_, err := c.Download(ctx, "org/m", "", hubclient.DownloadOptions{CacheDir: cache, ChunkSize: 8 << 20, Connections: 1})
		attempts := len(hub.Downloads("big.bin"))
		if tc.complete {
			if err != nil {
				t.Errorf("Download, drop after %d bytes: %v", tc.after, err)
			}
		} else {
			if !errors.Is(err, hubclient.ErrServer) || !strings.Contains(err.Error(), "big.bin") {
				t.Errorf("Download, drop after %d bytes: err = %v, want ErrServer naming big.bin", tc.after, err)
			}
			// 1 + MaxRetries attempts, none of which refilled the budget.
			if attempts > 6 {
				t.Errorf("Download, drop after %d bytes: %d attempts, want at most 6", tc.after, attempts)
			}
			if matches, _ := filepath.Glob(filepath.Join(cache, "models--org--m", "snapshots", "*", "big.bin")); len(matches) != 0 {
				t.Errorf("snapshot has %v", matches)
			}
		}

		// OpenFile, which streams (mirror.Pull).
		hub.ResetRequests()
		rc, _, err := c.OpenFile(ctx, "org/m", "main", "big.bin")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		attempts = len(hub.Downloads("big.bin"))
		if tc.complete {
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("OpenFile, drop after %d bytes: %d bytes, %v", tc.after, len(got), err)
			}
		} else if err == nil || attempts > 6 {
			t.Errorf("OpenFile, drop after %d bytes: err = %v after %d attempts, want an error within 6", tc.after, err, attempts)
		}
	}
}
