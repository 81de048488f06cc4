package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient/hubtest"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

// concRepo is a repository of the test hub and the bytes of its files.
type concRepo struct {
	id    string // qualified ("datasets/org/name" for a dataset)
	hub   *hubtest.Repo
	files map[string][]byte
}

func addConcRepo(hub *hubtest.Hub, id string, files map[string][]byte) *concRepo {
	r := hub.AddRepo(id)
	r.AddFiles(files)
	return &concRepo{id: id, hub: r, files: files}
}

// pseudoRandom returns n deterministic bytes.
func pseudoRandom(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// smallFiles returns n small files, each with content of its own.
func smallFiles(repo, dir string, n int) map[string][]byte {
	m := map[string][]byte{}
	for i := range n {
		m[fmt.Sprintf("%s/part-%04d.jsonl", dir, i)] = fmt.Appendf(nil, "{\"repo\": %q, \"row\": %d}\n", repo, i)
	}
	return m
}

// proc is a hubmirror process.
type proc struct {
	args     []string
	cmd      *exec.Cmd
	out, err syncBuffer
	done     chan struct{}
}

func startProc(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{args: args, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for the process to end (at most until deadline) and returns
// its exit code (-1 when killed by a signal).
func (p *proc) wait(t *testing.T, deadline time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(deadline):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("hubmirror %s did not end within %s\nstdout:\n%s\nstderr:\n%s", strings.Join(p.args, " "), deadline, p.out.String(), p.err.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// mustSucceed waits for the process and fails the test unless it exits 0.
func (p *proc) mustSucceed(t *testing.T) {
	t.Helper()
	if code := p.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("hubmirror %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(p.args, " "), code, p.out.String(), p.err.String())
	}
}

// loadErrors collects the first errors the clients saw.
type loadErrors struct {
	mu   sync.Mutex
	errs []string
	n    int
}

func (l *loadErrors) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if len(l.errs) < 10 {
		l.errs = append(l.errs, fmt.Sprintf(format, args...))
	}
}

// clientLoad runs workers clients against the served repos until stop is
// closed and each kind of request was made at least minEach times: HEADs,
// full GETs and range GETs of every file, checking every byte against the
// hub's content.
func clientLoad(endpoint string, repos []*concRepo, workers, minEach int, stop <-chan struct{}, errs *loadErrors) (heads, gets, ranges *atomic.Int64, wait func()) {
	heads, gets, ranges = new(atomic.Int64), new(atomic.Int64), new(atomic.Int64)
	type target struct {
		url, commit string
		data        []byte
	}
	var targets []target
	for _, r := range repos {
		for p, data := range r.files {
			// A dataset's qualified id starts with datasets/, as its URLs.
			targets = append(targets, target{url: endpoint + "/" + r.id + "/resolve/main/" + p, commit: r.hub.Commit(), data: data})
		}
	}
	client := &http.Client{Timeout: time.Minute}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; ; i++ {
				select {
				case <-stop:
					if heads.Load() >= int64(minEach) && gets.Load() >= int64(minEach) && ranges.Load() >= int64(minEach) {
						return
					}
				default:
				}
				tg := targets[rng.IntN(len(targets))]
				switch i % 3 {
				case 0:
					resp, err := client.Head(tg.url)
					if err != nil {
						errs.add("HEAD %s: %v", tg.url, err)
						continue
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(tg.data)) || resp.Header.Get("X-Repo-Commit") != tg.commit {
						errs.add("HEAD %s: %s, length %d (want %d), commit %q", tg.url, resp.Status, resp.ContentLength, len(tg.data), resp.Header.Get("X-Repo-Commit"))
					}
					heads.Add(1)
				case 1:
					body, status, err := get(client, tg.url, "")
					if err != nil || status != http.StatusOK || !bytes.Equal(body, tg.data) {
						errs.add("GET %s: status %d, %d bytes (want %d), equal %v, %v%s", tg.url, status, len(body), len(tg.data), bytes.Equal(body, tg.data), err, errorBody(status, body))
					}
					gets.Add(1)
				case 2:
					start := rng.IntN(len(tg.data))
					end := start + rng.IntN(min(len(tg.data)-start, 1<<20)) // inclusive
					body, status, err := get(client, tg.url, fmt.Sprintf("bytes=%d-%d", start, end))
					if err != nil || status != http.StatusPartialContent || !bytes.Equal(body, tg.data[start:end+1]) {
						errs.add("GET %s bytes=%d-%d: status %d, %d bytes (want %d), %v%s", tg.url, start, end, status, len(body), end+1-start, err, errorBody(status, body))
					}
					ranges.Add(1)
				}
			}
		}()
	}
	return heads, gets, ranges, wg.Wait
}

func get(client *http.Client, url, rng string) ([]byte, int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return body, resp.StatusCode, err
}

// sameFile requests one file n times at once (full GETs, range GETs and
// HEADs, released together), checking every byte against the hub's
// content; wait returns when all answered.
func sameFile(endpoint string, r *concRepo, path string, n int, errs *loadErrors) (wait func()) {
	url := endpoint + "/" + r.id + "/resolve/main/" + path
	data := r.files[path]
	client := &http.Client{Timeout: time.Minute}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			switch i % 3 {
			case 0:
				body, status, err := get(client, url, "")
				if err != nil || status != http.StatusOK || !bytes.Equal(body, data) {
					errs.add("concurrent GET %s: status %d, %d bytes (want %d), equal %v, %v%s", url, status, len(body), len(data), bytes.Equal(body, data), err, errorBody(status, body))
				}
			case 1:
				from, to := i*len(data)/(n+1), len(data)-1-i
				body, status, err := get(client, url, fmt.Sprintf("bytes=%d-%d", from, to))
				if err != nil || status != http.StatusPartialContent || !bytes.Equal(body, data[from:to+1]) {
					errs.add("concurrent GET %s bytes=%d-%d: status %d, %d bytes (want %d), %v%s", url, from, to, status, len(body), to+1-from, err, errorBody(status, body))
				}
			case 2:
				resp, err := client.Head(url)
				if err != nil {
					errs.add("concurrent HEAD %s: %v", url, err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) || resp.Header.Get("X-Repo-Commit") != r.hub.Commit() {
					errs.add("concurrent HEAD %s: %s, length %d (want %d), commit %q", url, resp.Status, resp.ContentLength, len(data), resp.Header.Get("X-Repo-Commit"))
				}
			}
		}()
	}
	close(start)
	return wg.Wait
}

// errorBody is ": " and body when status is not a success.
func errorBody(status int, body []byte) string {
	if status < 300 {
		return ""
	}
	return ": " + string(body)
}

// gcLoop runs `gc --grace 0s` again and again until stop is closed (and at
// least twice), failing the test on a run that does not exit 0.
func gcLoop(t *testing.T, bin string, env []string, url string, stop <-chan struct{}) (runs *atomic.Int64, wait func()) {
	runs = new(atomic.Int64)
	var failed sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				if runs.Load() >= 2 {
					return
				}
			default:
			}
			cmd := exec.Command(bin, "gc", url, "--grace", "0s")
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				failed.Do(func() { t.Errorf("gc --grace 0s (run %d): %v\n%s", runs.Load()+1, err, out) })
			}
			runs.Add(1)
		}
	}()
	return runs, func() { <-done }
}

