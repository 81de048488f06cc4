// Package prototest is the conformance suite of the Hub's download protocol
// (package hubproto): what huggingface_hub and hubclient rely on, checked
// over HTTP against a server under test. Both servers hubmirror has, the
// test hub (hubclient/hubtest) and the mirror's server (mirror.Server, what
// `hubmirror serve` runs), run it from their tests, so they cannot drift
// apart.
//
// The suite gives the server's factory the repos to hold (Setup) and checks
// model info, tree listings with their pagination, HEAD and GET of
// /resolve (headers, redirects, byte ranges), the error answers, tokens,
// and finally that hubclient downloads every file right.
package prototest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubproto"
)

// File is a file the server must hold.
type File struct {
	Path string
	Data []byte
	// LFS: the file is stored with Git LFS (its sha256 is its ETag).
	LFS bool
}

// Commit is a commit of a repo: its files and the refs (branches, tags,
// "refs/pr/N") that point at it.
type Commit struct {
	Files []File
	Refs  []string
}

// Repo is a repo the server must hold. The last of its commits is the head
// of "main" (and no other commit has "main" among its refs).
type Repo struct {
	ID      string
	Commits []Commit
}

// Setup is what the server under test must hold and how it must behave.
type Setup struct {
	Repos []Repo
	// Token, when set, must be sent (Authorization: Bearer) to read the
	// repos; a request without it or with another token is refused.
	Token string
	// TreePageSize is the number of entries a tree page may hold at most;
	// the server must paginate listings that are longer.
	TreePageSize int
}

// Server is a server under test, set up.
type Server struct {
	// URL is its endpoint (HF_ENDPOINT).
	URL string
	// Commits are the commit ids the server gave each repo's commits, in
	// the order of Repo.Commits.
	Commits map[string][]string
}

// Config describes the server under test.
type Config struct {
	// New starts a server holding what setup says, stopped when the test
	// ends.
	New func(t *testing.T, setup Setup) Server
}

