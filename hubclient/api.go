package hubclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/hubmirror/hubmirror/hubproto"
)

// Limits on what the client accepts from the server.
const (
	maxJSONBytes  = 64 << 20 // one API response
	maxTreePages  = 100000
	maxTreeFiles  = 10000000
	maxFileSize   = 1 << 50 // 1 PiB: anything larger is a lie
	defaultAccept = "application/json"
)

// LFSInfo describes a file stored with Git LFS.
type LFSInfo struct {
	SHA256      string // sha256 of the content: the file's ETag and blob name
	Size        int64  // content size
	PointerSize int64  // size of the pointer file in git
}

// RepoFile is one file of a repository at a revision.
type RepoFile struct {
	Path    string
	Size    int64    // content size (for LFS files, the real size, not the pointer's)
	BlobID  string   // git blob sha1 (of the pointer file for LFS files)
	LFS     *LFSInfo // nil for files stored in git
	XetHash string   // Xet content hash, when the Hub reports one
}

// ETag is the file's ETag as the Hub serves it and the name of its blob in
// the cache: the sha256 for LFS files, the git blob sha1 otherwise.
func (f RepoFile) ETag() string {
	if f.LFS != nil {
		return f.LFS.SHA256
	}
	return f.BlobID
}

// validate checks the fields the client relies on.
func (f RepoFile) validate() error {
	if err := ValidateRepoPath(f.Path); err != nil {
		return err
	}
	if f.Size < 0 || f.Size > maxFileSize {
		return fmt.Errorf("%w: %s: implausible size %d", ErrServer, f.Path, f.Size)
	}
	if f.LFS != nil {
		if !sha256Re.MatchString(f.LFS.SHA256) {
			return fmt.Errorf("%w: %s: LFS oid %q is not a sha256", ErrServer, f.Path, f.LFS.SHA256)
		}
		return nil
	}
	if !commitRe.MatchString(f.BlobID) {
		return fmt.Errorf("%w: %s: blob id %q is not a git sha1", ErrServer, f.Path, f.BlobID)
	}
	return nil
}

// RepoInfo is what GET /api/models/{id}/revision/{rev}?blobs=true returns.
type RepoInfo struct {
	ID      string
	SHA     string // commit the revision resolves to
	Private bool
	// Gated is "", "auto" or "manual".
	Gated string
	Files []RepoFile // the siblings
}

// lfsInfo converts the lfs object of a sibling or tree entry.
func lfsInfo(w *hubproto.LFS) *LFSInfo {
	if w == nil {
		return nil
	}
	return &LFSInfo{SHA256: w.ContentSHA256(), Size: w.Size, PointerSize: w.PointerSize}
}

func (c *Client) apiURL(repoID, kind, rev string) string {
	return c.endpoint.String() + "/api/models/" + repoID + "/" + kind + "/" + quote(rev, "")
}

// getJSON GETs url and decodes the JSON answer into v.
func (c *Client) getJSON(ctx context.Context, r *request, v any) (http.Header, error) {
	r.method = http.MethodGet
	r.header = http.Header{"Accept": {defaultAccept}}
	resp, err := c.do(ctx, r, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: unexpected status %d", ErrServer, redactURLString(r.url), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading answer: %w", redactURLString(r.url), err)
	}
	if len(body) > maxJSONBytes {
		return nil, fmt.Errorf("%w: GET %s: answer larger than %d bytes", ErrServer, redactURLString(r.url), maxJSONBytes)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("%w: GET %s: bad JSON: %v", ErrServer, redactURLString(r.url), err)
	}
	return resp.Header, nil
}

