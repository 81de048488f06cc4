package source

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubproto"
	"github.com/hubmirror/hubmirror/mirror"
)

// CacheSnapshot is one commit of a repo in a Hugging Face cache
// (huggingface_hub's layout: <cache>/models--org--name/snapshots/<commit>,
// whose files are symbolic links to blobs/<etag>).
type CacheSnapshot struct {
	// Dir is the snapshot directory.
	Dir string
	// Repo and Commit are read from the layout: the commit is the Hub's.
	Repo   string
	Commit string
	// Refs are the cache's refs that name Commit, sorted, "main" first.
	Refs []string
}

// FindCacheSnapshot finds repo at revision (a branch, tag or commit; ""
// means main) in the Hugging Face cache at cacheDir, without any network
// access (hubclient.FindSnapshot: a snapshot whose recorded listing has
// files missing is refused with hubclient.ErrNotCached).
func FindCacheSnapshot(cacheDir, repo, revision string) (*CacheSnapshot, error) {
	dir, err := hubclient.FindSnapshot(cacheDir, repo, revision)
	if err != nil {
		return nil, err
	}
	return cacheSnapshot(cacheDir, repo, dir)
}

// CacheSnapshotAt recognises a snapshot directory of a Hugging Face cache
// (".../models--org--name/snapshots/<40 hex>") and returns it, with the same
// checks as FindCacheSnapshot; ok is false when dir is not laid out as one.
func CacheSnapshotAt(dir string) (snap *CacheSnapshot, ok bool, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, false, err
	}
	commit := filepath.Base(abs)
	snapshots := filepath.Dir(abs)
	repoDir := filepath.Dir(snapshots)
	repo, isRepo := repoFromCacheDir(filepath.Base(repoDir))
	if !mirror.IsCommitID(commit) || filepath.Base(snapshots) != "snapshots" || !isRepo {
		return nil, false, nil
	}
	cacheDir := filepath.Dir(repoDir)
	found, err := hubclient.FindSnapshot(cacheDir, repo, commit)
	if err != nil {
		return nil, true, err
	}
	snap, err = cacheSnapshot(cacheDir, repo, found)
	return snap, true, err
}

func cacheSnapshot(cacheDir, repo, dir string) (*CacheSnapshot, error) {
	snap := &CacheSnapshot{Dir: dir, Repo: repo, Commit: filepath.Base(dir)}
	if !mirror.IsCommitID(snap.Commit) {
		return nil, fmt.Errorf("source: %s: not a snapshot directory (its name is not a commit id): %w", dir, ErrSpec)
	}
	refsDir := filepath.Join(cacheDir, hubclient.RepoFolderName(repo), "refs")
	_ = filepath.WalkDir(refsDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil || strings.TrimSpace(string(data)) != snap.Commit {
			return nil
		}
		if rel, err := filepath.Rel(refsDir, p); err == nil && mirror.ValidateRevision(filepath.ToSlash(rel)) == nil {
			snap.Refs = append(snap.Refs, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Slice(snap.Refs, func(i, j int) bool {
		a, b := snap.Refs[i], snap.Refs[j]
		if (a == "main") != (b == "main") {
			return a == "main"
		}
		return a < b
	})
	return snap, nil
}

// Files lists the snapshot's files for mirror.Push with what the cache knows about
// them: a file whose blob is named by a sha256 is an LFS file with that
// sha256 (Push then needs no hashing pass, and storage verifies it while it
// uploads), one whose blob is named by a git blob id is a regular file with
// that id (checked against the content). Files that are not links into
// blobs/ get the rules of mirror.DirFiles.
func (c *CacheSnapshot) Files() ([]mirror.PushFile, error) {
	files, err := mirror.DirFiles(c.Dir, nil)
	if err != nil {
		return nil, err
	}
	for i := range files {
		target, err := os.Readlink(filepath.Join(c.Dir, filepath.FromSlash(files[i].Path)))
		if err != nil {
			continue // not a link
		}
		name := filepath.Base(target)
		switch {
		case isHex(name, 64):
			files[i].LFS, files[i].SHA256 = true, name
		case isHex(name, 40):
			files[i].LFS, files[i].GitOID = false, name
		}
	}
	return files, nil
}

// repoFromCacheDir parses a repo folder name of the Hugging Face cache
// (hubclient.RepoFolderName: models--org--name, datasets--org--name) back
// into a qualified repo id ("datasets/org/name").
func repoFromCacheDir(dir string) (string, bool) {
	id, ok := hubproto.ParseFolderName(dir)
	if !ok {
		return "", false
	}
	if mirror.ValidateRepoID(id) != nil || hubclient.RepoFolderName(id) != dir {
		return "", false
	}
	return id, true
}

// isHex reports whether s is n lowercase hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < n; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
