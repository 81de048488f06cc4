package mirror

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/hubmirror/hubmirror/hubproto"
)

// Bounds of a paths-info request.
const (
	maxPathsInfoBody  = 8 << 20
	maxPathsInfoPaths = 10000
)

// isPathsInfo reports whether an (escaped or not) request path is a
// paths-info call, the one POST the read-only server answers.
func isPathsInfo(p string) bool {
	return strings.HasPrefix(p, "/api/") && strings.Contains(p, "/paths-info/")
}

// treeCursor is where a tree page resumes: at the manifest's file number
// file, after skip of the entries listed before it (the directories that
// open before the file, then the file itself). Manifests are immutable and
// pages name the commit, so the position stays valid.
type treeCursor struct{ file, skip int }

func (c treeCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(c.file) + "." + strconv.Itoa(c.skip)))
}

func decodeTreeCursor(s string) (treeCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return treeCursor{}, false
	}
	a, z, ok := strings.Cut(string(b), ".")
	file, err1 := strconv.Atoi(a)
	skip, err2 := strconv.Atoi(z)
	if !ok || err1 != nil || err2 != nil || file < 0 || skip < 0 {
		return treeCursor{}, false
	}
	return treeCursor{file, skip}, true
}

// dirEnd returns the first path after every path under dir ("dir0" sorts
// right after "dir/..." since '0' follows '/').
func dirEnd(dir string) string { return dir + "0" }

// treePage lists at most limit entries under dir ("" for the root) from
// cursor on: with recursive every directory and file below dir, each
// directory just before the first file in it, else dir's files and
// subdirectories. Files under a directory are contiguous in the manifest
// (sorted by path), so a page costs a binary search and its own entries,
// whatever the size of the repo, and a subdirectory is skipped, not walked.
// more is false when the listing ends with this page.
func treePage(m *Manifest, trees map[string]string, dir string, recursive bool, cur treeCursor, limit int, expand *hubproto.LastCommit) (page []hubproto.TreeEntry, next treeCursor, more bool) {
	files := m.Files
	prefix, lo, hi := "", 0, len(files)
	if dir != "" {
		prefix = dir + "/"
		lo = sort.Search(len(files), func(i int) bool { return files[i].Path >= prefix })
		end := dirEnd(dir)
		hi = lo + sort.Search(len(files)-lo, func(i int) bool { return files[lo+i].Path >= end })
	}
	dirEntry := func(d string) hubproto.TreeEntry {
		return hubproto.TreeEntry{Type: hubproto.TypeDirectory, OID: trees[d], Path: d, LastCommit: expand}
	}
	i, skip := max(cur.file, lo), cur.skip
	if cur.file < lo {
		skip = 0
	}
	for i < hi {
		f := files[i]
		rest := f.Path[len(prefix):]
		if !recursive {
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				sub := prefix + rest[:j]
				if skip == 0 {
					if len(page) == limit {
						return page, treeCursor{i, 0}, true
					}
					page = append(page, dirEntry(sub))
				}
				skip = 0
				end := dirEnd(sub)
				i += sort.Search(hi-i, func(k int) bool { return files[i+k].Path >= end })
				continue
			}
			if skip == 0 {
				if len(page) == limit {
					return page, treeCursor{i, 0}, true
				}
				page = append(page, fileEntry(f, expand))
			}
			skip = 0
			i++
			continue
		}
		// The directories that open at this file: its ancestors below dir
		// that the previous file is not in (once one opens, the deeper ones
		// do too).
		var opens []string
		for j := 0; j < len(rest); j++ {
			if rest[j] != '/' {
				continue
			}
			d := prefix + rest[:j]
			if len(opens) > 0 || i == lo || !strings.HasPrefix(files[i-1].Path, d+"/") {
				opens = append(opens, d)
			}
		}
		for k := skip; k <= len(opens); k++ {
			if len(page) == limit {
				return page, treeCursor{i, k}, true
			}
			if k < len(opens) {
				page = append(page, dirEntry(opens[k]))
			} else {
				page = append(page, fileEntry(f, expand))
			}
		}
		skip = 0
		i++
	}
	return page, treeCursor{}, false
}

func fileEntry(f Entry, expand *hubproto.LastCommit) hubproto.TreeEntry {
	e := hubproto.TreeEntry{Type: hubproto.TypeFile, OID: f.GitOID, Size: f.Size, Path: f.Path, LastCommit: expand}
	if f.LFS {
		e.LFS = &hubproto.LFS{OID: f.SHA256, Size: f.Size, PointerSize: int64(f.PointerSize())}
	}
	return e
}

