package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hubmirror/hubmirror/hubproto"
	"github.com/hubmirror/hubmirror/storage"
)

// ServerOptions configure a Server.
type ServerOptions struct {
	// Token, when set, is the bearer token every request must carry
	// (Authorization: Bearer <token>, as huggingface_hub sends HF_TOKEN).
	Token string
	// MaxConcurrent bounds the requests served at once; more wait for a
	// slot. 0 means 32.
	MaxConcurrent int
	// Log receives one access-log record per request, with the error of a
	// request that failed (level ERROR for a 5xx answer or a response cut
	// short, WARN otherwise); nil logs nothing.
	Log *slog.Logger
	// VerifyTTL is how long a blob verification is trusted while the blob's
	// storage version is unchanged; 0 means 10 minutes.
	VerifyTTL time.Duration
	// SmallFile is the size up to which a file is read into memory and
	// verified before any of it is sent; 0 means 8 MiB. Each request in
	// flight may hold one such buffer.
	SmallFile int64
	// TreePageSize is the number of tree entries per page; 0 means 1000.
	TreePageSize int
	// StorageTimeout bounds how long a request waits for each call to the
	// store (storage.Timeout): a store that does not answer in time gets
	// the request a 503 answer naming the store. 0 means
	// DefaultStorageTimeout; negative, no bound.
	StorageTimeout time.Duration
	// Metrics, when set, count the requests and verifications (see
	// NewMetrics).
	Metrics *Metrics
	// Upstream, when set, is the hub a revision the mirror lacks is
	// fetched from (pull-through serving; see Upstream).
	Upstream *Upstream
}

// DefaultStorageTimeout is the default of ServerOptions.StorageTimeout.
const DefaultStorageTimeout = 5 * time.Second

// Server serves a mirror over HTTP with the Hugging Face Hub's download
// protocol, read-only, so that HF_ENDPOINT=http://host:port works for
// huggingface_hub, transformers and hubclient:
//
//	GET /api/models                                 repos in the mirror
//	GET /api/models/{repo}                          model info at main (sha, siblings)
//	GET /api/models/{repo}/revision/{rev}           model info at rev
//	GET /api/models/{repo}/tree/{rev}[/{path}]      tree listing, paginated (Link: rel="next"),
//	                                                with ?expand=true each entry's lastCommit
//	POST /api/models/{repo}/paths-info/{rev}        entries of the paths asked for (paths=...)
//	GET /api/models/{repo}/refs                     branches, tags, and variants as "converts"
//	HEAD, GET /{repo}/resolve/{rev}/{path}          file content
//
// and the same for datasets and spaces: /api/datasets/..., /api/spaces/...,
// /datasets/{repo}/resolve/..., /spaces/{repo}/resolve/... (the mirror
// keeps the types apart, see the package doc's Layout). A tree listing is
// produced page by page from the commit's manifest, without building the
// listing of the whole repo: a page costs its own entries and a binary
// search, so datasets of many files page as fast as small repos.
//
// File responses carry X-Repo-Commit, ETag (the sha256 of an LFS file, the
// git blob id of another, quoted), X-Linked-Etag and X-Linked-Size for LFS
// files, Content-Length and Accept-Ranges; a single byte range is served
// with 206, an unsatisfiable one with 416, several ranges are ignored (the
// whole file is sent, as RFC 9110 allows). Errors are JSON {"error": ...} with
// X-Error-Code RepoNotFound, RevisionNotFound or EntryNotFound (404) as the
// Hub sends them, and X-Error-Message. A store that fails with a transient
// error or does not answer within StorageTimeout gets a 503 answer (with
// Retry-After) naming the store. The wire types and header names are those
// of package hubproto, and the server passes its conformance suite
// (hubproto/prototest), as the test hub does.
//
// # Verification
//
// No byte of a blob that fails verification completes a response:
//   - Files up to SmallFile bytes are read whole and verified before the
//     response starts; a mismatch is a 500 response.
//   - A larger blob verified earlier is served as it is. The result of a
//     whole-blob verification is remembered per blob, with the blob's
//     storage version (S3 ETag; inode, size and mtime of a file), for
//     VerifyTTL; a blob replaced or modified in storage has a new version
//     and is verified again.
//   - A larger blob not verified yet that has a chunk sidecar (see
//     ChunksKey; Push writes one for every blob larger than a chunk) is
//     served chunk by chunk: only the chunks that cover the request are
//     read, each is hashed and compared with the sidecar before any of its
//     bytes is sent, and one chunk per request is in memory. A range
//     therefore starts after one chunk (8 MiB), not the whole blob. A full
//     GET also hashes the whole blob and withholds its last chunk unless
//     the blob matches the manifest; it then counts as a verification. A
//     chunk that does not match ends the response: with a 500 when it is
//     the first (after the whole blob is verified to tell a wrong blob from
//     a wrong sidecar: the blob is served if it is right), else by
//     aborting the connection, so the client sees a truncated body and no
//     byte of that chunk.
//   - Without a usable sidecar (a mirror written before sidecars, or a
//     malformed one, which is logged), a range is served only after the
//     whole blob was verified (concurrent requests share one
//     verification), and a full GET streams through a
//     storage.VerifyReader, which withholds the last bytes and fails when
//     the hash is wrong; the server then aborts the connection (and
//     huggingface_hub, which checks the size, fails).
type Server struct {
	store storage.Store
	opts  ServerOptions
	sem   chan struct{}

	mu        sync.Mutex
	manifests map[string]*cachedManifest
	verified  map[string]verifiedBlob
	flights   map[string]*flight
	// chunks caches parsed sidecars, chunkBytes their size.
	chunks     map[string]*chunkIndex
	chunkBytes int64
}

