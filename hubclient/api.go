package hubclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/cenkalti/backoff/v5"
	"github.com/hubmirror/hubmirror/hubproto"
)

// Limits on what the client accepts from the server.
const (
	maxJSONBytes = 64 << 20 // one API response (one page of a listing)
	maxTreePages = 100000
	// A listing is decoded entry by entry: one entry (a file or a
	// directory, a path and a few hashes) may take maxTreeEntryBytes of
	// JSON, a whole listing maxTreeBytes of JSON and maxTreeEntries entries
	// of which maxTreeFiles files, with maxTreePathBytes of paths in all.
	maxTreeEntryBytes = 64 << 10
	maxTreeBytes      = 1 << 30
	maxTreeEntries    = 4000000
	maxTreeFiles      = 1000000
	maxTreePathBytes  = 256 << 20
	maxFileSize       = 1 << 50 // 1 PiB: anything larger is a lie
	defaultAccept     = "application/json"
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
		return fmt.Errorf("%w: %s: implausible size %d", ErrServer, plainServer(f.Path), f.Size)
	}
	if f.LFS != nil {
		if !sha256Re.MatchString(f.LFS.SHA256) {
			return fmt.Errorf("%w: %s: LFS oid %s is not a sha256", ErrServer, plainServer(f.Path), quoteServer(f.LFS.SHA256))
		}
		return nil
	}
	if !commitRe.MatchString(f.BlobID) {
		return fmt.Errorf("%w: %s: blob id %s is not a git sha1", ErrServer, plainServer(f.Path), quoteServer(f.BlobID))
	}
	return nil
}

// RepoInfo is what GET /api/models/{id}/revision/{rev}?blobs=true returns
// (/api/datasets/..., /api/spaces/... for a dataset or space).
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
	return c.endpoint.String() + hubproto.APIPath(repoID) + "/" + kind + "/" + quote(rev, "")
}

// errTooLarge: an answer exceeds maxJSONBytes; errEntryTooLarge: an entry
// of a listing exceeds maxTreeEntryBytes.
var (
	errTooLarge      = errors.New("answer too large")
	errEntryTooLarge = errors.New("listing entry too large")
)

// limitReader reads at most n more bytes from r, then fails with err
// (io.LimitReader would end the stream quietly).
type limitReader struct {
	r   io.Reader
	n   int64
	err error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, l.err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// readFailed remembers whether reading the body itself failed (the
// connection, a timeout), as opposed to what it holds.
type readFailed struct {
	r   io.Reader
	err error
}

func (b *readFailed) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// getJSON GETs r.url and hands the answer's body to decode, retrying with
// the client's policy: a failure to get or read the answer (a broken
// connection, a too slow or too late answer) is retried, an answer that
// decode refuses is not. Each attempt is bounded by APITimeout, its body
// by maxJSONBytes.
func (c *Client) getJSON(ctx context.Context, r *request, decode func(io.Reader) error) (http.Header, error) {
	r.method = http.MethodGet
	r.header = http.Header{"Accept": {defaultAccept}}
	r.api = true
	what := "GET " + redactURLString(r.url)
	return retry(ctx, c.newRetryPolicy(), what, func(int) (http.Header, error) {
		resp, err := c.attempt(ctx, r)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, backoff.Permanent(fmt.Errorf("%w: %s: unexpected status %d", ErrServer, what, resp.StatusCode))
		}
		body := &readFailed{r: resp.Body}
		err = decode(&limitReader{r: body, n: maxJSONBytes, err: errTooLarge})
		switch {
		case err == nil:
			_, _ = io.CopyN(io.Discard, resp.Body, 4<<10) // the connection can be reused
			return resp.Header, nil
		case ctx.Err() != nil:
			return nil, backoff.Permanent(context.Cause(ctx))
		case body.err != nil:
			return nil, &retryable{fmt.Errorf("%s: reading the answer: %w", what, body.err)}
		case errors.Is(err, errTooLarge):
			return nil, backoff.Permanent(fmt.Errorf("%w: %s: answer larger than %d bytes", ErrServer, what, maxJSONBytes))
		case errors.Is(err, ErrServer):
			return nil, backoff.Permanent(fmt.Errorf("%s: %w", what, err))
		}
		return nil, backoff.Permanent(fmt.Errorf("%w: %s: bad JSON: %v", ErrServer, what, err))
	}, nil)
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
	r := &request{url: c.apiURL(repoID, "revision", revision) + "?blobs=true", repoID: repoID, revision: revision}
	var info *RepoInfo
	if _, err := c.getJSON(ctx, r, func(body io.Reader) (err error) {
		info, err = decodeRepoInfo(body)
		return err
	}); err != nil {
		return nil, err
	}
	if !commitRe.MatchString(info.SHA) {
		return nil, fmt.Errorf("%w: %s@%s: repo info has no valid commit sha (%s)", ErrServer, repoID, revision, quoteServer(info.SHA))
	}
	return info, nil
}

// maxInfoValueBytes bounds each value of a repo info answer other than
// its siblings (the model card's metadata, the config, ...).
const maxInfoValueBytes = 16 << 20