// RepoInfo fetches the repository's metadata at revision, with file sizes
// and LFS hashes. The returned SHA is the commit the revision points to.
func (c *Client) RepoInfo(ctx context.Context, repoID, revision string) (*RepoInfo, error) {
	if err := ValidateRepoID(repoID); err != nil {
		return nil, err
	}
	if revision == "" {
		revision = DefaultRevision
	}
	var w hubproto.ModelInfo
	r := &request{url: c.apiURL(repoID, "revision", revision) + "?blobs=true", repoID: repoID, revision: revision}
	if _, err := c.getJSON(ctx, r, &w); err != nil {
		return nil, err
	}
	if !commitRe.MatchString(w.SHA) {
		return nil, fmt.Errorf("%w: %s@%s: repo info has no valid commit sha (%q)", ErrServer, repoID, revision, w.SHA)
	}
	info := &RepoInfo{ID: w.ID, SHA: w.SHA, Private: w.Private}
	if s, ok := w.Gated.(string); ok {
		info.Gated = s
	}
	for _, s := range w.Siblings {
		f := RepoFile{Path: s.RFilename, BlobID: s.BlobID, LFS: lfsInfo(s.LFS)}
		if s.Size != nil {
			f.Size = *s.Size
		}
		if f.LFS != nil {
			f.Size = f.LFS.Size
		}
		info.Files = append(info.Files, f)
	}
	return info, nil
}

var linkNextRe = regexp.MustCompile(`<([^>]*)>\s*;[^,]*rel="?next"?`)

// nextLink returns the rel="next" target of a Link header.
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		if m := linkNextRe.FindStringSubmatch(v); m != nil {
			return m[1]
		}
	}
	return ""
}

// ListTree lists every file of the repository at revision (recursively),
// following the Link: <...>; rel="next" pagination. Directories are left out.
// Paths are returned as the server sent them; Download validates them.
func (c *Client) ListTree(ctx context.Context, repoID, revision string) ([]RepoFile, error) {
	if err := ValidateRepoID(repoID); err != nil {
		return nil, err
	}
	if revision == "" {
		revision = DefaultRevision
	}
	next := c.apiURL(repoID, "tree", revision) + "?recursive=true"
	seen := map[string]bool{}
	var files []RepoFile
	for page := 0; next != ""; page++ {
		if page >= maxTreePages || seen[next] {
			return nil, fmt.Errorf("%w: %s@%s: tree pagination does not end", ErrServer, repoID, revision)
		}
		seen[next] = true
		var entries []hubproto.TreeEntry
		r := &request{url: next, repoID: repoID, revision: revision}
		h, err := c.getJSON(ctx, r, &entries)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Type != hubproto.TypeFile {
				continue
			}
			f := RepoFile{Path: e.Path, Size: e.Size, BlobID: e.OID, LFS: lfsInfo(e.LFS), XetHash: e.XetHash}
			if f.LFS != nil {
				f.Size = f.LFS.Size
			}
			files = append(files, f)
		}
		if len(files) > maxTreeFiles {
			return nil, fmt.Errorf("%w: %s@%s: more than %d files", ErrServer, repoID, revision, maxTreeFiles)
		}
		next = ""
		if link := nextLink(h); link != "" {
			cur, _ := url.Parse(r.url)
			u, err := cur.Parse(link)
			if err != nil || !c.sameHost(u) {
				return nil, fmt.Errorf("%w: %s@%s: tree pagination link leaves the endpoint", ErrServer, repoID, revision)
			}
			next = u.String()
		}
	}
	return files, nil
}

// FileMeta is what resolving a file tells: where to download it and what
// to expect.
type FileMeta struct {
	Commit   string // X-Repo-Commit: the commit the revision resolved to
	ETag     string // normalised (no W/ prefix, no quotes): sha256 for LFS files, git sha1 otherwise
	Size     int64  // X-Linked-Size, else Content-Length
	Location string // URL to GET the bytes from (a CDN URL for LFS files)
}

// ResolveURL is the /resolve URL of a file, escaped as huggingface_hub does.
func (c *Client) ResolveURL(repoID, revision, path string) string {
	return c.endpoint.String() + "/" + repoID + "/resolve/" + quote(revision, "") + "/" + quote(path, "/")
}