type cachedManifest struct {
	m     *Manifest
	once  sync.Once
	trees map[string]string
}

type verifiedBlob struct {
	version string
	at      time.Time
}

type flight struct {
	done chan struct{}
	err  error
}

// NewServer returns a Server of the mirror in store.
func NewServer(store storage.Store, opts ServerOptions) *Server {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 32
	}
	if opts.VerifyTTL <= 0 {
		opts.VerifyTTL = 10 * time.Minute
	}
	if opts.SmallFile <= 0 {
		opts.SmallFile = 8 << 20
	}
	if opts.TreePageSize <= 0 {
		opts.TreePageSize = 1000
	}
	if opts.StorageTimeout == 0 {
		opts.StorageTimeout = DefaultStorageTimeout
	}
	if opts.StorageTimeout > 0 {
		store = storage.Timeout(store, opts.StorageTimeout)
	}
	return &Server{
		store:     store,
		opts:      opts,
		sem:       make(chan struct{}, opts.MaxConcurrent),
		manifests: map[string]*cachedManifest{},
		verified:  map[string]verifiedBlob{},
		flights:   map[string]*flight{},
		chunks:    map[string]*chunkIndex{},
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	lw := &logWriter{ResponseWriter: w, status: http.StatusOK}
	s.opts.Metrics.begin()
	defer func() {
		s.opts.Metrics.end()
		s.opts.Metrics.request(r, lw, time.Since(start))
		if s.opts.Log == nil {
			return
		}
		// One record per request; a failure is logged here, with it.
		attrs := []slog.Attr{slog.String("remote", r.RemoteAddr), slog.String("method", r.Method),
			slog.String("path", r.URL.RequestURI()), slog.Int("status", lw.status),
			slog.Int64("bytes", lw.bytes), slog.Duration("duration", time.Since(start))}
		level := slog.LevelInfo
		if lw.err != nil {
			attrs = append(attrs, slog.Any("error", lw.err))
			level = slog.LevelError
			if lw.status < 500 && !errors.Is(lw.err, ErrCorrupt) {
				level = slog.LevelWarn
			}
		}
		s.opts.Log.LogAttrs(r.Context(), level, "request", attrs...)
	}()
	if s.opts.Token != "" && !s.authorized(r) {
		lw.Header().Set("WWW-Authenticate", `Bearer realm="hubmirror"`)
		writeError(lw, r, http.StatusUnauthorized, "", hubproto.InvalidCredentials)
		return
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-r.Context().Done():
		lw.status = 499 // client gone while waiting; nothing is written
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !(r.Method == http.MethodPost && isPathsInfo(r.URL.Path)) {
		lw.Header().Set("Allow", "GET, HEAD")
		writeError(lw, r, http.StatusMethodNotAllowed, "", "the mirror is read-only")
		return
	}
	s.route(lw, r)
}

func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.Token)) == 1
}