// checkManifests checks that the mirror holds, for each repo, the hub's
// commit on main with every file of it (path, size, sha256).
func checkManifests(t *testing.T, store storage.Store, repos ...*concRepo) {
	t.Helper()
	ctx := context.Background()
	for _, r := range repos {
		m, err := mirror.Resolve(ctx, store, r.id, "main")
		if err != nil {
			t.Errorf("%s@main in the mirror: %v", r.id, err)
			continue
		}
		if m.Commit != r.hub.Commit() {
			t.Errorf("%s@main is %s in the mirror, %s on the hub", r.id, m.Commit, r.hub.Commit())
		}
		if len(m.Files) != len(r.files) {
			t.Errorf("%s: manifest lists %d files, the hub has %d", r.id, len(m.Files), len(r.files))
		}
		for p, data := range r.files {
			e, ok := m.File(p)
			if !ok || e.Size != int64(len(data)) || e.SHA256 != storage.SHA256Hex(data) {
				t.Errorf("%s: manifest entry of %s is %+v (found %v), want %d bytes", r.id, p, e, ok, len(data))
			}
		}
	}
}

// TestConcurrentProcessesS3 runs hubmirror processes at the same time on one
// bucket of the S3 server .ci/run starts (skipped without
// HUBMIRROR_TEST_S3_ENDPOINT): `pull --to` of a model and of a dataset of
// hundreds of files, `mirror` with an int8 variant and a plain one, `serve
// --from` the bucket `--upstream` the test hub under client load (HEAD, GET
// and range GETs, every byte checked, of files mirrored before and of a
// model and a dataset the mirror lacks, pulled through, with requests for
// the same file at once) and `gc --grace 0s` in a loop. Then `verify` must
// be clean, every manifest complete, and each file pulled through fetched
// from the hub once. Second phase: a `pull --to` and a `mirror` are
// SIGKILLed after they uploaded part of their repo (its other file
// trickles from the hub), rerun, and again `verify` is clean and the
// manifests complete; the load and the GC loop go on throughout.
// Last, with the hub stopped, serve answers for the repos it pulled through
// from the mirror, saying so in X-Hubmirror-Upstream.
func TestConcurrentProcessesS3(t *testing.T) {
	ep := os.Getenv("HUBMIRROR_TEST_S3_ENDPOINT")
	if ep == "" {
		t.Skip("HUBMIRROR_TEST_S3_ENDPOINT is not set; .ci/run starts a versitygw server and sets it")
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := hubmirrorBinary(t)
	s3env := []string{
		"AWS_ENDPOINT_URL=" + ep,
		"AWS_ACCESS_KEY_ID=" + os.Getenv("HUBMIRROR_TEST_S3_ACCESS_KEY"),
		"AWS_SECRET_ACCESS_KEY=" + os.Getenv("HUBMIRROR_TEST_S3_SECRET_KEY"),
		"AWS_REGION=us-east-1",
	}
	for _, kv := range s3env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	hub := hubtest.New(t)
	env := append([]string{"PATH=" + os.Getenv("PATH"), "HF_HUB_DISABLE_PROGRESS_BARS=1", "HF_ENDPOINT=" + hub.URL(), "HF_HOME=" + t.TempDir()}, s3env...)
	url := fmt.Sprintf("s3://hubmirror-conc-%d/mirror", time.Now().UnixNano())

	withBig := func(m map[string][]byte, seed uint64, sizes ...int) map[string][]byte {
		for i, n := range sizes {
			m[fmt.Sprintf("data/big-%d.bin", i)] = pseudoRandom(seed+uint64(i), n)
		}
		return m
	}
	served := addConcRepo(hub, "org/served", withBig(map[string][]byte{
		"config.json": []byte(`{"model_type": "served"}`),
		"README.md":   []byte("# served\n"),
	}, 1, 3<<20, 5000))
	servedDS := addConcRepo(hub, "datasets/org/served-ds", withBig(smallFiles("served-ds", "rows", 20), 2, 2<<20))
	modelA := addConcRepo(hub, "org/model-a", withBig(map[string][]byte{"config.json": []byte(`{"model_type": "a"}`)}, 3, 2<<20, 3<<20))
	dataset := addConcRepo(hub, "datasets/org/ds", withBig(smallFiles("ds", "rows", 300), 4, 2<<20, 3<<20))
	plain := addConcRepo(hub, "org/plain", withBig(smallFiles("plain", "x", 10), 5, 2<<20))
	llamaFiles := map[string][]byte{}
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(fixtureModels, "llama-tiny-st", f))
		if err != nil {
			t.Fatal(err)
		}
		llamaFiles[f] = b
	}
	llama := addConcRepo(hub, "acme/tiny-llama", llamaFiles)

	// What serve pulls through from the hub: the mirror lacks these when
	// the load starts. Their paths are theirs alone, to count their
	// downloads from the hub.
	upModel := addConcRepo(hub, "org/up-model", map[string][]byte{
		"up-model.json":  []byte(`{"model_type": "up"}`),
		"up/model-0.bin": pseudoRandom(9, 3<<20),
		"up/model-1.bin": pseudoRandom(10, 6000),
	})
	upDS := addConcRepo(hub, "datasets/org/up-ds", smallFiles("up-ds", "up-rows", 30))
	upDS.files["up/ds.bin"] = pseudoRandom(11, 2<<20)
	upDS.hub.AddFile("up/ds.bin", upDS.files["up/ds.bin"])

	// org/again holds the files of org/gone, mirrored and removed before
	// the GC loop starts: its blobs, unreferenced, are what the GCs delete
	// while the pull of org/again finds them present.
	goneFiles := withBig(smallFiles("gone", "g", 200), 8, 1<<20)
	addConcRepo(hub, "org/gone", goneFiles)
	again := addConcRepo(hub, "org/again", goneFiles)
	// A file of org/up-model has the content of one of org/gone: its pull
	// through finds the blob present, or deleted by a GC meanwhile.
	upModel.files["up/gone-copy.bin"] = goneFiles["data/big-0.bin"]
	upModel.hub.AddFile("up/gone-copy.bin", goneFiles["data/big-0.bin"])

	// What serve serves, mirrored before the load starts.
	startProc(t, bin, env, "pull", served.id, "--to", url).mustSucceed(t)
	startProc(t, bin, env, "pull", servedDS.id, "--to", url).mustSucceed(t)
	startProc(t, bin, env, "pull", "org/gone", "--to", url).mustSucceed(t)
	startProc(t, bin, env, "rm", url, "org/gone").mustSucceed(t)

	// A short --upstream-ttl, so that serve asks the hub again when it
	// stops (the last phase).
	srv := startProc(t, bin, env, "serve", "--from", url, "--upstream", hub.URL(), "--upstream-ttl", "1s", "--addr", "127.0.0.1:0", "--quiet")
	endpoint := ""
	for deadline := time.Now().Add(30 * time.Second); endpoint == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if line, err := bufio.NewReader(strings.NewReader(srv.out.String())).ReadString('\n'); err == nil {
			endpoint = strings.TrimSpace(line)
		}
	}
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Fatalf("serve printed %q\nstderr:\n%s", srv.out.String(), srv.err.String())
	}

	stopLoad, stopGC := make(chan struct{}), make(chan struct{})
	var errs loadErrors
	gcRuns, waitGC := gcLoop(t, bin, env, url, stopGC)

	// Phase 1: writers at the same time.
	writers := []*proc{
		startProc(t, bin, env, "pull", again.id, "--to", url),
		startProc(t, bin, env, "pull", modelA.id, "--to", url),
		startProc(t, bin, env, "pull", dataset.id, "--to", url),
		startProc(t, bin, env, "mirror", llama.id, "--to", url, "--quantize", "int8"),
		startProc(t, bin, env, "mirror", plain.id, "--to", url),
	}
	// The load starts with requests for the same file of each repo the
	// mirror lacks at once, while the writers and the GC run.
	waitSame := []func(){
		sameFile(endpoint, upModel, "up/model-0.bin", 9, &errs),
		sameFile(endpoint, upModel, "up/gone-copy.bin", 6, &errs),
		sameFile(endpoint, upDS, "up/ds.bin", 9, &errs),
	}
	heads, gets, ranges, waitLoad := clientLoad(endpoint, []*concRepo{served, servedDS, upModel, upDS}, 6, 20, stopLoad, &errs)
	stopped := false
	stopAll := func() {
		if !stopped {
			stopped = true
			close(stopLoad)
			close(stopGC)
			waitLoad()
			waitGC()
		}
	}
	defer stopAll()
	for _, w := range writers {
		w.mustSucceed(t)
	}
	for _, w := range waitSame {
		w()
	}
	verify := func(phase string) {
		t.Helper()
		p := startProc(t, bin, env, "verify", url)
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("%s: verify exit %d\n%s\n%s", phase, code, p.out.String(), p.err.String())
		}
	}
	verify("phase 1")
	store, err := storage.Open(context.Background(), url, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	checkManifests(t, store, served, servedDS, again, modelA, dataset, plain, llama, upModel, upDS)
	ctx := context.Background()
	if m, err := mirror.Resolve(ctx, store, llama.id, "int8"); err != nil || m.Variant == nil || m.Variant.SourceCommit != llama.hub.Commit() {
		t.Errorf("the int8 variant of %s: %+v, %v", llama.id, m, err)
	}

	// Phase 2: a pull --to and a mirror killed once part of their repo is
	// in the bucket, then rerun.
	slowPull := addConcRepo(hub, "org/slow-pull", smallFiles("slow-pull", "s", 12))
	slowPull.files["slow-pull.bin"] = pseudoRandom(6, 1<<20)
	slowPull.hub.AddFile("slow-pull.bin", slowPull.files["slow-pull.bin"])
	slowMirror := addConcRepo(hub, "org/slow-mirror", smallFiles("slow-mirror", "s", 12))
	slowMirror.files["slow-mirror.bin"] = pseudoRandom(7, 1<<20)
	slowMirror.hub.AddFile("slow-mirror.bin", slowMirror.files["slow-mirror.bin"])
	for _, p := range []string{"slow-pull.bin", "slow-mirror.bin"} {
		hub.Inject(hubtest.Fault{Kind: hubtest.Trickle, Path: p, Times: -1, Rate: 8 << 10})
	}
	killed := []*proc{
		startProc(t, bin, env, "pull", slowPull.id, "--to", url),
		startProc(t, bin, env, "mirror", slowMirror.id, "--to", url),
	}
	for i, r := range []*concRepo{slowPull, slowMirror} {
		// Wait until a small file of the repo is in the bucket. (Not all of
		// them: a GC that listed the leases before the push leased a blob
		// deletes it, and the push uploads it again only once the slow file
		// is in; see mirror/lease.go.)
		deadline := time.Now().Add(time.Minute)
		for uploaded := false; !uploaded; {
			for p, data := range r.files {
				if strings.HasSuffix(p, ".bin") {
					continue
				}
				_, err := store.Stat(ctx, mirror.BlobKey(storage.SHA256Hex(data)))
				if err == nil {
					uploaded = true
					break
				}
				if !errors.Is(err, storage.ErrNotFound) {
					t.Fatal(err)
				}
			}
			select {
			case <-killed[i].done:
				t.Fatalf("hubmirror %s ended before it was killed: exit %d\n%s", strings.Join(killed[i].args, " "), killed[i].cmd.ProcessState.ExitCode(), killed[i].err.String())
			default:
			}
			if !uploaded {
				if time.Now().After(deadline) {
					t.Fatalf("%s: no small file in the bucket after a minute\n%s", r.id, killed[i].err.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if err := killed[i].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code := killed[i].wait(t, 10*time.Second); code != -1 {
			t.Fatalf("hubmirror %s: exit %d, not killed", strings.Join(killed[i].args, " "), code)
		}
		if _, err := mirror.Resolve(ctx, store, r.id, "main"); err == nil {
			t.Fatalf("%s has a manifest before the slow file was downloaded", r.id)
		}
	}
	hub.ClearFaults()
	reruns := []*proc{
		startProc(t, bin, env, "pull", slowPull.id, "--to", url),
		startProc(t, bin, env, "mirror", slowMirror.id, "--to", url),
	}
	for _, p := range reruns {
		p.mustSucceed(t)
	}
	stopAll()
	verify("phase 2")
	checkManifests(t, store, served, servedDS, again, modelA, dataset, plain, llama, slowPull, slowMirror, upModel, upDS)
	// Concurrent requests shared one fetch of each file from the hub
	// (none for the copy of org/gone's file when the pull found its blob
	// present, one when a GC had deleted it or did meanwhile: then the
	// pull uploads it again before its manifest).
	upFiles, upBytes := 0, int64(0)
	for _, r := range []*concRepo{upModel, upDS} {
		for p, data := range r.files {
			upFiles++
			upBytes += int64(len(data))
			sent := hub.BytesSent(p)
			if sent != int64(len(data)) && (p != "up/gone-copy.bin" || sent != 0) {
				t.Errorf("%s: the hub sent %d bytes of %s, the file has %d", r.id, sent, p, len(data))
			}
		}
	}

	// Last phase: the hub stops; what serve pulled through is served from
	// the mirror, saying so, once the 1s TTL of its last check is over.
	hub.Close()
	client := &http.Client{Timeout: time.Minute}
	for _, r := range []*concRepo{upModel, upDS} {
		for p, data := range r.files {
			if !strings.HasPrefix(p, "up/") {
				continue
			}
			u := endpoint + "/" + r.id + "/resolve/main/" + p
			var resp *http.Response
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				req.Header.Set("Range", "bytes=10-")
				resp, err = client.Do(req)
				if err != nil {
					t.Fatalf("GET %s with the hub stopped: %v", u, err)
				}
				if resp.Header.Get(mirror.HeaderUpstream) != "" || time.Now().After(deadline) {
					break
				}
				resp.Body.Close()
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[10:]) || resp.Header.Get("X-Repo-Commit") != r.hub.Commit() {
				t.Errorf("GET %s bytes=10- with the hub stopped: %s, %d bytes (want %d), commit %q, %v", u, resp.Status, len(body), len(data)-10, resp.Header.Get("X-Repo-Commit"), err)
			}
			if h := resp.Header.Get(mirror.HeaderUpstream); h != "unreachable; served from mirror" {
				t.Errorf("GET %s with the hub stopped: %s %q", u, mirror.HeaderUpstream, h)
			}
		}
	}

	errs.mu.Lock()
	defer errs.mu.Unlock()
	if errs.n > 0 {
		t.Errorf("%d failed or wrong client requests, the first: %s", errs.n, strings.Join(errs.errs, "\n"))
	}
	t.Logf("clients: %d HEAD, %d GET, %d range GET; %d gc runs; %d files (%d bytes) pulled through", heads.Load(), gets.Load(), ranges.Load(), gcRuns.Load(), upFiles, upBytes)
	select {
	case <-srv.done:
		t.Errorf("serve ended: %s", srv.err.String())
	default:
	}
}