// normalizeETag strips a weak-validator prefix and quotes.
func normalizeETag(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	return strings.Trim(s, `"`)
}

// Resolve sends HEAD /{repo}/resolve/{rev}/{path}, following redirects on
// the endpoint host (renamed repositories) but not to other hosts, and
// returns the file's commit, ETag, size and download location.
func (c *Client) Resolve(ctx context.Context, repoID, revision, path string) (*FileMeta, error) {
	if err := ValidateRepoID(repoID); err != nil {
		return nil, err
	}
	if revision == "" {
		revision = DefaultRevision
	}
	r := &request{
		method: http.MethodHead,
		url:    c.ResolveURL(repoID, revision, path),
		header: http.Header{"Accept-Encoding": {"identity"}},
		repoID: repoID, revision: revision, path: path,
	}
	resp, err := c.do(ctx, r, nil)
	if err != nil {
		return nil, err
	}
	drain(resp.Body)
	h := resp.Header
	what := fmt.Sprintf("%s@%s: %s", repoID, revision, path)
	meta := &FileMeta{Commit: h.Get(hubproto.HeaderRepoCommit)}
	if !commitRe.MatchString(meta.Commit) {
		return nil, fmt.Errorf("%w: %s: the answer has no valid X-Repo-Commit header (is %s a Hugging Face Hub?)",
			ErrServer, what, c.endpoint)
	}
	meta.ETag = normalizeETag(h.Get(hubproto.HeaderLinkedETag))
	if meta.ETag == "" {
		meta.ETag = normalizeETag(h.Get("ETag"))
	}
	if !commitRe.MatchString(meta.ETag) && !sha256Re.MatchString(meta.ETag) {
		return nil, fmt.Errorf("%w: %s: ETag %q is neither a git sha1 nor a sha256", ErrServer, what, meta.ETag)
	}
	size := h.Get(hubproto.HeaderLinkedSize)
	redirect := resp.StatusCode >= 300 && resp.StatusCode <= 399
	if size == "" && !redirect {
		size = h.Get("Content-Length")
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < 0 || n > maxFileSize {
		return nil, fmt.Errorf("%w: %s: no valid size (X-Linked-Size or Content-Length)", ErrServer, what)
	}
	meta.Size = n
	if redirect {
		loc, err := resp.Request.URL.Parse(h.Get("Location"))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: bad Location", ErrServer, what)
		}
		meta.Location = loc.String()
	} else {
		meta.Location = resp.Request.URL.String()
	}
	return meta, nil
}

// Files resolves revision to its commit and lists the files that include
// and exclude select (Filter semantics), refusing the listing when a
// selected path is unsafe. With OpenFile it streams a repository elsewhere
// (object storage) without a local copy:
//
//	commit, files, err := c.Files(ctx, repo, rev, nil, nil)
//	for _, f := range files {
//		rc, _, err := c.OpenFile(ctx, repo, commit, f.Path) // verified at EOF
//		...
//	}
func (c *Client) Files(ctx context.Context, repoID, revision string, include, exclude []string) (string, []RepoFile, error) {
	filter, err := NewFilter(include, exclude)
	if err != nil {
		return "", nil, err
	}
	if revision == "" {
		revision = DefaultRevision
	}
	commit := revision
	if !IsCommitHash(revision) {
		info, err := c.RepoInfo(ctx, repoID, revision)
		if err != nil {
			return "", nil, err
		}
		commit = info.SHA
	}
	files, err := c.ListTree(ctx, repoID, commit)
	if err != nil {
		return "", nil, err
	}
	if err := checkListing(files); err != nil {
		return "", nil, fmt.Errorf("%s@%s: %w", repoID, revision, err)
	}
	selected, err := selectFiles(files, filter)
	if err != nil {
		return "", nil, fmt.Errorf("%s@%s: %w", repoID, revision, err)
	}
	return commit, selected, nil
}