// splitPath returns the unescaped segments of the escaped request path, so
// that %2F inside a segment (a revision "refs/pr/1") stays in its segment.
func splitPath(escaped string) ([]string, error) {
	escaped = strings.TrimPrefix(escaped, "/")
	if escaped == "" {
		return nil, nil
	}
	raw := strings.Split(escaped, "/")
	out := make([]string, len(raw))
	for i, r := range raw {
		u, err := url.PathUnescape(r)
		if err != nil {
			return nil, err
		}
		out[i] = u
	}
	return out, nil
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	segs, err := splitPath(r.URL.EscapedPath())
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "", "malformed path")
		return
	}
	if len(segs) >= 2 && segs[0] == "api" {
		if repoType, ok := apiRepoTypes[segs[1]]; ok {
			if len(segs) == 2 || len(segs) == 3 && segs[2] == "" {
				s.listModels(w, r, repoType)
				return
			}
			s.modelAPI(w, r, repoType, segs[2:])
			return
		}
	}
	if len(segs) >= 1 && segs[0] == "api" {
		writeError(w, r, http.StatusNotFound, "", "not found")
		return
	}
	// "org/name/resolve/rev/path" or "name/resolve/rev/path", after
	// "datasets/" or "spaces/" for a dataset or space; the first reading
	// wins unless only the second names a repo of the mirror.
	typePrefix := ""
	if len(segs) >= 1 && (segs[0] == "datasets" || segs[0] == "spaces") {
		typePrefix, segs = segs[0]+"/", segs[1:]
	}
	type parse struct {
		repo string
		rest []string
	}
	var cands []parse
	for _, n := range []int{2, 1} {
		if len(segs) > n+2 && segs[n] == "resolve" && ValidateRepoID(typePrefix+strings.Join(segs[:n], "/")) == nil {
			cands = append(cands, parse{typePrefix + strings.Join(segs[:n], "/"), segs[n+1:]})
		}
	}
	if len(cands) == 0 {
		writeError(w, r, http.StatusNotFound, "", "not found")
		return
	}
	c := cands[0]
	if len(cands) == 2 {
		second, err := s.preferSecond(r.Context(), c.repo, cands[1].repo)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if second {
			c = cands[1]
		}
	}
	rev, rest := takeRevision(c.rest)
	if len(rest) == 0 {
		writeError(w, r, http.StatusNotFound, hubproto.ErrorEntryNotFound, "no file path")
		return
	}
	s.resolve(w, r, c.repo, rev, strings.Join(rest, "/"))
}

// takeRevision takes the revision from the front of segs: one segment, or
// an unescaped "refs/pr/N", "refs/convert/X" (three segments).
func takeRevision(segs []string) (string, []string) {
	if len(segs) >= 3 && segs[0] == "refs" {
		switch segs[1] {
		case "pr", "convert", "heads", "tags":
			return strings.Join(segs[:3], "/"), segs[3:]
		}
	}
	return segs[0], segs[1:]
}

// preferSecond reports whether a path that reads as repo first or as repo
// second names second: only when first does not exist and second does.
func (s *Server) preferSecond(ctx context.Context, first, second string) (bool, error) {
	ok, err := RepoExists(ctx, s.store, first)
	if err != nil || ok {
		return false, err
	}
	return RepoExists(ctx, s.store, second)
}

// apiRepoTypes maps the segment after /api/ to the repo type it serves.
var apiRepoTypes = map[string]string{"models": hubproto.RepoTypeModel, "datasets": hubproto.RepoTypeDataset, "spaces": hubproto.RepoTypeSpace}

// modelAPI serves /api/{type}s/{repo}[/...]; rest holds the segments after
// "models" ("datasets", "spaces"). A repo id is one or two segments; the
// two-segment reading wins when that repo exists.
func (s *Server) modelAPI(w http.ResponseWriter, r *http.Request, repoType string, rest []string) {
	type parse struct {
		repo string
		tail []string
	}
	var cands []parse
	if len(rest) >= 2 && ValidateRepoID(rest[0]+"/"+rest[1]) == nil {
		cands = append(cands, parse{hubproto.JoinRepo(repoType, rest[0]+"/"+rest[1]), rest[2:]})
	}
	if ValidateRepoID(rest[0]) == nil {
		cands = append(cands, parse{hubproto.JoinRepo(repoType, rest[0]), rest[1:]})
	}
	if len(cands) == 0 {
		writeError(w, r, http.StatusNotFound, hubproto.ErrorRepoNotFound, "repository not found")
		return
	}
	chosen := cands[0]
	if len(cands) == 2 {
		second, err := s.preferSecond(r.Context(), cands[0].repo, cands[1].repo)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if second {
			chosen = cands[1]
		}
	}
	repo, tail := chosen.repo, chosen.tail
	if r.Method == http.MethodPost {
		if len(tail) < 2 || tail[0] != "paths-info" {
			writeError(w, r, http.StatusMethodNotAllowed, "", "the mirror is read-only")
			return
		}
		rev, rest := takeRevision(tail[1:])
		if len(rest) != 0 {
			writeError(w, r, http.StatusNotFound, "", "not found")
			return
		}
		s.pathsInfo(w, r, repo, rev)
		return
	}
	switch {
	case len(tail) == 0:
		s.modelInfo(w, r, repo, "main")
	case tail[0] == "revision" && len(tail) >= 2:
		rev, rest := takeRevision(tail[1:])
		if len(rest) != 0 {
			writeError(w, r, http.StatusNotFound, "", "not found")
			return
		}
		s.modelInfo(w, r, repo, rev)
	case tail[0] == "tree" && len(tail) >= 2:
		rev, rest := takeRevision(tail[1:])
		s.tree(w, r, repo, rev, strings.Join(rest, "/"))
	case tail[0] == "refs" && len(tail) == 1:
		s.refs(w, r, repo)
	default:
		writeError(w, r, http.StatusNotFound, "", "not found")
	}
}

