// Package hubtest runs an in-process Hugging Face Hub for tests, the way
// net/http/httptest runs an HTTP server: it speaks the Hub's download
// protocol for models, datasets and spaces (repo info, paginated tree
// listings, paths-info, /resolve with X-Repo-Commit,
// ETag and X-Linked-* headers, redirects of LFS files to a separate CDN
// host, renamed repositories), knows gated and private repositories, injects
// faults (dropped connections, 429 with Retry-After, 503, wrong bytes, a 200
// answer to a Range request, a per-connection bandwidth cap), answers as the
// Hub does for repositories on Xet storage when Hub.Xet is set (signed,
// expiring CDN redirects with X-Xet-Hash; small files through
// /api/resolve-cache/; see xet.go) and counts every request so tests can
// assert what was fetched.
//
//	hub := hubtest.New(t)
//	hub.AddRepo("org/model").AddFile("config.json", []byte(`{}`))
//	client, _ := hubclient.New(hubclient.Options{Endpoint: hub.URL()})
package hubtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubmirror/hubmirror/hubproto"
)

// Hub is a running test hub with its CDN.
type Hub struct {
	// LFSThreshold is the size from which AddFile stores files with LFS
	// (default 1024). Set it before adding files.
	LFSThreshold int64
	// PageSize is the number of entries per tree listing page (default 50).
	PageSize int
	// Xet makes the hub answer /resolve as the Hub does for repositories
	// on Xet storage (see xet.go): LFS files redirect to a signed,
	// expiring CDN URL with X-Xet-Hash and a Link rel="xet-auth", regular
	// files to /api/resolve-cache/. Set it before serving.
	Xet bool
	// XetURLTTL is how long the signed CDN URLs of Xet answers stay valid
	// (default 1 hour; see AdvanceClock).
	XetURLTTL time.Duration

	hub, cdn *httptest.Server

	mu        sync.Mutex
	repos     map[string]*Repo
	renamed   map[string]string
	token     string
	inflight  int // GETs of file bytes being answered
	peak      int // the most there ever were at once
	faults    []*faultState
	bandwidth int64
	requests  []Request
	signer    *xetSigner
	clockSkew time.Duration
	gates     map[string]*Gate // by file path (see Hold)
}

// New starts a hub and its CDN that stop when the test ends.
func New(t testing.TB) *Hub {
	h := NewServer()
	t.Cleanup(h.Close)
	return h
}

// NewServer starts a hub outside a test (benchmarks, tools); call Close.
func NewServer() *Hub {
	h := &Hub{
		LFSThreshold: 1024,
		PageSize:     50,
		repos:        map[string]*Repo{},
		renamed:      map[string]string{},
		signer:       newXetSigner(),
	}
	h.hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	return h
}

// Close stops both servers.
func (h *Hub) Close() {
	h.hub.CloseClientConnections()
	h.cdn.CloseClientConnections()
	h.hub.Close()
	h.cdn.Close()
}

// URL is the hub endpoint (HF_ENDPOINT).
func (h *Hub) URL() string { return h.hub.URL }

// CDNURL is the base URL of the CDN host LFS files redirect to.
func (h *Hub) CDNURL() string { return h.cdn.URL }

// BlobURL is the CDN URL of an LFS file's content (for tools like curl).
func (h *Hub) BlobURL(f *File) string {
	return h.cdn.URL + "/blobs/" + f.SHA256 + "?file=" + url.QueryEscape(f.Path) + "&X-Amz-Signature=test"
}

// SetToken sets the one token the hub accepts. Private and gated
// repositories need it; any other bearer token gets 401.
func (h *Hub) SetToken(token string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.token = token
}

// AddRepo creates an empty repository (its main branch has one commit with
// no files) and returns it.
func (h *Hub) AddRepo(id string) *Repo {
	r := &Repo{hub: h, ID: id, files: map[string]*File{}, commits: map[string]map[string]*File{}, refs: map[string]string{}}
	h.mu.Lock()
	defer h.mu.Unlock()
	r.commitLocked()
	h.repos[id] = r
	return r
}

// Rename moves a repository to a new id; requests to the old id get a
// relative 307 redirect, as the Hub does for renamed repositories.
func (h *Hub) Rename(oldID, newID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.repos[oldID]
	delete(h.repos, oldID)
	r.ID = newID
	h.repos[newID] = r
	h.renamed[oldID] = newID
}