// Run runs the suite.
func Run(t *testing.T, cfg Config) {
	setup := Setup{Repos: fixtureRepos(), TreePageSize: 3}
	srv := cfg.New(t, setup)
	f := &fixture{srv: srv, repos: setup.Repos, client: noRedirects()}
	for _, r := range setup.Repos {
		if got := len(srv.Commits[r.ID]); got != len(r.Commits) {
			t.Fatalf("the factory reported %d commits of %s, want %d", got, r.ID, len(r.Commits))
		}
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"ModelInfo", testModelInfo},
		{"Tree", testTree},
		{"TreePagination", testTreePagination},
		{"TreeExpand", testTreeExpand},
		{"PathsInfo", testPathsInfo},
		{"RepoTypes", testRepoTypes},
		{"ResolveHead", testResolveHead},
		{"ResolveGet", testResolveGet},
		{"Ranges", testRanges},
		{"Errors", testErrors},
		{"Client", testClient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
	t.Run("Token", func(t *testing.T) {
		setup := Setup{Repos: fixtureRepos()[:1], Token: "hf_prototest_token"}
		testToken(t, &fixture{srv: cfg.New(t, setup), repos: setup.Repos, client: noRedirects(), token: setup.Token})
	})
}

// fixtureRepos: a repo with an org, two commits and several refs, files in
// nested directories, LFS and regular files, an empty file and a name that
// needs escaping; and a repo id of one segment.
func fixtureRepos() []Repo {
	rnd := func(seed byte, n int) []byte {
		b := make([]byte, n)
		x := uint32(seed)*2654435761 + 1
		for i := range b {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			b[i] = byte(x)
		}
		return b
	}
	return []Repo{
		{ID: "org/model", Commits: []Commit{
			{Refs: []string{"v1.0", "refs/pr/1"}, Files: []File{
				{Path: "config.json", Data: []byte(`{"model_type": "gpt2", "n_embd": 8}`)},
				{Path: "model.safetensors", Data: rnd(1, 20000), LFS: true},
				{Path: "sub/dir/a.txt", Data: []byte("a, first version\n")},
			}},
			{Refs: []string{"main"}, Files: []File{
				{Path: "config.json", Data: []byte(`{"model_type": "gpt2", "n_embd": 16}`)},
				{Path: "model.safetensors", Data: rnd(2, 70000), LFS: true},
				{Path: "empty.txt", Data: nil},
				{Path: "docs/read me.md", Data: []byte("# a name with a space\n")},
				{Path: "sub/a.txt", Data: []byte("sub a\n")},
				{Path: "sub/dir/a.txt", Data: []byte("a\n")},
				{Path: "sub/dir/b.bin", Data: rnd(3, 5000), LFS: true},
				{Path: "sub/dir/deeper/c.txt", Data: []byte("c\n")},
			}},
		}},
		{ID: "solo", Commits: []Commit{
			{Refs: []string{"main"}, Files: []File{{Path: "config.json", Data: []byte(`{}`)}}},
		}},
		// A dataset named as the model: the types are kept apart.
		{ID: "datasets/org/model", Commits: []Commit{
			{Refs: []string{"main", "v1.0"}, Files: []File{
				{Path: "README.md", Data: []byte("---\nlicense: mit\n---\n# a dataset\n")},
				{Path: "config.json", Data: []byte(`{"dataset": true}`)},
				{Path: "data/train/00000.parquet", Data: rnd(4, 9000), LFS: true},
				{Path: "data/train/00001.parquet", Data: rnd(5, 300)},
				{Path: "data/test/00000.parquet", Data: rnd(6, 400)},
				{Path: "sub/a.txt", Data: []byte("dataset sub a\n")},
			}},
		}},
		{ID: "spaces/org/app", Commits: []Commit{
			{Refs: []string{"main"}, Files: []File{
				{Path: "app.py", Data: []byte("print('hello')\n")},
				{Path: "requirements.txt", Data: []byte("gradio\n")},
			}},
		}},
	}
}

type fixture struct {
	srv    Server
	repos  []Repo
	client *http.Client
	token  string
}

// noRedirects is a client that hands redirects back, as hubclient's
// Resolve and huggingface_hub's HEAD do.
func noRedirects() *http.Client {
	return &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// revCase is a way to name one commit of a repo.
type revCase struct {
	rev    string // as sent in the URL: escaped as one segment
	commit int    // index in Repo.Commits
}

func (f *fixture) revisions(r Repo) []revCase {
	ids := f.srv.Commits[r.ID]
	var out []revCase
	for i, c := range r.Commits {
		for _, ref := range c.Refs {
			out = append(out, revCase{url.PathEscape(ref), i})
		}
		out = append(out, revCase{ids[i], i})
	}
	return out
}

type response struct {
	*http.Response
	body []byte
}

// do sends a request with the fixture's token and reads the whole answer.
func (f *fixture) do(t *testing.T, client *http.Client, method, rawPath string, hdr map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+rawPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, rawPath, err)
	}
	return response{resp, body}
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

func resolvePath(repo, rev, file string) string {
	return "/" + repo + "/resolve/" + rev + "/" + escapePath(file)
}

var sha1Re = regexp.MustCompile(`^[0-9a-f]{40}$`)

func gitBlobID(data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

func sha256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func lfsPointer(f File) []byte {
	return fmt.Appendf(nil, "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", sha256Hex(f.Data), len(f.Data))
}

// blobID is the git blob id the Hub reports for f.
func blobID(f File) string {
	if f.LFS {
		return gitBlobID(lfsPointer(f))
	}
	return gitBlobID(f.Data)
}

// etag is what the Hub answers as f's ETag (X-Linked-Etag for LFS files).
func etag(f File) string {
	if f.LFS {
		return sha256Hex(f.Data)
	}
	return gitBlobID(f.Data)
}

func unquoteETag(s string) string {
	return strings.Trim(strings.TrimPrefix(strings.TrimSpace(s), "W/"), `"`)
}

func testModelInfo(t *testing.T, f *fixture) {
	for _, r := range f.repos {
		ids := f.srv.Commits[r.ID]
		cases := f.revisions(r)
		for _, rc := range cases {
			resp := f.do(t, f.client, "GET", hubproto.APIPath(r.ID)+"/revision/"+rc.rev+"?blobs=true", nil)
			checkInfo(t, resp, r, r.Commits[rc.commit], ids[rc.commit], r.ID+"@"+rc.rev)
		}
		// Without a revision: main.
		resp := f.do(t, f.client, "GET", hubproto.APIPath(r.ID), nil)
		var info hubproto.ModelInfo
		if resp.StatusCode != 200 || json.Unmarshal(resp.body, &info) != nil || info.SHA != ids[len(ids)-1] {
			t.Errorf("GET %s: %d, sha %q, want 200 and the commit of main %s", hubproto.APIPath(r.ID), resp.StatusCode, info.SHA, ids[len(ids)-1])
		}
	}
}

func checkInfo(t *testing.T, resp response, r Repo, c Commit, commit, what string) {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Errorf("model info of %s: %d %s", what, resp.StatusCode, resp.body)
		return
	}
	var info hubproto.ModelInfo
	if err := json.Unmarshal(resp.body, &info); err != nil {
		t.Errorf("model info of %s: %v", what, err)
		return
	}
	repoType, id := hubproto.SplitRepo(r.ID)
	if info.ID != id || info.SHA != commit {
		t.Errorf("model info of %s: id %q sha %q, want %q and %s", what, info.ID, info.SHA, id, commit)
	}
	if repoType != hubproto.RepoTypeModel && info.ModelID != "" {
		t.Errorf("info of the %s %s: modelId %q, want none", repoType, what, info.ModelID)
	}
	if g, ok := info.Gated.(bool); !(ok && !g) {
		if _, ok := info.Gated.(string); !ok {
			t.Errorf("model info of %s: gated %#v, want false or a string", what, info.Gated)
		}
	}
	got := map[string]hubproto.Sibling{}
	for _, s := range info.Siblings {
		got[s.RFilename] = s
	}
	if len(got) != len(c.Files) || len(info.Siblings) != len(c.Files) {
		t.Errorf("model info of %s: %d siblings, want %d", what, len(info.Siblings), len(c.Files))
	}
	for _, file := range c.Files {
		s, ok := got[file.Path]
		switch {
		case !ok:
			t.Errorf("model info of %s: no sibling %s", what, file.Path)
		case s.Size == nil || *s.Size != int64(len(file.Data)) || s.BlobID != blobID(file):
			t.Errorf("model info of %s: sibling %s: size %v blob id %q, want %d and %s", what, file.Path, s.Size, s.BlobID, len(file.Data), blobID(file))
		case file.LFS && (s.LFS == nil || s.LFS.SHA256 != sha256Hex(file.Data) || s.LFS.Size != int64(len(file.Data)) || s.LFS.PointerSize != int64(len(lfsPointer(file)))):
			t.Errorf("model info of %s: sibling %s: lfs %+v, want sha256 %s, size %d, pointer size %d", what, file.Path, s.LFS, sha256Hex(file.Data), len(file.Data), len(lfsPointer(file)))
		case !file.LFS && s.LFS != nil:
			t.Errorf("model info of %s: sibling %s is not an LFS file, has lfs %+v", what, file.Path, s.LFS)
		}
	}
}

// listTree follows a listing's pages and returns its entries and the
// number of pages.
func (f *fixture) listTree(t *testing.T, rawPath string) ([]hubproto.TreeEntry, int) {
	t.Helper()
	base, _ := url.Parse(f.srv.URL)
	next := f.srv.URL + rawPath
	var all []hubproto.TreeEntry
	seen := map[string]bool{}
	pages := 0
	for next != "" {
		pages++
		if pages > 100 || seen[next] {
			t.Fatalf("GET %s: pagination does not end", rawPath)
		}
		seen[next] = true
		u, _ := url.Parse(next)
		resp := f.do(t, f.client, "GET", u.RequestURI(), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", u.RequestURI(), resp.StatusCode, resp.body)
		}
		var page []hubproto.TreeEntry
		if err := json.Unmarshal(resp.body, &page); err != nil {
			t.Fatalf("GET %s: %v", u.RequestURI(), err)
		}
		all = append(all, page...)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			m := regexp.MustCompile(`<([^>]*)>\s*;\s*rel="?next"?`).FindStringSubmatch(link)
			if m == nil {
				t.Fatalf("GET %s: Link %q has no rel=next", u.RequestURI(), link)
			}
			nu, err := u.Parse(m[1])
			if err != nil || nu.Host != base.Host {
				t.Fatalf("GET %s: Link %q does not stay on the server", u.RequestURI(), link)
			}
			if len(page) == 0 {
				t.Fatalf("GET %s: an empty page with a next link", u.RequestURI())
			}
			next = nu.String()
		}
	}
	return all, pages
}

