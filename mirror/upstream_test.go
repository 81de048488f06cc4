package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/hubproto"
	"github.com/hubmirror/hubmirror/storage"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// upstreamServer serves store with hub as its upstream; token is the
// server's token for the hub.
type upstreamServer struct {
	store   storage.Store
	srv     *httptest.Server
	clock   *testClock
	metrics *Metrics
	up      *Upstream
}

// settle waits for the fetches under way.
func (u *upstreamServer) settle(t *testing.T) {
	t.Helper()
	if err := u.up.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func newUpstreamServer(t *testing.T, s storage.Store, hub *hubtest.Hub, token string, uopts UpstreamOptions) *upstreamServer {
	t.Helper()
	c, err := hubclient.New(hubclient.Options{Endpoint: hub.URL(), Token: token, RetryBaseDelay: 5 * time.Millisecond,
		RetryMaxDelay: 20 * time.Millisecond, ConnectRetries: 1, ConnectRetryDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	uopts.Now = clock.Now
	u, err := NewUpstream(c, uopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Wait(context.Background()) }) // before the store goes
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(s, ServerOptions{Upstream: u, Metrics: m, SmallFile: 64 << 10}))
	t.Cleanup(srv.Close)
	return &upstreamServer{store: s, srv: srv, clock: clock, metrics: m, up: u}
}

func (u *upstreamServer) get(t *testing.T, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp, body
}

// info gets a repo's info and returns its commit.
func (u *upstreamServer) info(t *testing.T, path string) (string, *http.Response) {
	t.Helper()
	resp, body := u.get(t, path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, resp.Status, body)
	}
	var info hubproto.ModelInfo
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	return info.SHA, resp
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func contentOf(t *testing.T, f *hubtest.File) []byte {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(f.Content, 0, f.Content.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hubRequests(hub *hubtest.Hub, repo, kind string) int {
	n := 0
	for _, r := range hub.Requests() {
		if (repo == "" || r.Repo == repo) && (kind == "" || r.Kind == kind) {
			n++
		}
	}
	return n
}

func TestUpstreamPullThroughLocal(t *testing.T) { testUpstreamPullThrough(t, newStore(t)) }

func TestUpstreamPullThroughS3(t *testing.T) { testUpstreamPullThrough(t, s3Store(t)) }

// testUpstreamPullThrough: repos the mirror does not hold are served
// through the upstream (info, tree, paths-info, file bytes, a tag, a
// commit id, a dataset) and are in the mirror afterwards.
func testUpstreamPullThrough(t *testing.T, s storage.Store) {
	ctx := context.Background()
	hub := hubtest.New(t)
	repo := hubRepo(hub, "org/model", 1)
	first := repo.Commit()
	v1, err := hubClient(t, hub).RepoInfo(ctx, "org/model", "v1")
	if err != nil {
		t.Fatal(err)
	}
	repo.AddFile("later.txt", []byte("a later commit\n"))
	data := hub.AddRepo("datasets/org/data").AddFiles(map[string][]byte{"README.md": []byte("# data\n"), "train/0.jsonl": []byte("{\"id\": 0}\n")})
	u := newUpstreamServer(t, s, hub, "", UpstreamOptions{})

	// A file first: the whole revision is fetched, then served.
	for _, p := range []string{"model.safetensors", "onnx/model.onnx", "config.json"} {
		resp, body := u.get(t, "/org/model/resolve/main/"+p)
		if resp.StatusCode != http.StatusOK || string(body) != string(contentOf(t, repo.File(p))) {
			t.Fatalf("%s: %s, %d bytes, want the hub's %d", p, resp.Status, len(body), repo.File(p).Content.Size())
		}
		if got := resp.Header.Get(hubproto.HeaderRepoCommit); got != repo.Commit() {
			t.Errorf("%s: X-Repo-Commit %s, want %s", p, got, repo.Commit())
		}
		if resp.Header.Get(HeaderUpstream) != "" {
			t.Errorf("%s: %s: %s", p, HeaderUpstream, resp.Header.Get(HeaderUpstream))
		}
	}
	if sha, _ := u.info(t, "/api/models/org/model"); sha != repo.Commit() {
		t.Errorf("info names %s, want %s", sha, repo.Commit())
	}
	resp, body := u.get(t, "/api/models/org/model/tree/main/onnx")
	var entries []hubproto.TreeEntry
	if err := json.Unmarshal(body, &entries); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("tree: %s %s", resp.Status, body)
	}
	if len(entries) != 2 || entries[0].Path != "onnx/README.md" || entries[1].Path != "onnx/model.onnx" {
		t.Errorf("tree of onnx: %+v", entries)
	}
	u.settle(t)
	m, err := Resolve(ctx, s, "org/model", "main")
	if err != nil {
		t.Fatalf("the mirror lacks what was served: %v", err)
	}
	if m.Commit != repo.Commit() {
		t.Errorf("mirror main is %s, want %s", m.Commit, repo.Commit())
	}
	checkAgainstHub(t, s, m, hubClient(t, hub), "org/model")

	// A tag, through paths-info; a commit id, through info.
	req, _ := http.NewRequest(http.MethodPost, u.srv.URL+"/api/models/org/model/paths-info/v1", strings.NewReader("paths=config.json"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	presp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pbody, _ := io.ReadAll(presp.Body)
	presp.Body.Close()
	if presp.StatusCode != http.StatusOK || !strings.Contains(string(pbody), `"config.json"`) {
		t.Fatalf("paths-info at v1: %s %s", presp.Status, pbody)
	}
	if commit, err := ResolveCommit(ctx, s, "org/model", "v1"); err != nil || commit != v1.SHA {
		t.Errorf("mirror v1 = %s, %v; want %s", commit, err, v1.SHA)
	}
	if sha, _ := u.info(t, "/api/models/org/model/revision/"+first); sha != first {
		t.Errorf("info at %s names %s", first, sha)
	}

	// A dataset.
	resp, body = u.get(t, "/datasets/org/data/resolve/main/train/0.jsonl")
	if resp.StatusCode != http.StatusOK || string(body) != "{\"id\": 0}\n" {
		t.Fatalf("dataset file: %s %q", resp.Status, body)
	}
	u.settle(t)
	if m, err := Resolve(ctx, s, "datasets/org/data", "main"); err != nil || m.Commit != data.Commit() || len(m.Files) != 2 {
		t.Errorf("mirror's dataset: %v, %v", m, err)
	}
	// A file the revision lacks is EntryNotFound, and fetches nothing more.
	before := len(hub.Requests())
	resp, _ = u.get(t, "/org/model/resolve/main/nope.bin")
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get(hubproto.HeaderErrorCode) != hubproto.ErrorEntryNotFound {
		t.Errorf("missing file: %s %s", resp.Status, resp.Header.Get(hubproto.HeaderErrorCode))
	}
	if len(hub.Requests()) != before {
		t.Errorf("a missing file within TTL asked the hub %d times", len(hub.Requests())-before)
	}
	// Fetches: main, v1, the commit id, the dataset.
	if got := counterValue(t, u.metrics.upstreamFetches); got != 4 {
		t.Errorf("upstream fetches counted %v, want 4", got)
	}
	if got := counterValue(t, u.metrics.upstreamFailures); got != 0 {
		t.Errorf("upstream failures counted %v", got)
	}
}

// TestUpstreamCommitNoRef: a commit id the mirror lacks is pulled without
// setting a ref.
func TestUpstreamCommitNoRef(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.New(t)
	repo := hub.AddRepo("org/model").AddFile("a.txt", []byte("one\n"))
	first := repo.Commit()
	repo.AddFile("a.txt", []byte("two\n"))
	u := newUpstreamServer(t, newStore(t), hub, "", UpstreamOptions{})
	resp, body := u.get(t, "/org/model/resolve/"+first+"/a.txt")
	if resp.StatusCode != http.StatusOK || string(body) != "one\n" {
		t.Fatalf("%s %q", resp.Status, body)
	}
	u.settle(t)
	if _, err := ReadManifest(ctx, u.store, "org/model", first); err != nil {
		t.Fatal(err)
	}
	if refs, err := ListRefs(ctx, u.store, "org/model"); err != nil || len(refs) != 0 {
		t.Errorf("refs %v, %v; want none", refs, err)
	}
	if got := counterValue(t, u.metrics.upstreamFetches); got != 1 {
		t.Errorf("upstream fetches counted %v, want 1", got)
	}
}

// TestUpstreamSharedFetch: concurrent requests for a revision the mirror
// lacks share one upstream resolution and one download of each file.
func TestUpstreamSharedFetch(t *testing.T) {
	hub := hubtest.New(t)
	repo := hubRepo(hub, "org/model", 2)
	hub.SetBandwidth(16 << 20) // slow enough that the requests overlap
	u := newUpstreamServer(t, newStore(t), hub, "", UpstreamOptions{})
	paths := []string{"/org/model/resolve/main/model.safetensors", "/api/models/org/model", "/api/models/org/model/tree/main",
		"/org/model/resolve/main/config.json", "/org/model/resolve/main/model.safetensors", "/api/models/org/model/revision/main"}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(paths))
	for range 4 {
		for _, p := range paths {
			wg.Go(func() {
				resp, err := http.Get(u.srv.URL + p)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("%s: %s %v", p, resp.Status, err)
					return
				}
				if strings.HasSuffix(p, "model.safetensors") && string(body) != string(contentOf(t, repo.File("model.safetensors"))) {
					errs <- fmt.Errorf("%s: wrong bytes", p)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := hubRequests(hub, "org/model", "info"); n != 1 {
		t.Errorf("the hub was asked for the repo's info %d times, want 1", n)
	}
	size := repo.File("model.safetensors").Content.Size()
	if n := hub.BytesSent("model.safetensors"); n != size {
		t.Errorf("the hub sent %d bytes of model.safetensors, want %d (one fetch)", n, size)
	}
	if got := counterValue(t, u.metrics.upstreamFetches); got != 1 {
		t.Errorf("upstream fetches counted %v, want 1", got)
	}
}

// TestUpstreamTTL: a branch is resolved upstream again after the TTL, not
// before; a commit id never.
func TestUpstreamTTL(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.New(t)
	repo := hub.AddRepo("org/model").AddFile("a.txt", []byte("one\n"))
	first := repo.Commit()
	u := newUpstreamServer(t, newStore(t), hub, "", UpstreamOptions{TTL: time.Minute})
	if sha, _ := u.info(t, "/api/models/org/model"); sha != first {
		t.Fatalf("info names %s, want %s", sha, first)
	}
	repo.AddFile("a.txt", []byte("two\n"))
	second := repo.Commit()
	u.clock.Advance(59 * time.Second)
	if sha, _ := u.info(t, "/api/models/org/model"); sha != first {
		t.Errorf("within the TTL: info names %s, want the mirrored %s", sha, first)
	}
	if _, body := u.get(t, "/org/model/resolve/main/a.txt"); string(body) != "one\n" {
		t.Errorf("within the TTL: a.txt is %q", body)
	}
	if n := hubRequests(hub, "org/model", "info"); n != 1 {
		t.Errorf("within the TTL the hub was asked %d times", n)
	}
	u.clock.Advance(2 * time.Second)
	if sha, _ := u.info(t, "/api/models/org/model"); sha != second {
		t.Errorf("after the TTL: info names %s, want the hub's new %s", sha, second)
	}
	if _, body := u.get(t, "/org/model/resolve/main/a.txt"); string(body) != "two\n" {
		t.Errorf("after the TTL: a.txt is %q", body)
	}
	if commit, err := ResolveCommit(ctx, u.store, "org/model", "main"); err != nil || commit != second {
		t.Errorf("the mirror's main is %s, %v; want %s", commit, err, second)
	}
	// Commit ids are never re-resolved.
	before := len(hub.Requests())
	u.clock.Advance(time.Hour)
	if sha, _ := u.info(t, "/api/models/org/model/revision/"+first); sha != first {
		t.Errorf("info at %s names %s", first, sha)
	}
	if len(hub.Requests()) != before {
		t.Errorf("a mirrored commit id made %d hub requests", len(hub.Requests())-before)
	}
}

// TestUpstreamUnreachable: with the upstream gone, what the mirror holds
// is served from it, and the answer says so; what it lacks is a 502.
func TestUpstreamUnreachable(t *testing.T) {
	hub := hubtest.New(t)
	repo := hub.AddRepo("org/model").AddFile("a.txt", []byte("one\n")).AddContent("w.bin", hubtest.PseudoRandom(3, 200<<10), true)
	u := newUpstreamServer(t, newStore(t), hub, "", UpstreamOptions{TTL: time.Minute})
	if sha, _ := u.info(t, "/api/models/org/model"); sha != repo.Commit() {
		t.Fatalf("info names %s", sha)
	}
	hub.Close()
	u.clock.Advance(2 * time.Minute)
	sha, resp := u.info(t, "/api/models/org/model")
	if sha != repo.Commit() {
		t.Errorf("info names %s", sha)
	}
	if got := resp.Header.Get(HeaderUpstream); got != "unreachable; served from mirror" {
		t.Errorf("%s: %q", HeaderUpstream, got)
	}
	resp, body := u.get(t, "/org/model/resolve/main/w.bin")
	if resp.StatusCode != http.StatusOK || string(body) != string(contentOf(t, repo.File("w.bin"))) {
		t.Errorf("w.bin: %s, %d bytes", resp.Status, len(body))
	}
	if got := resp.Header.Get(HeaderUpstream); got != "unreachable; served from mirror" {
		t.Errorf("%s: %q", HeaderUpstream, got)
	}
	resp, body = u.get(t, "/api/models/org/absent")
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(HeaderUpstream) != "unreachable" {
		t.Errorf("a repo the mirror lacks: %s %s %s", resp.Status, resp.Header.Get(HeaderUpstream), body)
	}
	if got := counterValue(t, u.metrics.upstreamFailures); got != 2 {
		t.Errorf("upstream failures counted %v, want 2", got)
	}
}

// TestUpstreamAllowDeny: only repos the allow list admits and the deny
// list does not are fetched; the others are 404 without a hub request.
func TestUpstreamAllowDeny(t *testing.T) {
	hub := hubtest.New(t)
	for _, id := range []string{"org/model", "org/secret-model", "other/model", "datasets/org/data"} {
		hub.AddRepo(id).AddFile("a.txt", []byte(id))
	}
	u := newUpstreamServer(t, newStore(t), hub, "", UpstreamOptions{Allow: []string{"org/*", "datasets/org/*"}, Deny: []string{"org/secret-*"}})
	for _, c := range []struct {
		path string
		repo string
		ok   bool
	}{
		{"/org/model/resolve/main/a.txt", "org/model", true},
		{"/datasets/org/data/resolve/main/a.txt", "datasets/org/data", true},
		{"/org/secret-model/resolve/main/a.txt", "org/secret-model", false},
		{"/api/models/other/model", "other/model", false},
		{"/api/datasets/other/model", "datasets/other/model", false},
	} {
		resp, body := u.get(t, c.path)
		if c.ok {
			if resp.StatusCode != http.StatusOK || string(body) != c.repo {
				t.Errorf("%s: %s %q", c.path, resp.Status, body)
			}
			continue
		}
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get(hubproto.HeaderErrorCode) != hubproto.ErrorRepoNotFound {
			t.Errorf("%s: %s %s, want 404 RepoNotFound", c.path, resp.Status, resp.Header.Get(hubproto.HeaderErrorCode))
		}
		if n := hubRequests(hub, c.repo, ""); n != 0 {
			t.Errorf("%s: %d hub requests for a repo not admitted", c.path, n)
		}
	}
	if _, err := NewUpstream(hubClient(t, hub), UpstreamOptions{Deny: []string{"org/[a-"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a malformed glob: %v", err)
	}
}

// TestUpstreamToken: a gated repo is fetched with the server's token; a
// client's token is never sent upstream.
func TestUpstreamToken(t *testing.T) {
	hub := hubtest.New(t)
	hub.SetToken("hub-token")
	hub.AddRepo("org/gated").AddFile("a.txt", []byte("gated\n")).SetGated(true)

	anon := newUpstreamServer(t, newStore(t), hub, "", UpstreamOptions{})
	resp, _ := anon.get(t, "/org/gated/resolve/main/a.txt", "Authorization", "Bearer hub-token")
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get(hubproto.HeaderErrorCode) != hubproto.ErrorRepoNotFound {
		t.Errorf("without the server's token: %s %s", resp.Status, resp.Header.Get(hubproto.HeaderErrorCode))
	}
	for _, r := range hub.Requests() {
		if r.Auth {
			t.Errorf("the client's token reached the hub: %+v", r)
		}
	}
	withToken := newUpstreamServer(t, newStore(t), hub, "hub-token", UpstreamOptions{})
	resp, body := withToken.get(t, "/org/gated/resolve/main/a.txt")
	if resp.StatusCode != http.StatusOK || string(body) != "gated\n" {
		t.Errorf("with the server's token: %s %q", resp.Status, body)
	}
}

// TestUpstreamCorrupt: a file the upstream serves with a wrong byte is
// neither served whole nor stored: the client, which received it as it
// streamed, gets a response cut short of its Content-Length; a later
// request gets a 502 answer.
func TestUpstreamCorrupt(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.New(t)
	repo := hub.AddRepo("org/model").AddFile("config.json", []byte(`{}`)).AddContent("w.bin", hubtest.PseudoRandom(4, 300<<10), true)
	hub.Inject(hubtest.Fault{Kind: hubtest.WrongBytes, Path: "w.bin", After: 1000, Times: -1})
	u := newUpstreamServer(t, newStore(t), hub, "", UpstreamOptions{})
	resp, err := http.Get(u.srv.URL + "/org/model/resolve/main/w.bin")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && (err == nil || int64(len(body)) >= resp.ContentLength) {
		t.Errorf("a corrupt upstream file: %s, %d bytes of %d, %v", resp.Status, len(body), resp.ContentLength, err)
	}
	if string(body) == string(contentOf(t, repo.File("w.bin"))) {
		t.Error("the file was served")
	}
	u.settle(t)
	again, body := u.get(t, "/org/model/resolve/main/w.bin")
	if again.StatusCode != http.StatusBadGateway {
		t.Errorf("asked again: %s, %d bytes", again.Status, len(body))
	}
	if _, err := Resolve(ctx, u.store, "org/model", "main"); !missing(err) {
		t.Errorf("the mirror holds the revision: %v", err)
	}
	if _, err := u.store.Stat(ctx, BlobKey(repo.File("w.bin").SHA256)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the corrupt blob was stored: %v", err)
	}
	if got := counterValue(t, u.metrics.upstreamFailures); got != 1 {
		t.Errorf("upstream failures counted %v, want 1", got)
	}
}

// TestUpstreamFileFirst: a file of a revision the mirror lacks is served
// once its own blob is stored, without waiting for the rest of the
// revision: here the rest cannot be fetched at all (the hub fails every
// download of another file), and the file is served all the same; the
// revision is served once the hub delivers it.
func TestUpstreamFileFirst(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.New(t)
	repo := hub.AddRepo("org/model").AddContent("a-big.bin", hubtest.PseudoRandom(6, 200<<10), true).AddFile("z.json", []byte(`{"z": 1}`))
	hub.Inject(hubtest.Fault{Kind: hubtest.ServiceUnavailable, Path: "a-big.bin", Times: -1})
	u := newUpstreamServer(t, newStore(t), hub, "", UpstreamOptions{Pull: PullOptions{Jobs: 1}, TTL: time.Minute})
	resp, body := u.get(t, "/org/model/resolve/main/z.json")
	if resp.StatusCode != http.StatusOK || string(body) != `{"z": 1}` {
		t.Fatalf("z.json: %s %q", resp.Status, body)
	}
	if got := resp.Header.Get(hubproto.HeaderRepoCommit); got != repo.Commit() {
		t.Errorf("X-Repo-Commit %s, want %s", got, repo.Commit())
	}
	u.settle(t)
	if _, err := ReadManifest(ctx, u.store, "org/model", repo.Commit()); !missing(err) {
		t.Fatalf("the revision was fetched in spite of the fault: %v", err)
	}
	resp, _ = u.get(t, "/org/model/resolve/main/a-big.bin")
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("a-big.bin while the hub fails it: %s", resp.Status)
	}
	hub.ClearFaults()
	u.clock.Advance(time.Minute)
	resp, body = u.get(t, "/org/model/resolve/main/a-big.bin")
	if resp.StatusCode != http.StatusOK || string(body) != string(contentOf(t, repo.File("a-big.bin"))) {
		t.Errorf("a-big.bin once the hub delivers it: %s, %d bytes", resp.Status, len(body))
	}
	u.settle(t)
	m, err := Resolve(ctx, u.store, "org/model", "main")
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstHub(t, u.store, m, hubClient(t, hub), "org/model")
}

// TestUpstreamFailing: an upstream that answers errors (503 after every
// retry) is reported like an unreachable one: what the mirror holds is
// served from it, with the header.
func TestUpstreamFailing(t *testing.T) {
	hub := hubtest.New(t)
	repo := hub.AddRepo("org/model").AddFile("a.txt", []byte("one\n"))
	u := newUpstreamServer(t, newStore(t), hub, "", UpstreamOptions{TTL: time.Minute})
	if _, body := u.get(t, "/org/model/resolve/main/a.txt"); string(body) != "one\n" {
		t.Fatalf("a.txt: %q", body)
	}
	u.settle(t)
	hub.Inject(hubtest.Fault{Kind: hubtest.ServiceUnavailable, Scope: hubtest.ScopeAny, Times: -1})
	u.clock.Advance(2 * time.Minute)
	resp, body := u.get(t, "/org/model/resolve/main/a.txt")
	if resp.StatusCode != http.StatusOK || string(body) != "one\n" || resp.Header.Get(hubproto.HeaderRepoCommit) != repo.Commit() {
		t.Errorf("a.txt with the hub failing: %s %q", resp.Status, body)
	}
	if got := resp.Header.Get(HeaderUpstream); got != "failed; served from mirror" {
		t.Errorf("%s: %q", HeaderUpstream, got)
	}
}