// SetBandwidth caps every download response (so every connection) at
// bytesPerSecond; 0 removes the cap.
func (h *Hub) SetBandwidth(bytesPerSecond int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bandwidth = bytesPerSecond
}

// Request is one request the hub or the CDN answered.
type Request struct {
	Host   string // "hub" or "cdn"
	Kind   string // "info", "tree", "paths-info", "resolve" (hub file HEAD/GET), "blob" (CDN GET) or "cache" (the resolve cache of Xet answers)
	Method string
	Repo   string // repo id as requested ("" for the CDN)
	Path   string // file path in the repository (resolve and blob requests)
	Range  string // Range header as received
	// Start and End delimit the byte range the answer started to serve
	// ([Start, End)); Sent is how many body bytes were actually written.
	Start, End, Sent int64
	Status           int
	Auth             bool // an Authorization header was present
	Fault            string
}

// Requests returns every request answered so far, in order of arrival.
func (h *Hub) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.requests...)
}

// ResetRequests forgets the requests answered so far (and the peak of
// PeakDownloads).
func (h *Hub) ResetRequests() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests = nil
	h.peak = h.inflight
}

// PeakDownloads is the largest number of file downloads (GETs of file
// bytes, hub or CDN) answered at the same time.
func (h *Hub) PeakDownloads() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak
}

// Downloads returns the requests that served bytes of path (GET on /resolve
// or on the CDN); all files when path is "".
func (h *Hub) Downloads(path string) []Request {
	var out []Request
	for _, r := range h.Requests() {
		if r.Method == http.MethodGet && (r.Kind == "resolve" || r.Kind == "blob" || r.Kind == "cache") && (path == "" || r.Path == path) {
			out = append(out, r)
		}
	}
	return out
}

// BytesSent is the number of body bytes served for path ("" for all files).
func (h *Hub) BytesSent(path string) int64 {
	var n int64
	for _, r := range h.Downloads(path) {
		n += r.Sent
	}
	return n
}

func (h *Hub) record(r *Request) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests = append(h.requests, *r)
	return len(h.requests) - 1
}

func (h *Hub) update(i int, sent int64, fault string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests[i].Sent = sent
	if fault != "" {
		h.requests[i].Fault = fault
	}
}

// access checks the token for a repository. It returns the status, error
// code and message to answer, or 0 when access is granted.
func (h *Hub) accessLocked(r *Repo, req *http.Request) (int, string, string) {
	auth := req.Header.Get("Authorization")
	valid := h.token != "" && auth == "Bearer "+h.token
	if auth != "" && !valid {
		return http.StatusUnauthorized, "", hubproto.InvalidCredentials
	}
	if r.private && !valid {
		return http.StatusUnauthorized, hubproto.ErrorRepoNotFound, "Repository not found"
	}
	if r.gated && !valid {
		return http.StatusUnauthorized, hubproto.ErrorGatedRepo,
			fmt.Sprintf("Access to model %s is restricted. You must have access to it and be authenticated to access it. Please log in.", r.ID)
	}
	return 0, "", ""
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set(hubproto.HeaderErrorCode, code)
	}
	if msg != "" {
		w.Header().Set(hubproto.HeaderErrorMessage, msg)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(hubproto.ErrorBody{Error: msg})
}