// wantTree is the listing of dir in c: files and directories below dir,
// all of them or its children only.
func wantTree(c Commit, dir string, recursive bool) map[string]File {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	out := map[string]File{}
	for _, file := range c.Files {
		rest, ok := strings.CutPrefix(file.Path, prefix)
		if !ok {
			continue
		}
		parts := strings.Split(rest, "/")
		for i := 1; i < len(parts); i++ {
			if !recursive && i > 1 {
				break
			}
			out[prefix+strings.Join(parts[:i], "/")] = File{Path: "/"} // a directory
		}
		if recursive || len(parts) == 1 {
			out[file.Path] = file
		}
	}
	return out
}

func checkTree(t *testing.T, what string, got []hubproto.TreeEntry, want map[string]File) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.Path] {
			t.Errorf("%s: %s listed twice", what, e.Path)
		}
		seen[e.Path] = true
		w, ok := want[e.Path]
		switch {
		case !ok:
			t.Errorf("%s: unexpected entry %s (%s)", what, e.Path, e.Type)
		case w.Path == "/":
			if e.Type != hubproto.TypeDirectory || !sha1Re.MatchString(e.OID) || e.LFS != nil {
				t.Errorf("%s: %s: %+v, want a directory with a 40-hex oid", what, e.Path, e)
			}
		case e.Type != hubproto.TypeFile || e.OID != blobID(w) || e.Size != int64(len(w.Data)):
			t.Errorf("%s: %s: type %q oid %q size %d, want a file, %s, %d", what, e.Path, e.Type, e.OID, e.Size, blobID(w), len(w.Data))
		case w.LFS && (e.LFS == nil || e.LFS.OID != sha256Hex(w.Data) || e.LFS.Size != int64(len(w.Data)) || e.LFS.PointerSize != int64(len(lfsPointer(w)))):
			t.Errorf("%s: %s: lfs %+v, want oid %s size %d", what, e.Path, e.LFS, sha256Hex(w.Data), len(w.Data))
		case !w.LFS && e.LFS != nil:
			t.Errorf("%s: %s is not an LFS file, has lfs %+v", what, e.Path, e.LFS)
		}
	}
	for p := range want {
		if !seen[p] {
			t.Errorf("%s: %s missing", what, p)
		}
	}
}

