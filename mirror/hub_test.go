package mirror

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/storage"
)

func hubClient(t *testing.T, hub *hubtest.Hub) *hubclient.Client {
	t.Helper()
	c, err := hubclient.New(hubclient.Options{Endpoint: hub.URL(), RetryBaseDelay: 5 * time.Millisecond, RetryMaxDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hubRepo adds a repo with regular and LFS files in nested directories, at
// two commits: the tag v1 (the first) and main.
func hubRepo(hub *hubtest.Hub, id string, seed uint64) *hubtest.Repo {
	r := hub.AddRepo(id)
	r.AddContent("config.json", hubtest.Bytes([]byte(`{"model_type": "gpt2", "n_embd": 8}`)), false)
	r.AddContent("tokenizer.json", hubtest.Bytes(randomBytes(seed, 40<<10)), false) // a regular file larger than the LFS threshold
	r.AddContent("model.safetensors", hubtest.PseudoRandom(seed+1, 3<<20+5), true)
	r.AddContent("onnx/model.onnx", hubtest.PseudoRandom(seed+2, 600<<10), true)
	r.AddContent("onnx/README.md", hubtest.Bytes([]byte("# onnx\n")), false)
	r.AddContent("empty.txt", hubtest.Bytes(nil), false)
	r.Tag("v1")
	r.AddContent("config.json", hubtest.Bytes([]byte(`{"model_type": "gpt2", "n_embd": 16}`)), false)
	return r
}

// checkAgainstHub checks that m lists exactly the files of the hub repo at
// its commit, with their hashes and LFS flags, and that every blob is there
// and verifies.
func checkAgainstHub(t *testing.T, s storage.Store, m *Manifest, c *hubclient.Client, repo string) {
	t.Helper()
	_, files, err := c.Files(context.Background(), repo, m.Commit, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(m.Files) {
		t.Errorf("%s@%s: manifest has %d files, the hub %d", repo, m.Commit, len(m.Files), len(files))
	}
	for _, f := range files {
		e, ok := m.File(f.Path)
		if !ok {
			t.Errorf("manifest lacks %s", f.Path)
			continue
		}
		if e.Size != f.Size || e.GitOID != f.BlobID || e.LFS != (f.LFS != nil) || (f.LFS != nil && e.SHA256 != f.LFS.SHA256) {
			t.Errorf("%s: entry %+v, hub %+v", f.Path, e, f)
		}
		if _, err := VerifyBlob(context.Background(), s, e); err != nil {
			t.Error(err)
		}
	}
}

func TestPullLocal(t *testing.T) { testPull(t, newStore(t)) }

func TestPullS3(t *testing.T) { testPull(t, s3Store(t)) }

func testPull(t *testing.T, s storage.Store) {
	ctx := context.Background()
	hub := hubtest.New(t)
	repo := hubRepo(hub, "org/model", 1)
	c := hubClient(t, hub)

	res, err := Pull(ctx, c, s, "org/model", "main", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit != repo.Commit() || res.Revision != "main" || res.Files != 6 || res.DownloadedFiles != 6 || !res.ManifestWritten || !res.RefUpdated {
		t.Errorf("first pull: %+v", res)
	}
	m, err := Resolve(ctx, s, "org/model", "main")
	if err != nil {
		t.Fatal(err)
	}
	if m.Commit != repo.Commit() || m.Source.Kind != "hub" || m.Source.Revision != "main" {
		t.Errorf("manifest commit %s source %+v", m.Commit, m.Source)
	}
	checkAgainstHub(t, s, m, c, "org/model")

	// A second pull downloads and writes nothing.
	hub.ResetRequests()
	before := objects(t, s)
	res, err = Pull(ctx, c, s, "org/model", "main", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.DownloadedFiles != 0 || res.Uploaded != 0 || res.ManifestWritten || res.RefUpdated {
		t.Errorf("second pull: %+v", res)
	}
	if n := len(hub.Downloads("")); n != 0 {
		t.Errorf("second pull: %d downloads from the hub", n)
	}
	if after := objects(t, s); len(after) != len(before) {
		t.Errorf("second pull changed the store: %d objects, then %d", len(before), len(after))
	}

	// The older tag: only its own config.json is fetched (the unchanged
	// regular files' sha256 comes from the main manifest).
	hub.ResetRequests()
	res, err = Pull(ctx, c, s, "org/model", "v1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit == repo.Commit() || res.Revision != "v1" || res.DownloadedFiles != 1 || res.Uploaded != 1 {
		t.Errorf("pull of v1: %+v", res)
	}
	if d := hub.Downloads(""); len(d) != 1 || d[0].Path != "config.json" {
		t.Errorf("pull of v1 downloaded %+v", d)
	}
	v1, err := Resolve(ctx, s, "org/model", "refs/tags/v1")
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstHub(t, s, v1, c, "org/model")

	// By commit hash: no ref is set.
	res, err = Pull(ctx, c, s, "org/model", v1.Commit, PullOptions{})
	if err != nil || res.Revision != "" || res.RefUpdated || res.Commit != v1.Commit {
		t.Errorf("pull by commit: %+v %v", res, err)
	}
	refs, _ := ListRefs(ctx, s, "org/model")
	if len(refs) != 2 {
		t.Errorf("refs after a pull by commit: %+v", refs)
	}

	// A filtered pull keeps the Hub's commit with the selected files and
	// records the filter; a later pull that selects more is refused.
	other := hubRepo(hub, "org/other", 10)
	res, err = Pull(ctx, c, s, "org/other", "main", PullOptions{Include: []string{"*.json"}})
	if err != nil || res.Commit != other.Commit() || !res.ManifestWritten {
		t.Fatalf("filtered pull: %+v %v", res, err)
	}
	om, err := Resolve(ctx, s, "org/other", "main")
	if err != nil || om.Commit != other.Commit() || len(om.Files) != 2 || strings.Join(om.Source.Include, ",") != "*.json" {
		t.Fatalf("filtered pull: %+v %v", om, err)
	}
	if _, err := Pull(ctx, c, s, "org/other", "main", PullOptions{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "cannot be extended") {
		t.Errorf("unfiltered pull over a filtered commit: %v", err)
	}
	// Selecting a subset of what is there is fine and changes nothing.
	if res, err := Pull(ctx, c, s, "org/other", "main", PullOptions{Include: []string{"config.json"}}); err != nil || res.ManifestWritten || res.DownloadedFiles != 0 {
		t.Errorf("narrower pull: %+v %v", res, err)
	}

	if _, err := Pull(ctx, c, s, "org/missing", "main", PullOptions{}); !errors.Is(err, hubclient.ErrRepoNotFound) {
		t.Errorf("pull of a missing repo: %v", err)
	}
	if _, err := Pull(ctx, c, s, "org/model", "nope", PullOptions{}); !errors.Is(err, hubclient.ErrRevisionNotFound) {
		t.Errorf("pull of a missing revision: %v", err)
	}
}

// TestPullFaults: wrong bytes from the Hub never reach the mirror; broken
// connections are resumed.
func TestPullFaults(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	hub := hubtest.New(t)
	repo := hubRepo(hub, "org/model", 1)
	c := hubClient(t, hub)

	hub.Inject(hubtest.Fault{Kind: hubtest.WrongBytes, Path: "model.safetensors", After: 1 << 20, Times: -1})
	hub.Inject(hubtest.Fault{Kind: hubtest.WrongBytes, Path: "tokenizer.json", After: 100, Times: -1})
	_, err := Pull(ctx, c, s, "org/model", "main", PullOptions{Jobs: 1})
	if !errors.Is(err, storage.ErrHashMismatch) && !errors.Is(err, hubclient.ErrIntegrity) {
		t.Fatalf("pull of corrupt bytes: %v", err)
	}
	for k := range objects(t, s) {
		if !strings.HasPrefix(k, "blobs/") {
			t.Errorf("failed pull left %s", k)
		}
	}
	checkBlobs(t, s)
	for _, p := range []string{"model.safetensors", "tokenizer.json"} {
		if _, err := s.Stat(ctx, BlobKey(repo.File(p).SHA256)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the corrupt %s reached the mirror: %v", p, err)
		}
	}

	hub.ClearFaults()
	hub.Inject(hubtest.Fault{Kind: hubtest.DropConnection, Path: "model.safetensors", After: 1 << 20, Times: 2})
	res, err := Pull(ctx, c, s, "org/model", "main", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.ManifestWritten || res.Commit != repo.Commit() {
		t.Errorf("pull after the faults: %+v", res)
	}
	if d := hub.Downloads("model.safetensors"); len(d) < 3 {
		t.Errorf("model.safetensors: %d downloads, want the broken ones resumed", len(d))
	}
	m, _ := Resolve(ctx, s, "org/model", "main")
	checkAgainstHub(t, s, m, c, "org/model")
}

// TestPullParallelRanges: behind a per-connection cap, Pull with
// Connections 4 streams a multi-range LFS file over several connections at
// once (at least 2, after the ramp-up) into the store, byte for byte; with
// Connections 1, over one.
func TestPullParallelRanges(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.New(t)
	content := hubtest.PseudoRandom(11, 3<<20+17)
	hub.AddRepo("org/big").AddContent("model.safetensors", content, true)
	hub.SetBandwidth(2 << 20)
	c := hubClient(t, hub)
	want := make([]byte, content.Size())
	if _, err := content.ReadAt(want, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ conns, peak int }{{4, 2}, {1, 1}} {
		s := newStore(t)
		hub.ResetRequests()
		res, err := Pull(ctx, c, s, "org/big", "main", PullOptions{Connections: tc.conns, ChunkSize: 256 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if res.Downloaded != content.Size() || !res.ManifestWritten {
			t.Errorf("connections %d: %+v", tc.conns, res)
		}
		if peak := hub.PeakDownloads(); peak < tc.peak || (tc.conns == 1 && peak != 1) {
			t.Errorf("connections %d: %d downloads at once, want %d", tc.conns, peak, tc.peak)
		}
		ranged := 0
		for _, d := range hub.Downloads("model.safetensors") {
			if d.Range != "" {
				ranged++
			}
		}
		if tc.conns > 1 && ranged != 13 {
			t.Errorf("connections %d: %d ranged GETs, want 13", tc.conns, ranged)
		}
		m, err := Resolve(ctx, s, "org/big", "main")
		if err != nil {
			t.Fatal(err)
		}
		e, _ := m.File("model.safetensors")
		rc, err := OpenFile(ctx, s, e, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("connections %d: the mirror holds %d bytes, %v; want the file", tc.conns, len(got), err)
		}
		checkAgainstHub(t, s, m, c, "org/big")
	}
}

// cancelAfter cancels a context once n bytes were uploaded.
type cancelAfter struct {
	n      atomic.Int64
	limit  int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Hashed(string, int64) {}
func (c *cancelAfter) Uploaded(_ string, n int64) {
	if c.n.Add(n) >= c.limit {
		c.cancel()
	}
}
func (c *cancelAfter) FileDone(string, int64, bool) {}

// TestPullInterrupted: a pull cancelled mid-stream leaves complete blobs
// and no manifest; the rerun downloads only what is missing.
func TestPullInterrupted(t *testing.T) {
	s := newStore(t)
	hub := hubtest.New(t)
	repo := hubRepo(hub, "org/model", 1)
	c := hubClient(t, hub)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Pull(ctx, c, s, "org/model", "main", PullOptions{Jobs: 1, Progress: &cancelAfter{limit: 2 << 20, cancel: cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull: %v", err)
	}
	for k := range objects(t, s) {
		if !strings.HasPrefix(k, "blobs/") {
			t.Errorf("cancelled pull left %s", k)
		}
	}
	done := checkBlobs(t, s)
	if done >= 6 {
		t.Fatalf("every blob was uploaded before the cancel (%d)", done)
	}
	present := map[string]bool{}
	for _, p := range []string{"config.json", "tokenizer.json", "model.safetensors", "onnx/model.onnx", "onnx/README.md", "empty.txt"} {
		_, err := s.Stat(context.Background(), BlobKey(repo.File(p).SHA256))
		present[p] = err == nil
	}
	hub.ResetRequests()
	res, err := Pull(context.Background(), c, s, "org/model", "main", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.ManifestWritten || res.Present != done || res.Uploaded != 6-done {
		t.Errorf("rerun: %+v, %d blobs were there", res, done)
	}
	// Only the missing LFS files and the regular files (whose sha256 the
	// mirror cannot know without a manifest) were downloaded again.
	for _, d := range hub.Downloads("") {
		if present[d.Path] && repo.File(d.Path).LFS {
			t.Errorf("the rerun downloaded %s, which the mirror had", d.Path)
		}
	}
	m, _ := Resolve(context.Background(), s, "org/model", "main")
	checkAgainstHub(t, s, m, c, "org/model")
	if n := checkBlobs(t, s); n != 6 {
		t.Errorf("%d blobs, want 6", n)
	}
}

// TestPullStreamsWithoutSpooling: LFS files go straight from the Hub into
// storage; a regular file is held in memory only.
func TestPullStreamsWithoutSpooling(t *testing.T) {
	s := newStore(t)
	hub := hubtest.New(t)
	hubRepo(hub, "org/model", 1)
	c := hubClient(t, hub)
	tmp := t.TempDir()
	var peakSpool atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int64
			ents, _ := readDirSizes(tmp)
			for _, sz := range ents {
				n += sz
			}
			if n > peakSpool.Load() {
				peakSpool.Store(n)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, err := Pull(context.Background(), c, s, "org/model", "main", PullOptions{TempDir: tmp})
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if peakSpool.Load() != 0 {
		t.Errorf("pull spooled %d bytes to disk", peakSpool.Load())
	}
	// With a tiny memory budget the regular file goes to a spool file,
	// which is removed afterwards.
	s2 := newStore(t)
	if _, err := Pull(context.Background(), c, s2, "org/model", "main", PullOptions{TempDir: tmp, SpoolMemory: 1 << 10}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := readDirSizes(tmp); len(ents) != 0 {
		t.Errorf("spool files left: %v", ents)
	}
}

// readDirSizes returns the sizes of the files in dir.
func readDirSizes(dir string) (map[string]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			out[e.Name()] = info.Size()
		}
	}
	return out, nil
}