// splitEscaped splits an escaped URL path into unescaped segments.
func splitEscaped(p string) ([]string, bool) {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range parts {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}

// route parses a hub URL into the qualified repo id, the action and the
// rest. Forms: api/{models,datasets,spaces}/{id}[/{revision|tree|paths-info}/{rev}[/...]]
// and [datasets/|spaces/]{id}/resolve/{rev}/{path...}.
func route(segs []string) (id, action, rev string, rest []string, ok bool) {
	api := len(segs) >= 2 && segs[0] == "api"
	typePrefix := ""
	if api {
		switch segs[1] {
		case "models":
		case "datasets", "spaces":
			typePrefix = segs[1] + "/"
		default:
			return "", "", "", nil, false
		}
		segs = segs[2:]
	} else if len(segs) >= 1 && (segs[0] == "datasets" || segs[0] == "spaces") {
		typePrefix, segs = segs[0]+"/", segs[1:]
	}
	for n := 1; n <= 2 && n < len(segs); n++ {
		a := segs[n]
		if (api && (a == "revision" || a == "tree" || a == "paths-info")) || (!api && a == "resolve") {
			if len(segs) < n+2 {
				return "", "", "", nil, false
			}
			return typePrefix + strings.Join(segs[:n], "/"), a, segs[n+1], segs[n+2:], true
		}
	}
	if api && (len(segs) == 1 || len(segs) == 2) {
		// Model info at the default branch.
		return typePrefix + strings.Join(segs, "/"), "revision", "main", nil, true
	}
	return "", "", "", nil, false
}

func (h *Hub) serveHub(w http.ResponseWriter, req *http.Request) {
	segs, ok := splitEscaped(req.URL.EscapedPath())
	if !ok {
		writeError(w, http.StatusBadRequest, "", "bad path")
		return
	}
	if h.serveResolveCache(w, req, segs) {
		return
	}
	id, action, rev, rest, ok := route(segs)
	if !ok {
		writeError(w, http.StatusNotFound, "", "no such endpoint")
		return
	}
	kind := map[string]string{"revision": "info", "tree": "tree", "resolve": "resolve", "paths-info": "paths-info"}[action]
	if (req.Method == http.MethodPost) != (kind == "paths-info") {
		writeError(w, http.StatusMethodNotAllowed, "", "method not allowed")
		return
	}
	rec := &Request{Host: "hub", Kind: kind, Method: req.Method, Repo: id, Path: strings.Join(rest, "/"),
		Range: req.Header.Get("Range"), Auth: req.Header.Get("Authorization") != ""}
	dir := ""
	if kind != "resolve" {
		dir = rec.Path
		rec.Path = ""
	}

	h.mu.Lock()
	if newID, moved := h.renamed[id]; moved {
		h.mu.Unlock()
		// Relative redirect to the same URL under the new id.
		esc := strings.Replace(req.URL.EscapedPath(), "/"+id+"/", "/"+newID+"/", 1)
		if req.URL.RawQuery != "" {
			esc += "?" + req.URL.RawQuery
		}
		w.Header().Set("Location", esc)
		w.WriteHeader(http.StatusTemporaryRedirect)
		rec.Status = http.StatusTemporaryRedirect
		h.record(rec)
		return
	}
	scope := ScopeAPI
	if kind == "resolve" {
		scope = ScopeResolve
		if req.Method == http.MethodGet {
			scope = ScopeDownload
		}
	}
	fault := h.takeFaultLocked(scope, rec.Path, ServiceUnavailable, TooManyRequests)
	w = h.trickleLocked(w, req, scope, rec.Path)
	repo := h.repos[id]
	if fault != nil {
		h.mu.Unlock()
		rec.Fault = fault.Kind.String()
		rec.Status = fault.status()
		h.record(rec)
		if fault.Kind == TooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(fault.RetryAfter))
		}
		writeError(w, rec.Status, "", rec.Fault)
		return
	}
	if repo == nil {
		h.mu.Unlock()
		rec.Status = http.StatusUnauthorized
		h.record(rec)
		writeError(w, http.StatusUnauthorized, hubproto.ErrorRepoNotFound, "Repository not found")
		return
	}
	if status, code, msg := h.accessLocked(repo, req); status != 0 {
		h.mu.Unlock()
		rec.Status = status
		h.record(rec)
		writeError(w, status, code, msg)
		return
	}
	commit, tree := repo.resolveLocked(rev)
	var files []*File
	if kind == "info" || kind == "tree" { // a file request needs no listing
		for _, f := range tree {
			files = append(files, f)
		}
	}
	h.mu.Unlock()
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })

	if tree == nil {
		rec.Status = http.StatusNotFound
		h.record(rec)
		writeError(w, http.StatusNotFound, hubproto.ErrorRevisionNotFound, "Invalid rev id: "+rev)
		return
	}
	switch kind {
	case "info":
		h.serveInfo(w, req, rec, repo, commit, files)
	case "tree":
		h.serveTree(w, req, rec, commit, files, dir)
	case "paths-info":
		h.servePathsInfo(w, req, rec, commit, tree)
	case "resolve":
		h.serveResolve(w, req, rec, rev, commit, tree)
	}
}