func testTree(t *testing.T, f *fixture) {
	for _, r := range f.repos {
		for _, rc := range f.revisions(r) {
			c := r.Commits[rc.commit]
			for _, tc := range []struct {
				dir, escaped string
				recursive    bool
			}{
				{"", "", true}, {"", "", false},
				{"sub", "/sub", false}, {"sub", "/sub", true},
				{"sub/dir", "/sub/dir", false}, {"sub/dir", "/sub%2Fdir", true},
			} {
				if tc.dir != "" && len(wantTree(c, tc.dir, true)) == 0 {
					continue
				}
				p := hubproto.APIPath(r.ID) + "/tree/" + rc.rev + tc.escaped
				if tc.recursive {
					p += "?recursive=true"
					if tc.dir == "sub" {
						p = strings.Replace(p, "true", "True", 1) // as Python's requests encodes it
					}
				}
				got, _ := f.listTree(t, p)
				checkTree(t, "GET "+p, got, wantTree(c, tc.dir, tc.recursive))
			}
		}
	}
	// A path that is not a directory of the commit.
	ids := f.srv.Commits["org/model"]
	for _, p := range []string{"/api/models/org/model/tree/main/nope", "/api/models/org/model/tree/main/sub/nope?recursive=true"} {
		resp := f.do(t, f.client, "GET", p, nil)
		if resp.StatusCode != 404 || resp.Header.Get(hubproto.HeaderErrorCode) != hubproto.ErrorEntryNotFound {
			t.Errorf("GET %s: %d %q, want 404 %s", p, resp.StatusCode, resp.Header.Get(hubproto.HeaderErrorCode), hubproto.ErrorEntryNotFound)
		}
		if c := resp.Header.Get(hubproto.HeaderRepoCommit); c != "" && c != ids[len(ids)-1] {
			t.Errorf("GET %s: %s %s, want the commit of main", p, hubproto.HeaderRepoCommit, c)
		}
	}
}