// manifest resolves rev through the cache of immutable manifests.
func (s *Server) manifest(ctx context.Context, repo, rev string) (*cachedManifest, error) {
	commit, err := ResolveCommit(ctx, s.store, repo, rev)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	cm := s.manifests[repo+"@"+commit]
	s.mu.Unlock()
	if cm != nil {
		return cm, nil
	}
	m, err := ReadManifest(ctx, s.store, repo, commit)
	if err != nil {
		if !IsCommitID(rev) && (errors.Is(err, ErrRevisionNotFound) || errors.Is(err, ErrRepoNotFound)) {
			err = fmt.Errorf("mirror: ref %s of %s names commit %s, which has no manifest: %w", rev, repo, commit, ErrCorrupt)
		}
		return nil, err
	}
	return s.remember(repo, m), nil
}

const maxCachedManifests = 256

func (s *Server) remember(repo string, m *Manifest) *cachedManifest {
	key := repo + "@" + m.Commit
	s.mu.Lock()
	defer s.mu.Unlock()
	if cm := s.manifests[key]; cm != nil {
		return cm
	}
	if len(s.manifests) >= maxCachedManifests {
		for k := range s.manifests { // evict one, any
			delete(s.manifests, k)
			break
		}
	}
	cm := &cachedManifest{m: m}
	s.manifests[key] = cm
	return cm
}

func (cm *cachedManifest) treeOIDs() map[string]string {
	cm.once.Do(func() { cm.trees = cm.m.treeOIDs() })
	return cm.trees
}

// fail writes the response for an error of the mirror.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ue *UpstreamError
	switch {
	case errors.As(err, &ue):
		s.failUpstream(w, r, ue)
	case errors.Is(err, ErrRepoNotFound):
		writeError(w, r, http.StatusNotFound, hubproto.ErrorRepoNotFound, "Repository not found")
	case errors.Is(err, ErrRevisionNotFound):
		writeError(w, r, http.StatusNotFound, hubproto.ErrorRevisionNotFound, "Invalid rev id")
	case errors.Is(err, ErrEntryNotFound):
		writeError(w, r, http.StatusNotFound, hubproto.ErrorEntryNotFound, "Entry not found")
	case errors.Is(err, ErrInvalid):
		writeError(w, r, http.StatusBadRequest, "", err.Error())
	case errors.Is(err, context.Canceled):
		// The client went away; nothing to tell it.
	case errors.Is(err, ErrCorrupt):
		logError(w, err)
		writeError(w, r, http.StatusInternalServerError, "", "the mirror's copy does not match its manifest: "+err.Error())
	case errors.Is(err, storage.ErrUnavailable) || storage.IsTransient(err):
		// The store is down or overloaded: the client may try again.
		if !strings.Contains(err.Error(), s.store.Location()) {
			err = fmt.Errorf("the mirror's storage %s is unavailable: %w", s.store.Location(), err)
		}
		logError(w, err)
		w.Header().Set("Retry-After", "10")
		writeError(w, r, http.StatusServiceUnavailable, "", err.Error())
	default:
		logError(w, err)
		writeError(w, r, http.StatusInternalServerError, "", "internal error")
	}
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	h := w.Header()
	if code != "" {
		h.Set(hubproto.HeaderErrorCode, code)
	}
	h.Set(hubproto.HeaderErrorMessage, headerSafe(msg))
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	if status != http.StatusRequestedRangeNotSatisfiable {
		h.Del("Content-Range")
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		json.NewEncoder(w).Encode(hubproto.ErrorBody{Error: msg})
	}
}

// headerSafe keeps a message to what a header value may hold.
func headerSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '?'
		}
	}
	if len(b) > 500 {
		b = b[:500]
	}
	return string(b)
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "", "encoding the response")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(data)
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request, repoType string) {
	setRoute(w, routeList)
	repos, err := ListRepos(r.Context(), s.store)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	search := r.URL.Query().Get("search")
	author := r.URL.Query().Get("author")
	out := []map[string]any{}
	for _, qualified := range repos {
		t, id := hubproto.SplitRepo(qualified)
		if t != repoType {
			continue
		}
		if search != "" && !strings.Contains(strings.ToLower(id), strings.ToLower(search)) {
			continue
		}
		if author != "" && !strings.HasPrefix(id, author+"/") {
			continue
		}
		entry := map[string]any{"id": id, "private": false}
		if repoType == hubproto.RepoTypeModel {
			entry["modelId"] = id
		}
		out = append(out, entry)
	}
	writeJSON(w, r, out)
}