func (h *Hub) serveInfo(w http.ResponseWriter, req *http.Request, rec *Request, repo *Repo, commit string, files []*File) {
	blobs := req.URL.Query().Get("blobs") == "true"
	sibs := []hubproto.Sibling{}
	for _, f := range files {
		s := hubproto.Sibling{RFilename: f.Path}
		if blobs {
			size := f.Content.Size()
			s.Size, s.BlobID = &size, f.GitSHA1
			if f.LFS {
				s.LFS = &hubproto.LFS{SHA256: f.SHA256, Size: size, PointerSize: int64(len(lfsPointer(f.SHA256, size)))}
			}
		}
		sibs = append(sibs, s)
	}
	var gated any = false
	if repo.gated {
		gated = "manual"
	}
	repoType, id := hubproto.SplitRepo(repo.ID)
	modelID := ""
	if repoType == hubproto.RepoTypeModel {
		modelID = id
	}
	rec.Status = http.StatusOK
	h.record(rec)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(hubproto.ModelInfo{
		ID: id, ModelID: modelID, SHA: commit, Private: repo.private, Gated: gated, Tags: []string{}, Siblings: sibs,
	})
}

func (h *Hub) serveTree(w http.ResponseWriter, req *http.Request, rec *Request, commit string, files []*File, dir string) {
	// The entries under dir (all of them, or with recursive=false its
	// children only), directories first (as the Hub lists them), then
	// files.
	dir = strings.Trim(dir, "/")
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	recursive, _ := strconv.ParseBool(req.URL.Query().Get("recursive"))
	var last *hubproto.LastCommit
	if expand, _ := strconv.ParseBool(req.URL.Query().Get("expand")); expand {
		last = lastCommit(commit)
	}
	listed := func(p string) bool {
		rest, ok := strings.CutPrefix(p, prefix)
		return ok && (recursive || !strings.Contains(rest, "/"))
	}
	var entries []hubproto.TreeEntry
	dirs := map[string]bool{}
	found := dir == ""
	for _, f := range files {
		found = found || strings.HasPrefix(f.Path, prefix)
		for i := strings.IndexByte(f.Path, '/'); i >= 0; {
			d := f.Path[:i]
			if !dirs[d] && listed(d) {
				dirs[d] = true
				sum := sha256.Sum256([]byte(commit + d))
				entries = append(entries, hubproto.TreeEntry{Type: hubproto.TypeDirectory, OID: hex.EncodeToString(sum[:20]), Path: d, LastCommit: last})
			}
			j := strings.IndexByte(f.Path[i+1:], '/')
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	if !found {
		rec.Status = http.StatusNotFound
		h.record(rec)
		w.Header().Set(hubproto.HeaderRepoCommit, commit)
		writeError(w, http.StatusNotFound, hubproto.ErrorEntryNotFound, fmt.Sprintf("%s does not exist on %q", dir, commit))
		return
	}
	for _, f := range files {
		if !listed(f.Path) {
			continue
		}
		e := treeFile(f)
		e.LastCommit = last
		entries = append(entries, e)
	}
	cursor, _ := strconv.Atoi(req.URL.Query().Get("cursor"))
	if cursor < 0 || cursor > len(entries) {
		cursor = len(entries)
	}
	page := h.PageSize
	if page <= 0 {
		page = 50
	}
	end := min(cursor+page, len(entries))
	if end < len(entries) {
		q := req.URL.Query()
		q.Set("cursor", strconv.Itoa(end))
		next := h.hub.URL + req.URL.EscapedPath() + "?" + q.Encode()
		w.Header().Set("Link", "<"+next+`>; rel="next"`)
	}
	rec.Status = http.StatusOK
	h.record(rec)
	w.Header().Set("Content-Type", "application/json")
	out := entries[cursor:end]
	if out == nil {
		out = []hubproto.TreeEntry{}
	}
	_ = json.NewEncoder(w).Encode(out)
}

// treeFile is the tree entry of a file.
func treeFile(f *File) hubproto.TreeEntry {
	size := f.Content.Size()
	e := hubproto.TreeEntry{Type: hubproto.TypeFile, OID: f.GitSHA1, Size: size, Path: f.Path}
	if f.LFS {
		e.LFS = &hubproto.LFS{OID: f.SHA256, Size: size, PointerSize: int64(len(lfsPointer(f.SHA256, size)))}
	}
	return e
}

// lastCommit is the lastCommit of an expanded entry: the hub keeps no
// history of paths, so every entry names the commit listed.
func lastCommit(commit string) *hubproto.LastCommit {
	return &hubproto.LastCommit{ID: commit, Title: "test hub commit", Date: "2026-01-01T00:00:00.000Z"}
}

// servePathsInfo answers POST .../paths-info/{rev}: the entries of the
// paths of the form ("paths" repeated, "expand"), files and directories,
// leaving out paths the commit does not hold.
func (h *Hub) servePathsInfo(w http.ResponseWriter, req *http.Request, rec *Request, commit string, tree map[string]*File) {
	if err := req.ParseForm(); err != nil {
		rec.Status = http.StatusBadRequest
		h.record(rec)
		writeError(w, http.StatusBadRequest, "", "malformed form")
		return
	}
	var last *hubproto.LastCommit
	if expand, _ := strconv.ParseBool(req.PostForm.Get("expand")); expand {
		last = lastCommit(commit)
	}
	out := []hubproto.TreeEntry{}
	for _, p := range req.PostForm["paths"] {
		p = strings.Trim(p, "/")
		if f := tree[p]; f != nil {
			e := treeFile(f)
			e.LastCommit = last
			out = append(out, e)
			continue
		}
		for fp := range tree {
			if p != "" && strings.HasPrefix(fp, p+"/") {
				sum := sha256.Sum256([]byte(commit + p))
				out = append(out, hubproto.TreeEntry{Type: hubproto.TypeDirectory, OID: hex.EncodeToString(sum[:20]), Path: p, LastCommit: last})
				break
			}
		}
	}
	rec.Status = http.StatusOK
	h.record(rec)
	w.Header().Set(hubproto.HeaderRepoCommit, commit)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (h *Hub) serveResolve(w http.ResponseWriter, req *http.Request, rec *Request, rev, commit string, tree map[string]*File) {
	f := tree[rec.Path]
	w.Header().Set(hubproto.HeaderRepoCommit, commit)
	if f == nil {
		rec.Status = http.StatusNotFound
		h.record(rec)
		writeError(w, http.StatusNotFound, hubproto.ErrorEntryNotFound, rec.Path+" does not exist on \""+commit+"\"")
		return
	}
	if h.Xet {
		h.serveXetResolve(w, req, rec, rec.Repo, rev, commit, f)
		return
	}
	size := f.Content.Size()
	if f.LFS {
		w.Header().Set(hubproto.HeaderLinkedETag, `"`+f.SHA256+`"`)
		w.Header().Set(hubproto.HeaderLinkedSize, strconv.FormatInt(size, 10))
		w.Header().Set("ETag", `"`+f.GitSHA1+`"`)
		w.Header().Set("Location", h.BlobURL(f))
		w.WriteHeader(http.StatusFound)
		rec.Status = http.StatusFound
		h.record(rec)
		return
	}
	w.Header().Set("ETag", `"`+f.GitSHA1+`"`)
	h.serveBytes(w, req, rec, f)
}

func (h *Hub) serveCDN(w http.ResponseWriter, req *http.Request) {
	rec := &Request{Host: "cdn", Kind: "blob", Method: req.Method, Path: req.URL.Query().Get("file"),
		Range: req.Header.Get("Range"), Auth: req.Header.Get("Authorization") != ""}
	if rec.Auth {
		// Like S3 with a presigned URL: a second authentication is an error,
		// and it shows a token leaked to another host.
		rec.Status = http.StatusBadRequest
		h.record(rec)
		writeError(w, http.StatusBadRequest, "", "Only one auth mechanism allowed")
		return
	}
	sha, xet := strings.CutPrefix(req.URL.Path, "/xet-bridge-us/")
	if !xet {
		sha = strings.TrimPrefix(req.URL.Path, "/blobs/")
	}
	var f *File
	h.mu.Lock()
	for _, r := range h.repos {
		for _, t := range r.commits {
			for _, cand := range t {
				if cand.LFS && cand.SHA256 == sha {
					f = cand
				}
			}
		}
	}
	fault := h.takeFaultLocked(ScopeDownload, rec.Path, ServiceUnavailable, TooManyRequests, ExpiredURL)
	w = h.trickleLocked(w, req, ScopeDownload, rec.Path)
	h.mu.Unlock()
	if fault != nil {
		rec.Fault = fault.Kind.String()
		rec.Status = fault.status()
		h.record(rec)
		if fault.Kind == TooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(fault.RetryAfter))
		}
		writeError(w, rec.Status, "", rec.Fault)
		return
	}
	if xet && h.refuseXetURL(w, req, rec, sha) {
		return
	}
	if f == nil || (!xet && req.URL.Query().Get("X-Amz-Signature") == "") {
		rec.Status = http.StatusForbidden
		h.record(rec)
		writeError(w, http.StatusForbidden, "", "AccessDenied")
		return
	}
	w.Header().Set("ETag", `"`+f.SHA256+`"`)
	h.serveBytes(w, req, rec, f)
}

// serveBytes answers HEAD or GET for a file's content, with Range support,
// the bandwidth cap and the download faults.
func (h *Hub) serveBytes(w http.ResponseWriter, req *http.Request, rec *Request, f *File) {
	size := f.Content.Size()
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Type", "application/octet-stream")
	start, end := int64(0), size
	status := http.StatusOK
	h.mu.Lock()
	var ignoreRange, drop, corrupt *faultState
	if req.Method == http.MethodGet {
		if rec.Range != "" {
			ignoreRange = h.takeFaultLocked(ScopeDownload, rec.Path, IgnoreRange)
		}
		drop = h.takeFaultLocked(ScopeDownload, rec.Path, DropConnection)
		corrupt = h.takeFaultLocked(ScopeDownload, rec.Path, WrongBytes)
	}
	bw := h.bandwidth
	gate := h.gateLocked(rec.Path)
	if req.Method == http.MethodGet {
		h.inflight++
		h.peak = max(h.peak, h.inflight)
		defer func() {
			h.mu.Lock()
			h.inflight--
			h.mu.Unlock()
		}()
	}
	h.mu.Unlock()
	if rec.Range != "" && ignoreRange == nil {
		// A Range that is not one byte range is ignored (RFC 9110): the
		// whole file is sent.
		off, n, ok, satisfiable := hubproto.ParseRange(rec.Range, size)
		switch {
		case ok && !satisfiable:
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			rec.Status = http.StatusRequestedRangeNotSatisfiable
			h.record(rec)
			w.WriteHeader(rec.Status)
			return
		case ok:
			start, end, status = off, off+n, http.StatusPartialContent
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, size))
		}
	}
	w.Header().Set("Content-Length", strconv.FormatInt(end-start, 10))
	rec.Start, rec.End, rec.Status = start, end, status
	var faults []string
	for _, f := range []*faultState{ignoreRange, drop, corrupt} {
		if f != nil {
			faults = append(faults, f.Kind.String())
		}
	}
	rec.Fault = strings.Join(faults, ",")
	idx := h.record(rec)
	w.WriteHeader(status)
	if req.Method == http.MethodHead {
		return
	}
	limit := end
	if drop != nil {
		limit = min(end, start+drop.After)
	}
	corruptAt := int64(-1)
	if corrupt != nil {
		corruptAt = corrupt.After
		if corruptAt < start || corruptAt >= end {
			corruptAt = start
		}
	}
	sent := h.writeBody(req.Context(), w, f.Content, start, limit, corruptAt, bw, gate)
	h.update(idx, sent, "")
	if drop != nil && limit < end {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler) // cut the connection mid-body
	}
}