func testTreePagination(t *testing.T, f *fixture) {
	r := f.repos[0]
	c := r.Commits[len(r.Commits)-1]
	want := wantTree(c, "", true)
	got, pages := f.listTree(t, "/api/models/"+r.ID+"/tree/main?recursive=true")
	checkTree(t, "recursive listing", got, want)
	if minPages := (len(want) + 2) / 3; pages < minPages {
		t.Errorf("%d entries in %d pages, want pages of at most 3 entries (at least %d pages)", len(want), pages, minPages)
	}
	// The pages of a sub-directory keep to it.
	got, _ = f.listTree(t, "/api/models/"+r.ID+"/tree/main/sub?recursive=true")
	checkTree(t, "recursive listing of sub", got, wantTree(c, "sub", true))
}

func testResolveHead(t *testing.T, f *fixture) {
	for _, r := range f.repos {
		ids := f.srv.Commits[r.ID]
		for _, rc := range f.revisions(r) {
			for _, file := range r.Commits[rc.commit].Files {
				p := resolvePath(r.ID, rc.rev, file.Path)
				resp := f.do(t, f.client, "HEAD", p, nil)
				checkResolveHeaders(t, "HEAD "+p, resp, file, ids[rc.commit])
			}
		}
	}
}

func checkResolveHeaders(t *testing.T, what string, resp response, file File, commit string) {
	t.Helper()
	h := resp.Header
	if got := h.Get(hubproto.HeaderRepoCommit); got != commit {
		t.Errorf("%s: %s %q, want %s", what, hubproto.HeaderRepoCommit, got, commit)
	}
	redirect := resp.StatusCode >= 300 && resp.StatusCode < 400
	switch {
	case redirect && !file.LFS:
		t.Errorf("%s: %d, a regular file is served by the hub itself", what, resp.StatusCode)
	case redirect && h.Get("Location") == "":
		t.Errorf("%s: %d without Location", what, resp.StatusCode)
	case !redirect && resp.StatusCode != 200:
		t.Errorf("%s: %d, want 200 or a redirect", what, resp.StatusCode)
		return
	}
	if file.LFS {
		if got := unquoteETag(h.Get(hubproto.HeaderLinkedETag)); got != sha256Hex(file.Data) {
			t.Errorf("%s: %s %q, want the sha256 %s", what, hubproto.HeaderLinkedETag, got, sha256Hex(file.Data))
		}
		if got := h.Get(hubproto.HeaderLinkedSize); got != strconv.Itoa(len(file.Data)) {
			t.Errorf("%s: %s %q, want %d", what, hubproto.HeaderLinkedSize, got, len(file.Data))
		}
	} else {
		if got := unquoteETag(h.Get("ETag")); got != gitBlobID(file.Data) {
			t.Errorf("%s: ETag %q, want the git blob id %s", what, got, gitBlobID(file.Data))
		}
		if h.Get(hubproto.HeaderLinkedETag) != "" {
			t.Errorf("%s: a regular file has %s %q", what, hubproto.HeaderLinkedETag, h.Get(hubproto.HeaderLinkedETag))
		}
	}
	if !redirect && resp.ContentLength != int64(len(file.Data)) {
		t.Errorf("%s: Content-Length %d, want %d", what, resp.ContentLength, len(file.Data))
	}
}