func (s *Server) modelInfo(w http.ResponseWriter, r *http.Request, repo, rev string) {
	setRoute(w, routeInfo)
	cm, err := s.revision(w, r, repo, rev)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m := cm.m
	sibs := make([]hubproto.Sibling, len(m.Files))
	for i, f := range m.Files {
		sibs[i] = hubproto.Sibling{RFilename: f.Path, Size: &f.Size, BlobID: f.GitOID}
		if f.LFS {
			sibs[i].LFS = &hubproto.LFS{SHA256: f.SHA256, Size: f.Size, PointerSize: int64(f.PointerSize())}
		}
	}
	repoType, id := hubproto.SplitRepo(repo)
	author := ""
	if org, _, ok := strings.Cut(id, "/"); ok {
		author = org
	}
	modelID := ""
	if repoType == hubproto.RepoTypeModel {
		modelID = id
	}
	created := m.Created.UTC().Format("2006-01-02T15:04:05.000Z")
	info := hubproto.ModelInfo{
		ID: id, ModelID: modelID, Author: author, SHA: m.Commit,
		LastModified: created, CreatedAt: created,
		Gated: false, Tags: []string{}, Siblings: sibs, UsedStorage: m.TotalSize(),
	}
	w.Header().Set(hubproto.HeaderRepoCommit, m.Commit)
	writeJSON(w, r, info)
}

func parseBool(s string) bool {
	b, err := strconv.ParseBool(s)
	return err == nil && b
}

// baseURL returns scheme://host of the request as the client addressed it.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

func (s *Server) refs(w http.ResponseWriter, r *http.Request, repo string) {
	setRoute(w, routeRefs)
	refs, err := ListRefs(r.Context(), s.store, repo)
	if err == nil && len(refs) == 0 {
		err = notFound(r.Context(), s.store, repo, "main")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := hubproto.GitRefs{Branches: []hubproto.GitRef{}, Tags: []hubproto.GitRef{}, Converts: []hubproto.GitRef{}, PullRequests: []hubproto.GitRef{}}
	for _, ref := range refs {
		switch {
		case ref.Variant:
			out.Converts = append(out.Converts, hubproto.GitRef{Name: ref.Name, Ref: "refs/convert/" + ref.Name, TargetCommit: ref.Commit})
		case strings.HasPrefix(ref.Name, "refs/pr/"):
			out.PullRequests = append(out.PullRequests, hubproto.GitRef{Name: ref.Name, Ref: ref.Name, TargetCommit: ref.Commit})
		default:
			out.Branches = append(out.Branches, hubproto.GitRef{Name: ref.Name, Ref: "refs/heads/" + ref.Name, TargetCommit: ref.Commit})
		}
	}
	writeJSON(w, r, out)
}

// resolve serves HEAD and GET /{repo}/resolve/{rev}/{path}.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request, repo, rev, file string) {
	setRoute(w, routeResolve)
	if s.resolveEarly(w, r, repo, rev, file) {
		return
	}
	cm, err := s.revision(w, r, repo, rev)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m := cm.m
	e, ok := m.File(file)
	if !ok {
		w.Header().Set(hubproto.HeaderRepoCommit, m.Commit)
		s.fail(w, r, fmt.Errorf("mirror: %s@%s: no file %q: %w", repo, rev, file, ErrEntryNotFound))
		return
	}
	s.serveEntry(w, r, m.Commit, e)
}