// decodeRepoInfo decodes a repo info answer as it arrives: the siblings
// one by one, with the limits of a tree listing, and each other value
// within maxInfoValueBytes.
func decodeRepoInfo(r io.Reader) (*RepoInfo, error) {
	lr := &limitReader{r: r, n: maxInfoValueBytes, err: errEntryTooLarge}
	dec := json.NewDecoder(lr)
	if tok, err := dec.Token(); err != nil {
		return nil, err
	} else if tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: the repo info is not a JSON object", ErrServer)
	}
	info := &RepoInfo{}
	var lim treeLimits
	for {
		lr.n = maxInfoValueBytes
		if !dec.More() {
			break
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch tok {
		case "id":
			err = dec.Decode(&info.ID)
		case "sha":
			err = dec.Decode(&info.SHA)
		case "private":
			err = dec.Decode(&info.Private)
		case "gated":
			var g any
			if err = dec.Decode(&g); err == nil {
				info.Gated, _ = g.(string)
			}
		case "siblings":
			err = streamArray(dec, lr, func() error {
				var s hubproto.Sibling
				if err := dec.Decode(&s); err != nil {
					return err
				}
				if err := lim.add(s.RFilename, true); err != nil {
					return err
				}
				f := RepoFile{Path: s.RFilename, BlobID: s.BlobID, LFS: lfsInfo(s.LFS)}
				if s.Size != nil {
					f.Size = *s.Size
				}
				if f.LFS != nil {
					f.Size = f.LFS.Size
				}
				info.Files = append(info.Files, f)
				return nil
			})
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if errors.Is(err, errEntryTooLarge) {
			return nil, fmt.Errorf("%w: the repo info's %s is larger than %d bytes", ErrServer, quoteServer(fmt.Sprint(tok)), maxInfoValueBytes)
		}
		if err != nil {
			return nil, err
		}
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
	var lim treeLimits
	var listed int64 // bytes of JSON, all pages
	errTooLong := fmt.Errorf("%w: the listing is larger than %d bytes", ErrServer, maxTreeBytes)
	for page := 0; next != ""; page++ {
		if page >= maxTreePages || seen[next] {
			return nil, fmt.Errorf("%w: %s@%s: tree pagination does not end", ErrServer, repoID, revision)
		}
		seen[next] = true
		r := &request{url: next, repoID: repoID, revision: revision}
		var pageFiles []RepoFile
		pageLim := lim
		var pageBytes int64
		h, err := c.getJSON(ctx, r, func(body io.Reader) error {
			// A retried attempt starts the page over.
			pageFiles, pageLim = pageFiles[:0], lim
			lr := &limitReader{r: body, n: maxTreeBytes - listed, err: errTooLong}
			err := decodeTree(lr, &pageLim, func(f RepoFile) { pageFiles = append(pageFiles, f) })
			pageBytes = maxTreeBytes - listed - lr.n
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s@%s: listing files: %w", repoID, revision, err)
		}
		files, lim, listed = append(files, pageFiles...), pageLim, listed+pageBytes
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

// treeLimits counts what a listing has delivered, against its limits.
type treeLimits struct {
	entries, files int
	pathBytes      int64
}

// add counts an entry of a listing, refusing it beyond the limits.
func (lim *treeLimits) add(path string, file bool) error {
	if lim.entries++; lim.entries > maxTreeEntries {
		return fmt.Errorf("%w: the listing has more than %d entries", ErrServer, maxTreeEntries)
	}
	if len(path) > MaxPathBytes {
		return fmt.Errorf("%w: the listing has a path of %d bytes, more than %d: %s", ErrServer, len(path), MaxPathBytes,
			quoteServer(path))
	}
	if !file {
		return nil
	}
	if lim.files++; lim.files > maxTreeFiles {
		return fmt.Errorf("%w: the listing has more than %d files", ErrServer, maxTreeFiles)
	}
	if lim.pathBytes += int64(len(path)); lim.pathBytes > maxTreePathBytes {
		return fmt.Errorf("%w: the listing's paths take more than %d bytes", ErrServer, maxTreePathBytes)
	}
	return nil
}

// streamArray decodes the JSON array that comes next in dec element by
// element with decode. Each element may read at most maxTreeEntryBytes
// (through lr, the reader under dec) beyond what dec already holds: a
// larger one fails with ErrServer, without reading the rest.
func streamArray(dec *json.Decoder, lr *limitReader, decode func() error) error {
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim('[') {
		return fmt.Errorf("%w: the listing is not a JSON array", ErrServer)
	}
	for i := 1; ; i++ {
		lr.n = maxTreeEntryBytes
		if !dec.More() {
			break
		}
		if err := decode(); err != nil {
			if errors.Is(err, errEntryTooLarge) {
				return fmt.Errorf("%w: entry %d of the listing is larger than %d bytes", ErrServer, i, maxTreeEntryBytes)
			}
			return err
		}
	}
	lr.n = maxTreeEntryBytes
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim(']') {
		return fmt.Errorf("%w: the listing is not a JSON array", ErrServer)
	}
	return nil
}

// decodeTree decodes one page of a tree listing (a JSON array of entries)
// as it arrives, entry by entry (streamArray), and hands each file to add.
// A path longer than MaxPathBytes, or a listing beyond its limits, fails it
// with ErrServer.
func decodeTree(r io.Reader, lim *treeLimits, add func(RepoFile)) error {
	lr := &limitReader{r: r, n: maxTreeEntryBytes, err: errEntryTooLarge}
	dec := json.NewDecoder(lr)
	err := streamArray(dec, lr, func() error {
		var e hubproto.TreeEntry
		if err := dec.Decode(&e); err != nil {
			return err
		}
		if err := lim.add(e.Path, e.Type == "file"); err != nil || e.Type != "file" {
			return err
		}
		f := RepoFile{Path: e.Path, Size: e.Size, BlobID: e.OID, LFS: lfsInfo(e.LFS), XetHash: e.XetHash}
		if f.LFS != nil {
			f.Size = f.LFS.Size
		}
		add(f)
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the listing", ErrServer)
	}
	return nil
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
		api: true,
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
		return nil, fmt.Errorf("%w: %s: ETag %s is neither a git sha1 nor a sha256", ErrServer, what, quoteServer(meta.ETag))
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