// get fetches a file's content, following redirects as huggingface_hub
// does: the token goes to the server's host only (another port is another
// host).
func (f *fixture) get(t *testing.T, p string, hdr map[string]string) response {
	t.Helper()
	resp := f.do(t, f.client, "GET", p, hdr)
	base, _ := url.Parse(f.srv.URL)
	cur, _ := url.Parse(f.srv.URL + p)
	for hops := 0; resp.StatusCode >= 300 && resp.StatusCode < 400; hops++ {
		loc, err := cur.Parse(resp.Header.Get("Location"))
		if err != nil || hops == 5 {
			t.Fatalf("GET %s: bad redirect to %q", p, resp.Header.Get("Location"))
		}
		req, _ := http.NewRequest("GET", loc.String(), nil)
		if f.token != "" && loc.Host == base.Host {
			req.Header.Set("Authorization", "Bearer "+f.token)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		r, err := f.client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", loc, err)
		}
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: reading the body: %v", loc, err)
		}
		resp, cur = response{r, body}, loc
	}
	return resp
}

func testResolveGet(t *testing.T, f *fixture) {
	for _, r := range f.repos {
		for _, rc := range f.revisions(r) {
			for _, file := range r.Commits[rc.commit].Files {
				p := resolvePath(r.ID, rc.rev, file.Path)
				resp := f.get(t, p, nil)
				if resp.StatusCode != 200 || !bytes.Equal(resp.body, file.Data) || resp.ContentLength != int64(len(file.Data)) {
					t.Errorf("GET %s: %d, %d bytes (Content-Length %d), want 200 and the %d bytes of the file", p, resp.StatusCode, len(resp.body), resp.ContentLength, len(file.Data))
				}
				if e := unquoteETag(resp.Header.Get("ETag")); e != "" && e != etag(file) && e != blobID(file) {
					t.Errorf("GET %s: ETag %q, want %s", p, e, etag(file))
				}
			}
		}
	}
}

func testRanges(t *testing.T, f *fixture) {
	r := f.repos[0]
	c := r.Commits[len(r.Commits)-1]
	for _, file := range c.Files {
		size := len(file.Data)
		p := resolvePath(r.ID, "main", file.Path)
		if size > 0 && size < 16 {
			continue // the cases below need a few bytes
		}
		if size == 0 {
			resp := f.get(t, p, map[string]string{"Range": "bytes=0-"})
			if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
				t.Errorf("GET %s, bytes=0- of an empty file: %d, want 416", p, resp.StatusCode)
			}
			continue
		}
		type rng struct {
			header     string
			start, end int // [start, end); end 0: 416
		}
		cases := []rng{
			{"bytes=0-9", 0, min(10, size)},
			{"bytes=5-", 5, size},
			{"bytes=-4", size - 4, size},
			{fmt.Sprintf("bytes=%d-%d", size-3, size+100), size - 3, size},
			{fmt.Sprintf("bytes=%d-", size), 0, 0},
			{fmt.Sprintf("bytes=%d-%d", size+10, size+20), 0, 0},
		}
		for _, rc := range cases {
			resp := f.get(t, p, map[string]string{"Range": rc.header})
			if rc.end == 0 {
				if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", size) {
					t.Errorf("GET %s, %s: %d, Content-Range %q, want 416 and bytes */%d", p, rc.header, resp.StatusCode, resp.Header.Get("Content-Range"), size)
				}
				continue
			}
			wantCR := fmt.Sprintf("bytes %d-%d/%d", rc.start, rc.end-1, size)
			if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantCR || !bytes.Equal(resp.body, file.Data[rc.start:rc.end]) {
				t.Errorf("GET %s, %s: %d, Content-Range %q, %d bytes; want 206, %s and bytes %d-%d", p, rc.header, resp.StatusCode, resp.Header.Get("Content-Range"), len(resp.body), wantCR, rc.start, rc.end-1)
			}
		}
		// A Range that is not one byte range is ignored: the whole file.
		for _, h := range []string{"bytes=0-1,4-5", "bytes=5-2", "items=0-1"} {
			resp := f.get(t, p, map[string]string{"Range": h})
			if resp.StatusCode != 200 || !bytes.Equal(resp.body, file.Data) {
				t.Errorf("GET %s, %s: %d, %d bytes, want 200 and the whole file", p, h, resp.StatusCode, len(resp.body))
			}
		}
	}
}