// entryHeaders sets the headers of a HEAD or GET of the file e of commit
// and returns the byte range to send with its status; ok is false when the
// answer is complete already (HEAD, 304, 416).
func (s *Server) entryHeaders(w http.ResponseWriter, r *http.Request, commit string, e Entry) (offset, length int64, status int, ok bool) {
	h := w.Header()
	h.Set(hubproto.HeaderRepoCommit, commit)
	etag := `"` + e.ETag() + `"`
	h.Set("ETag", etag)
	if e.LFS {
		h.Set(hubproto.HeaderLinkedETag, `"`+e.SHA256+`"`)
		h.Set(hubproto.HeaderLinkedSize, strconv.FormatInt(e.Size, 10))
	}
	h.Set("Accept-Ranges", "bytes")
	ct := mime.TypeByExtension(path.Ext(e.Path))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagListMatches(inm, e.ETag()) {
		w.WriteHeader(http.StatusNotModified)
		return 0, 0, 0, false
	}

	offset, length, status = 0, e.Size, http.StatusOK
	if rh := r.Header.Get("Range"); rh != "" && ifRangeAllows(r.Header.Get("If-Range"), etag) {
		off, n, ok, satisfiable := hubproto.ParseRange(rh, e.Size)
		switch {
		case ok && !satisfiable:
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", e.Size))
			writeError(w, r, http.StatusRequestedRangeNotSatisfiable, "", "range not satisfiable")
			return 0, 0, 0, false
		case ok:
			offset, length, status = off, n, http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, e.Size))
		}
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return 0, 0, 0, false
	}
	return offset, length, status, true
}

// serveEntry serves HEAD and GET of the file e of commit.
func (s *Server) serveEntry(w http.ResponseWriter, r *http.Request, commit string, e Entry) {
	offset, length, status, ok := s.entryHeaders(w, r, commit, e)
	if !ok {
		return
	}
	ctx := r.Context()
	full := offset == 0 && length == e.Size

	if e.Size <= s.opts.SmallFile {
		data, err := s.readSmall(ctx, e)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.WriteHeader(status)
		w.Write(data[offset : offset+length])
		return
	}
	verifiedAlready := s.isVerified(ctx, e)
	if !verifiedAlready {
		handled, err := s.serveChunked(w, r, e, offset, length, status)
		if handled {
			return
		}
		// No usable sidecar (a range waits for the whole blob to be
		// verified; a full GET streams through a VerifyReader), or the
		// first chunk did not match it and nothing was sent: the blob or
		// the sidecar is wrong, and the whole blob decides which.
		if err != nil {
			s.dropChunks(e)
			if s.opts.Log != nil {
				s.opts.Log.Warn("verifying the whole blob", slog.String("path", r.URL.Path), slog.Any("error", err))
			}
		}
		if err != nil || !full {
			if err := s.verify(ctx, e); err != nil {
				s.fail(w, r, err)
				return
			}
			verifiedAlready = s.isVerified(ctx, e)
		}
	}
	var rc io.ReadCloser
	var info storage.Info
	var err error
	if full && !verifiedAlready {
		info, err = s.store.Stat(ctx, BlobKey(e.SHA256))
		if err == nil {
			rc, err = OpenFile(ctx, s.store, e, 0, -1)
		}
	} else {
		rc, err = s.store.Get(ctx, BlobKey(e.SHA256), offset, length)
	}
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidRange) {
			err = fmt.Errorf("mirror: %s: blob %s is missing or short: %v: %w", e.Path, e.SHA256, err, ErrCorrupt)
		}
		s.fail(w, r, err)
		return
	}
	defer rc.Close()
	w.WriteHeader(status)
	n, err := io.Copy(w, rc)
	if err != nil || n != length {
		if errors.Is(err, ErrCorrupt) {
			logError(w, fmt.Errorf("refused to complete the response: %w", err))
			s.forget(e)
		}
		// Abort the connection: the client must not take a short body for
		// a complete file.
		panic(http.ErrAbortHandler)
	}
	if full && !verifiedAlready {
		s.markVerified(e, info.Version)
	}
}

// errFirstChunk: the first chunk a request needs does not match the blob's
// sidecar, and nothing was sent.
var errFirstChunk = errors.New("the first chunk does not match its sidecar")

// chunkBuffers recycles the chunk buffers of serveChunked.
var chunkBuffers sync.Pool

