package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hubmirror/hubmirror/storage"
)

type fixture struct {
	store   storage.Store
	srv     *httptest.Server
	files   map[string][]byte
	commit  string
	variant string
}

func newFixture(t *testing.T, opts ServerOptions) *fixture {
	t.Helper()
	s := newStore(t)
	dir, files := modelDir(t)
	res := pushDir(t, s, "org/model", dir, PushOptions{})
	pushDir(t, s, "org/model", dir, PushOptions{Revision: "refs/pr/1"})
	pushDir(t, s, "gpt2", dir, PushOptions{})
	qdir := t.TempDir()
	os.WriteFile(filepath.Join(qdir, "model.safetensors"), randomBytes(11, 100<<10), 0o644)
	qfiles, _ := DirFiles(qdir, nil)
	v, err := Push(context.Background(), s, "org/model", qfiles, PushOptions{Variant: &VariantSpec{Name: "int8", SourceRevision: "main", Report: []byte(`{"passed":true}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if opts.SmallFile == 0 {
		opts.SmallFile = 64 << 10
	}
	srv := httptest.NewServer(NewServer(s, opts))
	t.Cleanup(srv.Close)
	return &fixture{store: s, srv: srv, files: files, commit: res.Commit, variant: v.Commit}
}

func (f *fixture) do(t *testing.T, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, body
}

func TestServerModelInfo(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	for _, p := range []string{"/api/models/org/model", "/api/models/org/model/revision/main", "/api/models/org/model/revision/" + f.commit, "/api/models/org/model/revision/refs%2Fpr%2F1", "/api/models/org/model/revision/refs/pr/1"} {
		resp, body := f.do(t, "GET", p, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", p, resp.StatusCode, body)
		}
		var info struct {
			ID       string `json:"id"`
			SHA      string `json:"sha"`
			Siblings []struct {
				RFilename string `json:"rfilename"`
				Size      int64  `json:"size"`
				BlobID    string `json:"blobId"`
				LFS       *struct {
					SHA256      string `json:"sha256"`
					Size        int64  `json:"size"`
					PointerSize int    `json:"pointerSize"`
				} `json:"lfs"`
			} `json:"siblings"`
		}
		if err := json.Unmarshal(body, &info); err != nil {
			t.Fatal(err)
		}
		if info.ID != "org/model" || info.SHA != f.commit || len(info.Siblings) != len(f.files) {
			t.Errorf("%s: id %s sha %s, %d siblings", p, info.ID, info.SHA, len(info.Siblings))
		}
		for _, sib := range info.Siblings {
			data := f.files[sib.RFilename]
			if sib.Size != int64(len(data)) {
				t.Errorf("%s: size %d, want %d", sib.RFilename, sib.Size, len(data))
			}
			if sib.LFS != nil && (sib.LFS.SHA256 != storage.SHA256Hex(data) || sib.BlobID != LFSOID(sib.LFS.SHA256, sib.Size) || sib.LFS.PointerSize != len(LFSPointer(sib.LFS.SHA256, sib.Size))) {
				t.Errorf("%s: lfs %+v blob %s", sib.RFilename, sib.LFS, sib.BlobID)
			}
			if sib.LFS == nil && sib.BlobID != GitBlobOID(data) {
				t.Errorf("%s: blob id %s", sib.RFilename, sib.BlobID)
			}
		}
	}
	resp, body := f.do(t, "GET", "/api/models/org/model/revision/int8", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), f.variant) || !strings.Contains(string(body), `"validation.json"`) {
		t.Errorf("variant info: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.do(t, "GET", "/api/models/gpt2", nil); resp.StatusCode != 200 || !strings.Contains(string(body), `"id":"gpt2"`) {
		t.Errorf("one-segment repo: %d %s", resp.StatusCode, body)
	}
	resp, body = f.do(t, "GET", "/api/models", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"org/model"`) || !strings.Contains(string(body), `"gpt2"`) {
		t.Errorf("list: %d %s", resp.StatusCode, body)
	}
	resp, body = f.do(t, "GET", "/api/models/org/model/refs", nil)
	var refs map[string][]map[string]string
	json.Unmarshal(body, &refs)
	if resp.StatusCode != 200 || len(refs["branches"]) != 1 || len(refs["converts"]) != 1 || refs["converts"][0]["targetCommit"] != f.variant || len(refs["pullRequests"]) != 1 {
		t.Errorf("refs: %d %s", resp.StatusCode, body)
	}
}

func TestServerErrors(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	cases := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/api/models/org/nothing", 404, "RepoNotFound"},
		{"GET", "/api/models/org/model/revision/nope", 404, "RevisionNotFound"},
		{"GET", "/api/models/org/model/revision/" + strings.Repeat("0", 40), 404, "RevisionNotFound"},
		{"HEAD", "/org/model/resolve/main/missing.txt", 404, "EntryNotFound"},
		{"GET", "/org/model/resolve/main/missing.txt", 404, "EntryNotFound"},
		{"HEAD", "/org/model/resolve/nope/config.json", 404, "RevisionNotFound"},
		{"HEAD", "/org/nothing/resolve/main/config.json", 404, "RepoNotFound"},
		{"GET", "/api/models/org/model/tree/main/nodir", 404, "EntryNotFound"},
		{"GET", "/org/model/resolve/main/sub", 404, "EntryNotFound"},
	}
	for _, c := range cases {
		resp, body := f.do(t, c.method, c.path, nil)
		if resp.StatusCode != c.status || resp.Header.Get("X-Error-Code") != c.code {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, resp.StatusCode, resp.Header.Get("X-Error-Code"), c.status, c.code)
		}
		if c.method == "GET" && !json.Valid(body) {
			t.Errorf("%s %s: body %q is not JSON", c.method, c.path, body)
		}
	}
	if resp, _ := f.do(t, "HEAD", "/org/model/resolve/main/missing.txt", nil); resp.Header.Get("X-Repo-Commit") != f.commit {
		t.Errorf("EntryNotFound without X-Repo-Commit")
	}
	if resp, _ := f.do(t, "POST", "/api/models/org/model", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

func TestServerResolve(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	for p, data := range f.files {
		url := "/org/model/resolve/main/" + strings.ReplaceAll(p, " ", "%20")
		resp, _ := f.do(t, "HEAD", url, map[string]string{"Accept-Encoding": "identity"})
		if resp.StatusCode != 200 {
			t.Fatalf("HEAD %s: %d", url, resp.StatusCode)
		}
		h := resp.Header
		lfs := strings.HasSuffix(p, ".bin") || strings.HasSuffix(p, ".safetensors")
		wantETag := `"` + GitBlobOID(data) + `"`
		if lfs {
			wantETag = `"` + storage.SHA256Hex(data) + `"`
		}
		if h.Get("X-Repo-Commit") != f.commit || h.Get("ETag") != wantETag || h.Get("Content-Length") != fmt.Sprint(len(data)) || h.Get("Accept-Ranges") != "bytes" {
			t.Errorf("HEAD %s: headers %v", p, h)
		}
		if lfs && (h.Get("X-Linked-Etag") != wantETag || h.Get("X-Linked-Size") != fmt.Sprint(len(data))) {
			t.Errorf("HEAD %s: linked headers %v", p, h)
		}
		if !lfs && h.Get("X-Linked-Etag") != "" {
			t.Errorf("HEAD %s: X-Linked-Etag on a regular file", p)
		}
		resp, body := f.do(t, "GET", url, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Errorf("GET %s: %d, %d bytes of %d", p, resp.StatusCode, len(body), len(data))
		}
	}
	for _, rev := range []string{f.commit, "refs%2Fpr%2F1", "refs/pr/1", "refs%2Fheads%2Fmain"} {
		resp, body := f.do(t, "GET", "/org/model/resolve/"+rev+"/config.json", nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, f.files["config.json"]) {
			t.Errorf("revision %s: %d", rev, resp.StatusCode)
		}
	}
	if resp, body := f.do(t, "GET", "/gpt2/resolve/main/sub/dir/weights.bin", nil); resp.StatusCode != 200 || !bytes.Equal(body, f.files["sub/dir/weights.bin"]) {
		t.Errorf("one-segment repo: %d", resp.StatusCode)
	}
	resp, body := f.do(t, "GET", "/org/model/resolve/int8/validation.json", nil)
	if resp.StatusCode != 200 || string(body) != `{"passed":true}` || resp.Header.Get("X-Repo-Commit") != f.variant {
		t.Errorf("variant report: %d %q", resp.StatusCode, body)
	}
	etag := `"` + storage.SHA256Hex(f.files["model.safetensors"]) + `"`
	if resp, _ := f.do(t, "GET", "/org/model/resolve/main/model.safetensors", map[string]string{"If-None-Match": etag}); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
}

func TestServerRanges(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	for _, p := range []string{"model.safetensors", "tokenizer.json", "config.json"} {
		data := f.files[p]
		n := len(data)
		url := "/org/model/resolve/main/" + p
		cases := []struct {
			rng        string
			status     int
			start, end int // want data[start:end]
		}{
			{"bytes=0-0", 206, 0, 1},
			{"bytes=10-19", 206, 10, 20},
			{fmt.Sprintf("bytes=%d-", n/2), 206, n / 2, n},
			{"bytes=-5", 206, n - 5, n},
			{fmt.Sprintf("bytes=5-%d", n+100), 206, 5, n},
			{fmt.Sprintf("bytes=0-%d", n-1), 206, 0, n},
			{"bytes=0-1,5-6", 200, 0, n},
			{"garbage", 200, 0, n},
			{fmt.Sprintf("bytes=%d-", n), 416, 0, 0},
		}
		for _, c := range cases {
			resp, body := f.do(t, "GET", url, map[string]string{"Range": c.rng})
			if resp.StatusCode != c.status {
				t.Errorf("%s %s: status %d, want %d", p, c.rng, resp.StatusCode, c.status)
				continue
			}
			switch c.status {
			case 206:
				want := fmt.Sprintf("bytes %d-%d/%d", c.start, c.end-1, n)
				if !bytes.Equal(body, data[c.start:c.end]) || resp.Header.Get("Content-Range") != want {
					t.Errorf("%s %s: %d bytes, Content-Range %q want %q", p, c.rng, len(body), resp.Header.Get("Content-Range"), want)
				}
			case 200:
				if !bytes.Equal(body, data) {
					t.Errorf("%s %s: full body differs", p, c.rng)
				}
			case 416:
				if resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", n) {
					t.Errorf("%s %s: Content-Range %q", p, c.rng, resp.Header.Get("Content-Range"))
				}
			}
		}
		// If-Range with another ETag: the whole file.
		if resp, body := f.do(t, "GET", url, map[string]string{"Range": "bytes=0-9", "If-Range": `"other"`}); resp.StatusCode != 200 || len(body) != n {
			t.Errorf("%s: If-Range mismatch gave %d", p, resp.StatusCode)
		}
	}
}

func TestServerTreePagination(t *testing.T) {
	f := newFixture(t, ServerOptions{TreePageSize: 3})
	all := func(path string) []map[string]any {
		var out []map[string]any
		next := f.srv.URL + path
		for pages := 0; next != ""; pages++ {
			if pages > 20 {
				t.Fatal("pagination does not end")
			}
			resp, err := http.Get(next)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d %s", next, resp.StatusCode, body)
			}
			var page []map[string]any
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
			if len(page) > 3 {
				t.Errorf("page of %d entries, limit 3", len(page))
			}
			out = append(out, page...)
			next = ""
			if m := regexp.MustCompile(`<([^>]+)>;\s*rel="next"`).FindStringSubmatch(resp.Header.Get("Link")); m != nil {
				next = m[1]
			}
		}
		return out
	}
	entries := all("/api/models/org/model/tree/main?recursive=true")
	var files, dirs []string
	for _, e := range entries {
		switch e["type"] {
		case "file":
			files = append(files, e["path"].(string))
			data := f.files[e["path"].(string)]
			if int(e["size"].(float64)) != len(data) {
				t.Errorf("%v: size", e)
			}
			if lfs, ok := e["lfs"].(map[string]any); ok && lfs["oid"] != storage.SHA256Hex(data) {
				t.Errorf("%v: lfs oid", e)
			}
		case "directory":
			dirs = append(dirs, e["path"].(string))
			if oid, _ := e["oid"].(string); !isHex(oid, 40) {
				t.Errorf("%v: directory oid", e)
			}
		}
	}
	var want []string
	for p := range f.files {
		want = append(want, p)
	}
	sort.Strings(want)
	if strings.Join(files, ",") != strings.Join(want, ",") {
		t.Errorf("recursive tree files %v, want %v", files, want)
	}
	if strings.Join(dirs, ",") != "shared-b,sub,sub/dir" {
		t.Errorf("recursive tree dirs %v", dirs)
	}
	top := all("/api/models/org/model/tree/main")
	var names []string
	for _, e := range top {
		names = append(names, e["path"].(string))
	}
	if strings.Join(names, ",") != "config.json,empty.txt,model.safetensors,shared-a.bin,shared-b,sub,tokenizer.json" {
		t.Errorf("top level %v", names)
	}
	sub := all("/api/models/org/model/tree/main/sub")
	names = nil
	for _, e := range sub {
		names = append(names, e["path"].(string))
	}
	if strings.Join(names, ",") != "sub/README.md,sub/dir" {
		t.Errorf("sub %v", names)
	}
	sub2 := all("/api/models/org/model/tree/refs%2Fpr%2F1/sub%2Fdir")
	if len(sub2) != 1 || sub2[0]["path"] != "sub/dir/weights.bin" {
		t.Errorf("escaped path listing %v", sub2)
	}
}

func TestServerAuth(t *testing.T) {
	f := newFixture(t, ServerOptions{Token: "s3cret"})
	for _, h := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}} {
		if resp, _ := f.do(t, "GET", "/api/models/org/model", h); resp.StatusCode != 401 {
			t.Errorf("auth %v: %d", h, resp.StatusCode)
		}
	}
	if resp, _ := f.do(t, "GET", "/api/models/org/model", map[string]string{"Authorization": "Bearer s3cret"}); resp.StatusCode != 200 {
		t.Errorf("right token: %d", resp.StatusCode)
	}
}

