package hubtest

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"sort"
)

// File is one file of a repository on the test hub.
type File struct {
	Path    string
	Content Content
	LFS     bool
	SHA256  string // of the content
	GitSHA1 string // git blob id of what git stores (the pointer for LFS files)
}

// ETag is what the hub answers as the file's ETag.
func (f *File) ETag() string {
	if f.LFS {
		return f.SHA256
	}
	return f.GitSHA1
}

// Repo is a repository on the test hub: a model, or a dataset or space
// when its ID is qualified ("datasets/org/name", see hubproto.SplitRepo). Its methods are safe for
// concurrent use with the server.
type Repo struct {
	hub     *Hub
	ID      string
	gated   bool
	private bool
	files   map[string]*File            // working tree of main
	commits map[string]map[string]*File // commit -> tree
	refs    map[string]string           // branch or tag -> commit
}

// SetGated makes the repository gated: it answers 401 GatedRepo without a
// valid token (see Hub.SetToken).
func (r *Repo) SetGated(gated bool) *Repo {
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	r.gated = gated
	return r
}

// SetPrivate makes the repository private: without a valid token it
// answers 401 RepoNotFound, as if it did not exist.
func (r *Repo) SetPrivate(private bool) *Repo {
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	r.private = private
	return r
}

// AddFile adds (or replaces) a file on main and commits. Files of at least
// Hub.LFSThreshold bytes are stored with LFS and served through the CDN.
func (r *Repo) AddFile(path string, data []byte) *Repo {
	return r.AddContent(path, Bytes(data), int64(len(data)) >= r.hub.LFSThreshold)
}

// AddContent adds (or replaces) a file on main with any content, stored
// with LFS or not, and commits.
func (r *Repo) AddContent(path string, c Content, lfs bool) *Repo {
	s256, git := hashes(c)
	f := &File{Path: path, Content: c, LFS: lfs, SHA256: s256, GitSHA1: git}
	if lfs {
		f.GitSHA1 = gitBlobSHA1(lfsPointer(s256, c.Size()))
	}
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	r.files[path] = f
	r.commitLocked()
	return r
}

// AddFiles adds (or replaces) many files on main in one commit, stored
// with LFS from Hub.LFSThreshold bytes on as AddFile does: a dataset of
// thousands of files is one commit, not thousands.
func (r *Repo) AddFiles(files map[string][]byte) *Repo {
	add := make([]*File, 0, len(files))
	for path, data := range files {
		c := Bytes(data)
		s256, git := hashes(c)
		f := &File{Path: path, Content: c, LFS: int64(len(data)) >= r.hub.LFSThreshold, SHA256: s256, GitSHA1: git}
		if f.LFS {
			f.GitSHA1 = gitBlobSHA1(lfsPointer(s256, c.Size()))
		}
		add = append(add, f)
	}
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	for _, f := range add {
		r.files[f.Path] = f
	}
	r.commitLocked()
	return r
}

// RemoveFile deletes a file from main and commits.
func (r *Repo) RemoveFile(path string) *Repo {
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	delete(r.files, path)
	r.commitLocked()
	return r
}

// commitLocked records the working tree as a new commit of main. The commit
// hash is derived from the tree, so the same files give the same commit.
func (r *Repo) commitLocked() {
	tree := make(map[string]*File, len(r.files))
	paths := make([]string, 0, len(r.files))
	for p, f := range r.files {
		tree[p] = f
		paths = append(paths, p)
	}
	sort.Strings(paths)
	h := sha1.New()
	fmt.Fprintf(h, "repo %s\n", r.ID)
	for _, p := range paths {
		fmt.Fprintf(h, "%s %s\n", p, tree[p].GitSHA1)
	}
	c := hex.EncodeToString(h.Sum(nil))
	r.commits[c] = tree
	r.refs["main"] = c
}

// Commit returns the commit main points to.
func (r *Repo) Commit() string {
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	return r.refs["main"]
}

// Tag points rev (a branch or tag name, which may contain '/') at the
// current commit of main.
func (r *Repo) Tag(rev string) *Repo {
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	r.refs[rev] = r.refs["main"]
	return r
}

// File returns a file of main, or nil.
func (r *Repo) File(path string) *File {
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	return r.files[path]
}

// resolveLocked maps a revision to its commit and tree.
func (r *Repo) resolveLocked(rev string) (string, map[string]*File) {
	if c, ok := r.refs[rev]; ok {
		return c, r.commits[c]
	}
	if t, ok := r.commits[rev]; ok {
		return rev, t
	}
	return "", nil
}