// serveChunked serves offset and length of e's blob, not verified yet,
// verifying each chunk that covers the range against the blob's sidecar
// before any of its bytes is sent, one chunk in memory at a time. A full
// read also hashes the whole blob and withholds the last chunk unless it
// matches e.SHA256; it then counts as a verification.
//
// handled is false when there is no usable sidecar, or when the first
// chunk did not match (err wraps errFirstChunk): nothing was written, and
// the caller serves the request another way. Otherwise the response is
// complete, failed (written by s.fail), or aborted after a mismatch or an
// error mid-body.
func (s *Server) serveChunked(w http.ResponseWriter, r *http.Request, e Entry, offset, length int64, status int) (handled bool, err error) {
	ctx := r.Context()
	idx := s.chunkIndexOf(ctx, r, e)
	if idx == nil {
		return false, nil
	}
	full := offset == 0 && length == e.Size
	failCorrupt := func(err error) (bool, error) {
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidRange) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("mirror: %s: blob %s is missing or short: %v: %w", e.Path, e.SHA256, err, ErrCorrupt)
		}
		s.fail(w, r, err)
		return true, nil
	}
	var info storage.Info
	if full {
		info, err = s.store.Stat(ctx, BlobKey(e.SHA256))
		if err != nil {
			return failCorrupt(err)
		}
		if info.Size != e.Size {
			return failCorrupt(fmt.Errorf("mirror: %s: blob %s has %d bytes, the manifest says %d: %w", e.Path, e.SHA256, info.Size, e.Size, ErrCorrupt))
		}
	}
	first, last := offset/idx.chunkSize, (offset+length-1)/idx.chunkSize
	spanStart, _ := idx.span(first)
	lastStart, lastLen := idx.span(last)
	rc, err := s.store.Get(ctx, BlobKey(e.SHA256), spanStart, lastStart+lastLen-spanStart)
	if err != nil {
		return failCorrupt(err)
	}
	defer rc.Close()

	bufSize := min(idx.chunkSize, lastStart+lastLen-spanStart)
	bp, _ := chunkBuffers.Get().(*[]byte)
	if bp == nil || int64(cap(*bp)) < bufSize {
		b := make([]byte, bufSize)
		bp = &b
	}
	defer chunkBuffers.Put(bp)
	buf := (*bp)[:bufSize]

	// A full read hashes the whole blob too, on another goroutine while
	// this one hashes the chunk (two passes over the same buffer, at the
	// speed of one when a core is free).
	var whole hash.Hash
	var toWhole chan []byte
	var wholeDone chan struct{}
	if full {
		whole = sha256.New()
		toWhole, wholeDone = make(chan []byte), make(chan struct{})
		go func() {
			for c := range toWhole {
				whole.Write(c)
				wholeDone <- struct{}{}
			}
		}()
		defer close(toWhole)
	}
	sent := false
	// refuse aborts a response under way: the client must not take a
	// short body for a complete file.
	refuse := func(err error) (bool, error) {
		if ctx.Err() == nil {
			logError(w, fmt.Errorf("refused to complete the response: %w", err))
		}
		if errors.Is(err, ErrCorrupt) {
			s.dropChunks(e)
			s.forget(e)
		}
		panic(http.ErrAbortHandler)
	}
	for i := first; i <= last; i++ {
		start, n := idx.span(i)
		chunk := buf[:n]
		if _, err := io.ReadFull(rc, chunk); err != nil {
			err = fmt.Errorf("mirror: %s: reading chunk %d of blob %s: %w", e.Path, i, e.SHA256, err)
			if !sent {
				return failCorrupt(err)
			}
			return refuse(err)
		}
		if full {
			toWhole <- chunk
		}
		chunkSum := sha256.Sum256(chunk)
		if full {
			<-wholeDone
		}
		if chunkSum != idx.sums[i] {
			err := fmt.Errorf("mirror: %s: chunk %d (bytes %d-%d) of blob %s does not match its sidecar: %w", e.Path, i, start, start+n-1, e.SHA256, ErrCorrupt)
			if !sent {
				return false, fmt.Errorf("%w: %w", errFirstChunk, err)
			}
			return refuse(err)
		}
		if full {
			if i == last {
				if got := hex.EncodeToString(whole.Sum(nil)); got != e.SHA256 {
					err := fmt.Errorf("mirror: %s: blob %s has sha256 %s though its chunks match the sidecar: %w", e.Path, e.SHA256, got, ErrCorrupt)
					if !sent {
						return false, fmt.Errorf("%w: %w", errFirstChunk, err)
					}
					return refuse(err)
				}
			}
		}
		lo, hi := max(offset, start)-start, min(offset+length, start+n)-start
		if !sent {
			w.WriteHeader(status)
			sent = true
		}
		if _, err := w.Write(chunk[lo:hi]); err != nil {
			panic(http.ErrAbortHandler) // the client went away
		}
	}
	if full {
		s.markVerified(e, info.Version)
	}
	return true, nil
}

// maxCachedChunkBytes bounds the memory of the sidecar cache.
const maxCachedChunkBytes = 32 << 20