// writeBody copies [start, end) of c to w at most bw bytes per second,
// flipping the byte at corruptAt (when >= 0), holding the bytes from
// gate.After on until the gate opens (gate may be nil). It returns the
// bytes written.
func (h *Hub) writeBody(ctx context.Context, w http.ResponseWriter, c Content, start, end, corruptAt, bw int64, gate *Gate) int64 {
	piece := int64(256 << 10)
	if bw > 0 {
		piece = min(piece, max(bw/100, 1)) // small pieces keep a capped stream smooth
	}
	buf := make([]byte, piece)
	began := time.Now()
	var sent int64
	for off := start; off < end; {
		n := int(min(int64(len(buf)), end-off))
		if gate != nil {
			if off >= gate.After {
				if !gate.wait(ctx, w) {
					return sent
				}
				gate = nil
			} else {
				n = int(min(int64(n), gate.After-off))
			}
		}
		if _, err := c.ReadAt(buf[:n], off); err != nil && n == 0 {
			return sent
		}
		if corruptAt >= off && corruptAt < off+int64(n) {
			buf[corruptAt-off] ^= 0xff
		}
		k, err := w.Write(buf[:n])
		sent += int64(k)
		off += int64(k)
		if err != nil {
			return sent
		}
		if bw > 0 {
			due := began.Add(time.Duration(float64(sent) / float64(bw) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return sent
				}
			}
		}
	}
	return sent
}