// lastCommit is what an expanded entry says of its last commit: the
// mirror keeps no history of paths, so it names the commit listed (which
// holds the entry as it is) and when it was mirrored.
func lastCommit(m *Manifest) *hubproto.LastCommit {
	return &hubproto.LastCommit{ID: m.Commit, Title: "mirrored by hubmirror", Date: m.Created.UTC().Format("2006-01-02T15:04:05.000Z")}
}

func (s *Server) tree(w http.ResponseWriter, r *http.Request, repo, rev, dir string) {
	setRoute(w, routeTree)
	cm, err := s.revision(w, r, repo, rev)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	recursive := parseBool(q.Get("recursive"))
	limit := s.opts.TreePageSize
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l > 0 && l < limit {
		limit = l
	}
	var cur treeCursor
	if c := q.Get("cursor"); c != "" {
		var ok bool
		if cur, ok = decodeTreeCursor(c); !ok {
			writeError(w, r, http.StatusBadRequest, "", "malformed cursor")
			return
		}
	}
	var expand *hubproto.LastCommit
	if parseBool(q.Get("expand")) {
		expand = lastCommit(cm.m)
	}
	dir = strings.Trim(dir, "/")
	trees := cm.treeOIDs()
	if _, isDir := trees[dir]; !isDir {
		w.Header().Set(hubproto.HeaderRepoCommit, cm.m.Commit)
		s.fail(w, r, fmt.Errorf("mirror: %s@%s: no directory %q: %w", repo, rev, dir, ErrEntryNotFound))
		return
	}
	page, next, more := treePage(cm.m, trees, dir, recursive, cur, limit, expand)
	if more {
		v := url.Values{}
		v.Set("cursor", next.encode())
		v.Set("limit", strconv.Itoa(limit))
		if recursive {
			v.Set("recursive", "true")
		}
		if q.Has("expand") {
			v.Set("expand", q.Get("expand"))
		}
		p := hubproto.APIPath(repo) + "/tree/" + cm.m.Commit
		if dir != "" {
			p += "/" + url.PathEscape(dir)
		}
		w.Header().Set("Link", fmt.Sprintf("<%s%s?%s>; rel=\"next\"", baseURL(r), p, v.Encode()))
	}
	if page == nil {
		page = []hubproto.TreeEntry{}
	}
	w.Header().Set(hubproto.HeaderRepoCommit, cm.m.Commit)
	writeJSON(w, r, page)
}

// pathsInfo serves POST /api/{type}s/{repo}/paths-info/{rev}: the entries
// of the paths asked for (a form with "paths" repeated and "expand", as
// huggingface_hub's get_paths_info sends it, or the same as JSON), files
// and directories, in the order asked; paths the commit does not hold are
// left out, as the Hub does.
func (s *Server) pathsInfo(w http.ResponseWriter, r *http.Request, repo, rev string) {
	setRoute(w, routePaths)
	cm, err := s.revision(w, r, repo, rev)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := readPathsInfo(r)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "", err.Error())
		return
	}
	var expand *hubproto.LastCommit
	if req.Expand {
		expand = lastCommit(cm.m)
	}
	trees := cm.treeOIDs()
	out := []hubproto.TreeEntry{}
	seen := map[string]bool{}
	for _, p := range req.Paths {
		p = strings.Trim(p, "/")
		if seen[p] {
			continue
		}
		seen[p] = true
		if f, ok := cm.m.File(p); ok {
			out = append(out, fileEntry(f, expand))
		} else if oid, ok := trees[p]; ok && p != "" {
			out = append(out, hubproto.TreeEntry{Type: hubproto.TypeDirectory, OID: oid, Path: p, LastCommit: expand})
		}
	}
	w.Header().Set(hubproto.HeaderRepoCommit, cm.m.Commit)
	writeJSON(w, r, out)
}

// readPathsInfo reads the body of a paths-info request.
func readPathsInfo(r *http.Request) (*hubproto.PathsInfoRequest, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPathsInfoBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the request: %v", err)
	}
	if len(body) > maxPathsInfoBody {
		return nil, fmt.Errorf("the request is larger than %d bytes", maxPathsInfoBody)
	}
	var req hubproto.PathsInfoRequest
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("malformed JSON: %v", err)
		}
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("malformed form: %v", err)
		}
		req.Paths = form["paths"]
		req.Expand = parseBool(form.Get("expand"))
	}
	if len(req.Paths) > maxPathsInfoPaths {
		return nil, fmt.Errorf("%d paths asked for, at most %d are answered at once", len(req.Paths), maxPathsInfoPaths)
	}
	return &req, nil
}