// chunkIndexOf returns the parsed sidecar of e's blob, cached, or nil when
// it is missing or unusable (logged).
func (s *Server) chunkIndexOf(ctx context.Context, r *http.Request, e Entry) *chunkIndex {
	s.mu.Lock()
	idx := s.chunks[e.SHA256]
	s.mu.Unlock()
	if idx != nil {
		return idx
	}
	idx, err := readChunks(ctx, s.store, e)
	if err != nil {
		if s.opts.Log != nil && ctx.Err() == nil {
			level := slog.LevelWarn
			if errors.Is(err, storage.ErrNotFound) {
				level = slog.LevelDebug
			}
			s.opts.Log.LogAttrs(ctx, level, "no usable chunk sidecar, the whole blob is verified",
				slog.String("path", r.URL.Path), slog.String("blob", e.SHA256), slog.Any("error", err))
		}
		return nil
	}
	size := idx.memSize()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.chunks[e.SHA256]; old != nil {
		return old
	}
	for k, old := range s.chunks { // evict any until it fits
		if s.chunkBytes+size <= maxCachedChunkBytes {
			break
		}
		delete(s.chunks, k)
		s.chunkBytes -= old.memSize()
	}
	if s.chunkBytes+size <= maxCachedChunkBytes {
		s.chunks[e.SHA256] = idx
		s.chunkBytes += size
	}
	return idx
}

// dropChunks forgets the cached sidecar of e's blob, so that the next
// request reads it again.
func (s *Server) dropChunks(e Entry) {
	s.mu.Lock()
	if old := s.chunks[e.SHA256]; old != nil {
		delete(s.chunks, e.SHA256)
		s.chunkBytes -= old.memSize()
	}
	s.mu.Unlock()
}

// readSmall reads and verifies a whole small file.
func (s *Server) readSmall(ctx context.Context, e Entry) ([]byte, error) {
	rc, err := OpenFile(ctx, s.store, e, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := bytes.NewBuffer(make([]byte, 0, e.Size))
	if _, err := io.Copy(buf, rc); err != nil {
		return nil, err
	}
	s.opts.Metrics.blobVerified()
	return buf.Bytes(), nil
}

// isVerified reports whether e's blob was verified within VerifyTTL and is
// still the same object.
func (s *Server) isVerified(ctx context.Context, e Entry) bool {
	s.mu.Lock()
	v, ok := s.verified[e.SHA256]
	s.mu.Unlock()
	if !ok || time.Since(v.at) > s.opts.VerifyTTL {
		return false
	}
	info, err := s.store.Stat(ctx, BlobKey(e.SHA256))
	return err == nil && info.Version == v.version && info.Size == e.Size
}

func (s *Server) markVerified(e Entry, version string) {
	s.opts.Metrics.blobVerified()
	if version == "" {
		return
	}
	s.mu.Lock()
	s.verified[e.SHA256] = verifiedBlob{version: version, at: time.Now()}
	s.mu.Unlock()
}

func (s *Server) forget(e Entry) {
	s.mu.Lock()
	delete(s.verified, e.SHA256)
	s.mu.Unlock()
}

// verify verifies e's blob in full, sharing the work with concurrent
// requests for the same blob. The verification runs on after a requester
// gives up, so that the others (and later ones) get its result.
func (s *Server) verify(ctx context.Context, e Entry) error {
	s.mu.Lock()
	f, ok := s.flights[e.SHA256]
	if !ok {
		f = &flight{done: make(chan struct{})}
		s.flights[e.SHA256] = f
		go func() {
			info, err := VerifyBlob(context.WithoutCancel(ctx), s.store, e)
			if err == nil {
				s.markVerified(e, info.Version)
			}
			s.mu.Lock()
			f.err = err
			delete(s.flights, e.SHA256)
			s.mu.Unlock()
			close(f.done)
		}()
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ifRangeAllows reports whether a Range may be honoured given If-Range: only
// when it is absent or names the current strong ETag.
func ifRangeAllows(ifRange, etag string) bool {
	return ifRange == "" || ifRange == etag
}

// etagListMatches reports whether an If-None-Match list names etag.
func etagListMatches(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if t == "*" || strings.Trim(t, `"`) == etag {
			return true
		}
	}
	return false
}

// logWriter records the status and size of a response, and the error that
// failed it.
type logWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	err         error
	// route names the route for the metrics ("" until one takes it).
	route string
}

// logError records err for the request's access-log record.
func logError(w http.ResponseWriter, err error) {
	if lw, ok := w.(*logWriter); ok {
		lw.err = err
	}
}

func (l *logWriter) WriteHeader(code int) {
	if !l.wroteHeader {
		l.status = code
		l.wroteHeader = true
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.wroteHeader = true
	n, err := l.ResponseWriter.Write(p)
	l.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the ResponseWriter's sendfile path for files.
func (l *logWriter) ReadFrom(r io.Reader) (int64, error) {
	l.wroteHeader = true
	if rf, ok := l.ResponseWriter.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(r)
		l.bytes += n
		return n, err
	}
	n, err := io.Copy(struct{ io.Writer }{l.ResponseWriter}, r)
	l.bytes += n
	return n, err
}

// Flush implements http.Flusher.
func (l *logWriter) Flush() {
	if f, ok := l.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