func testErrors(t *testing.T, f *fixture) {
	ids := f.srv.Commits["org/model"]
	main := ids[len(ids)-1]
	dmain := f.srv.Commits["datasets/org/model"][0]
	cases := []struct {
		path     string
		statuses []int
		code     string
		commit   string // the X-Repo-Commit the answer must carry, if any
	}{
		{"/api/models/org/nope/revision/main", []int{401, 404}, hubproto.ErrorRepoNotFound, ""},
		{"/api/models/org/nope/tree/main", []int{401, 404}, hubproto.ErrorRepoNotFound, ""},
		{"/org/nope/resolve/main/config.json", []int{401, 404}, hubproto.ErrorRepoNotFound, ""},
		{"/nope/resolve/main/config.json", []int{401, 404}, hubproto.ErrorRepoNotFound, ""},
		{"/api/datasets/org/nope/revision/main", []int{401, 404}, hubproto.ErrorRepoNotFound, ""},
		{"/api/datasets/org/nope/tree/main", []int{401, 404}, hubproto.ErrorRepoNotFound, ""},
		{"/datasets/org/nope/resolve/main/config.json", []int{401, 404}, hubproto.ErrorRepoNotFound, ""},
		{"/api/spaces/org/model/revision/main", []int{401, 404}, hubproto.ErrorRepoNotFound, ""},
		{"/spaces/org/model/resolve/main/config.json", []int{401, 404}, hubproto.ErrorRepoNotFound, ""},
		{"/api/models/org/app/revision/main", []int{401, 404}, hubproto.ErrorRepoNotFound, ""},
		{"/api/datasets/org/model/revision/nope", []int{404}, hubproto.ErrorRevisionNotFound, ""},
		{"/datasets/org/model/resolve/main/model.safetensors", []int{404}, hubproto.ErrorEntryNotFound, dmain},
		{"/api/models/org/model/revision/nope", []int{404}, hubproto.ErrorRevisionNotFound, ""},
		{"/api/models/org/model/revision/" + strings.Repeat("0", 40), []int{404}, hubproto.ErrorRevisionNotFound, ""},
		{"/api/models/org/model/tree/nope", []int{404}, hubproto.ErrorRevisionNotFound, ""},
		{"/org/model/resolve/nope/config.json", []int{404}, hubproto.ErrorRevisionNotFound, ""},
		{"/org/model/resolve/refs%2Fpr%2F9/config.json", []int{404}, hubproto.ErrorRevisionNotFound, ""},
		{"/org/model/resolve/main/nope.json", []int{404}, hubproto.ErrorEntryNotFound, main},
		{"/org/model/resolve/main/sub/nope.txt", []int{404}, hubproto.ErrorEntryNotFound, main},
		{"/org/model/resolve/" + ids[0] + "/empty.txt", []int{404}, hubproto.ErrorEntryNotFound, ids[0]},
	}
	for _, tc := range cases {
		for _, method := range []string{"GET", "HEAD"} {
			resp := f.do(t, f.client, method, tc.path, nil)
			code := resp.Header.Get(hubproto.HeaderErrorCode)
			if !slices.Contains(tc.statuses, resp.StatusCode) || code != tc.code {
				t.Errorf("%s %s: %d %s %q, want %v and %s", method, tc.path, resp.StatusCode, hubproto.HeaderErrorCode, code, tc.statuses, tc.code)
			}
			if tc.commit != "" && resp.Header.Get(hubproto.HeaderRepoCommit) != tc.commit {
				t.Errorf("%s %s: %s %q, want %s", method, tc.path, hubproto.HeaderRepoCommit, resp.Header.Get(hubproto.HeaderRepoCommit), tc.commit)
			}
			if method == "GET" {
				var body hubproto.ErrorBody
				if err := json.Unmarshal(resp.body, &body); err != nil || body.Error == "" {
					t.Errorf("GET %s: body %q, want JSON with an error message", tc.path, resp.body)
				}
			}
		}
	}
}