// TestServerRefusesCorruptBlobs alters blobs in storage behind the mirror's
// back: no response may deliver their full bytes.
func TestServerRefusesCorruptBlobs(t *testing.T) {
	f := newFixture(t, ServerOptions{})
	root := strings.TrimPrefix(f.store.Location(), "file://")
	corrupt := func(p string) {
		data := append([]byte(nil), f.files[p]...)
		data[0] ^= 0xff
		blob := filepath.Join(root, "blobs", "sha256", storage.SHA256Hex(f.files[p]))
		if err := os.WriteFile(blob, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	get := func(p string, hdr map[string]string) (int, int, error) {
		req, _ := http.NewRequest("GET", f.srv.URL+"/org/model/resolve/main/"+p, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, len(body), err
	}

	// Serve each once so that the large blob counts as verified, then
	// corrupt: the storage version changes, the server notices.
	if status, n, err := get("model.safetensors", nil); status != 200 || n != len(f.files["model.safetensors"]) || err != nil {
		t.Fatalf("intact blob: %d %d %v", status, n, err)
	}
	corrupt("model.safetensors")
	corrupt("config.json")

	// Small file: verified before anything is sent.
	if status, _, _ := get("config.json", nil); status != 500 {
		t.Errorf("corrupt small file: status %d, want 500", status)
	}
	// Large file, full GET: the body is cut short.
	status, n, err := get("model.safetensors", nil)
	if err == nil || n >= len(f.files["model.safetensors"]) {
		t.Errorf("corrupt large file: status %d, %d of %d bytes, err %v: the whole body was delivered", status, n, len(f.files["model.safetensors"]), err)
	}
	// Large file, range: refused before anything is sent.
	if status, _, _ := get("model.safetensors", map[string]string{"Range": "bytes=100-199"}); status != 500 {
		t.Errorf("range of a corrupt large file: status %d, want 500", status)
	}
	// Removed blob.
	os.Remove(filepath.Join(root, "blobs", "sha256", storage.SHA256Hex(f.files["tokenizer.json"])))
	if status, _, _ := get("tokenizer.json", nil); status != 500 {
		t.Errorf("missing blob: status %d, want 500", status)
	}
}

func TestServerVerificationCache(t *testing.T) {
	counting := &countingStore{}
	f := newFixture(t, ServerOptions{})
	counting.Store = f.store
	srv := httptest.NewServer(NewServer(counting, ServerOptions{SmallFile: 64 << 10}))
	defer srv.Close()
	size := int64(len(f.files["model.safetensors"]))
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("GET", srv.URL+"/org/model/resolve/main/model.safetensors", nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", i*100, i*100+99))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 206 {
			t.Fatalf("range %d: %d", i, resp.StatusCode)
		}
	}
	// One full read to verify, then 100 bytes per range.
	if got, want := counting.read.Load(), size+5*100; got != want {
		t.Errorf("read %d bytes from storage, want %d (one verification)", got, want)
	}
}

type countingStore struct {
	storage.Store
	read atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := c.Store.Get(ctx, key, offset, length)
	if err != nil || !strings.HasPrefix(key, "blobs/") {
		return rc, err
	}
	return &countingReadCloser{rc: rc, n: &c.read}, nil
}

type countingReadCloser struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (c *countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n.Add(int64(n))
	return n, err
}
func (c *countingReadCloser) Close() error { return c.rc.Close() }