func testToken(t *testing.T, f *fixture) {
	r := f.repos[0]
	ids := f.srv.Commits[r.ID]
	main := r.Commits[len(r.Commits)-1]
	paths := []string{"/api/models/" + r.ID + "/revision/main", "/api/models/" + r.ID + "/tree/main", resolvePath(r.ID, "main", "config.json")}
	for _, token := range []string{"", "hf_wrong"} {
		g := *f
		g.token = token
		for _, p := range paths {
			resp := g.do(t, g.client, "GET", p, nil)
			if resp.StatusCode != 401 && resp.StatusCode != 403 {
				t.Errorf("GET %s with token %q: %d, want 401 or 403", p, token, resp.StatusCode)
			}
			if resp.Header.Get(hubproto.HeaderRepoCommit) != "" || bytes.Contains(resp.body, []byte(ids[0])) || bytes.Contains(resp.body, []byte(ids[len(ids)-1])) {
				t.Errorf("GET %s with token %q: the refusal tells the commit", p, token)
			}
			if token != "" && (resp.StatusCode != 401 || resp.Header.Get(hubproto.HeaderErrorMessage) != hubproto.InvalidCredentials) {
				t.Errorf("GET %s with a wrong token: %d %q, want 401 %q", p, resp.StatusCode, resp.Header.Get(hubproto.HeaderErrorMessage), hubproto.InvalidCredentials)
			}
		}
	}
	resp := f.do(t, f.client, "GET", paths[0]+"?blobs=true", nil)
	checkInfo(t, resp, r, main, ids[len(ids)-1], "with the token")
	for _, file := range main.Files {
		p := resolvePath(r.ID, "main", file.Path)
		checkResolveHeaders(t, "HEAD "+p+" with the token", f.do(t, f.client, "HEAD", p, nil), file, ids[len(ids)-1])
		if resp := f.get(t, p, nil); resp.StatusCode != 200 || !bytes.Equal(resp.body, file.Data) {
			t.Errorf("GET %s with the token: %d, %d bytes", p, resp.StatusCode, len(resp.body))
		}
	}
	testClientOn(t, f)
}

func testClient(t *testing.T, f *fixture) { testClientOn(t, f) }

// testClientOn: hubclient lists every commit of every repo and downloads
// (OpenFile, verified) each file right.
func testClientOn(t *testing.T, f *fixture) {
	c, err := hubclient.New(hubclient.Options{Endpoint: f.srv.URL, Token: f.token, RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, r := range f.repos {
		ids := f.srv.Commits[r.ID]
		for _, rc := range f.revisions(r) {
			rev, _ := url.PathUnescape(rc.rev)
			commit, files, err := c.Files(ctx, r.ID, rev, nil, nil)
			if err != nil || commit != ids[rc.commit] {
				t.Errorf("hubclient Files %s@%s: %s, %v; want commit %s", r.ID, rev, commit, err, ids[rc.commit])
				continue
			}
			want := r.Commits[rc.commit].Files
			var gotPaths, wantPaths []string
			for _, file := range files {
				gotPaths = append(gotPaths, file.Path)
			}
			for _, file := range want {
				wantPaths = append(wantPaths, file.Path)
			}
			sort.Strings(gotPaths)
			sort.Strings(wantPaths)
			if !slices.Equal(gotPaths, wantPaths) {
				t.Errorf("hubclient Files %s@%s: %v, want %v", r.ID, rev, gotPaths, wantPaths)
			}
			if rc.rev != ids[rc.commit] {
				continue // the contents are fetched once per commit
			}
			for _, file := range want {
				rd, meta, err := c.OpenFile(ctx, r.ID, commit, file.Path)
				if err != nil {
					t.Errorf("hubclient OpenFile %s@%s %s: %v", r.ID, rev, file.Path, err)
					continue
				}
				data, err := io.ReadAll(rd)
				rd.Close()
				if err != nil || !bytes.Equal(data, file.Data) || meta.ETag != etag(file) || meta.Commit != commit {
					t.Errorf("hubclient OpenFile %s %s: %d bytes, %v, etag %s commit %s", r.ID, file.Path, len(data), err, meta.ETag, meta.Commit)
				}
			}
		}
		if _, err := c.Resolve(ctx, r.ID, "main", path.Join("nope", "x")); err == nil {
			t.Errorf("hubclient Resolve of a missing file in %s: no error", r.ID)
		}
	}
}
