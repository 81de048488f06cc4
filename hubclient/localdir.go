package hubclient

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A local directory download follows huggingface_hub's _local_folder.py:
//
//	DIR/<path>                                                the file
//	DIR/.cache/huggingface/.gitignore                         "*"
//	DIR/.cache/huggingface/CACHEDIR.TAG
//	DIR/.cache/huggingface/download/<path>.metadata           "<commit>\n<etag>\n<unix time>\n"
//	DIR/.cache/huggingface/download/<path>.lock
//	DIR/.cache/huggingface/download/<dir>/<h>.<etag>.incomplete  partial data, h = urlsafe base64 of sha1("<name>.metadata")
//	DIR/.cache/huggingface/trees/<commit>.json

type localPaths struct {
	file, metadata, lock, incomplete string
}

func localDirPaths(dir, path, etag string) localPaths {
	meta := filepath.Join(dir, ".cache", "huggingface", "download", filepath.FromSlash(path)+".metadata")
	sum := sha1.Sum([]byte(filepath.Base(meta)))
	return localPaths{
		file:       filepath.Join(dir, filepath.FromSlash(path)),
		metadata:   meta,
		lock:       strings.TrimSuffix(meta, ".metadata") + ".lock",
		incomplete: filepath.Join(filepath.Dir(meta), base64.URLEncoding.EncodeToString(sum[:])+"."+etag+".incomplete"),
	}
}

type localMetadata struct {
	commit, etag string
	timestamp    float64
}

// readLocalMetadata returns the metadata of a local file, or nil when it is
// missing, unreadable or older than the file (the file changed since).
func readLocalMetadata(lp localPaths) *localMetadata {
	f, err := os.Open(lp.metadata)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 4096))
	var lines []string
	for sc.Scan() && len(lines) < 3 {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) < 3 {
		return nil
	}
	ts, err := strconv.ParseFloat(lines[2], 64)
	if err != nil {
		return nil
	}
	st, err := os.Stat(lp.file)
	if err != nil {
		return nil
	}
	mtime := float64(st.ModTime().UnixNano()) / 1e9
	if mtime-1 > ts {
		return nil
	}
	return &localMetadata{commit: lines[0], etag: lines[1], timestamp: ts}
}

func writeLocalMetadata(lp localPaths, commit, etag string) error {
	ts := strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 6, 64)
	return writeFileAtomic(lp.metadata, []byte(commit+"\n"+etag+"\n"+ts+"\n"), 0o644)
}

// ensureLocalDirMeta creates DIR/.cache/huggingface with its .gitignore and CACHEDIR.TAG.
func ensureLocalDirMeta(dir string) error {
	hf := filepath.Join(dir, ".cache", "huggingface")
	if err := os.MkdirAll(hf, 0o755); err != nil {
		return err
	}
	for name, content := range map[string]string{".gitignore": "*", "CACHEDIR.TAG": cachedirTag} {
		p := filepath.Join(hf, name)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			if err := writeFileAtomic(p, []byte(content), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// planLocal decides, per file, whether the local directory already has it.
func (c *Client) planLocal(files []RepoFile, commit string, opts *DownloadOptions) ([]*planned, error) {
	if err := ensureLocalDirMeta(opts.LocalDir); err != nil {
		return nil, err
	}
	var plan []*planned
	for _, f := range files {
		lp := localDirPaths(opts.LocalDir, f.Path, f.ETag())
		if err := os.MkdirAll(filepath.Dir(lp.metadata), 0o755); err != nil {
			return nil, err
		}
		res := &FileResult{Path: f.Path, LocalPath: lp.file, Size: f.Size, ETag: f.ETag(), LFS: f.LFS != nil}
		p := &planned{file: f, result: res, lock: lp.lock,
			target: blobTarget{incomplete: lp.incomplete, final: lp.file}}
		p.results = func() []*FileResult { return []*FileResult{res} }
		p.after = func() error { return writeLocalMetadata(lp, commit, f.ETag()) }
		plan = append(plan, p)

		done, err := localUpToDate(lp, f, commit, opts.VerifyExisting)
		if err != nil {
			return nil, err
		}
		if done {
			p.done = true
			res.Cached = true
			continue
		}
		if opts.CacheDir != "" {
			p.reuse = localReuse(lp, f, opts.CacheDir)
		}
		if err := os.MkdirAll(filepath.Dir(lp.file), 0o755); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// localUpToDate reports whether DIR/<path> already holds f: its metadata
// names f's ETag, or (no metadata) its content hashes to it.
func localUpToDate(lp localPaths, f RepoFile, commit string, verify bool) (bool, error) {
	st, err := os.Stat(lp.file)
	if err != nil || !st.Mode().IsRegular() || st.Size() != f.Size {
		return false, nil
	}
	md := readLocalMetadata(lp)
	if md != nil && md.etag == f.ETag() && !verify {
		if md.commit != commit {
			return true, writeLocalMetadata(lp, commit, f.ETag())
		}
		return true, nil
	}
	ok, err := fileMatches(lp.file, f)
	if err != nil || !ok {
		return false, err
	}
	return true, writeLocalMetadata(lp, commit, f.ETag())
}

// localReuse copies a blob that the cache already holds instead of
// downloading it again.
func localReuse(lp localPaths, f RepoFile, cacheDir string) func(context.Context) (bool, string, error) {
	return func(ctx context.Context) (bool, string, error) {
		matches, _ := filepath.Glob(filepath.Join(cacheDir, "*s--*", "blobs", f.ETag()))
		for _, blob := range matches {
			st, err := os.Stat(blob)
			if err != nil || !st.Mode().IsRegular() || st.Size() != f.Size {
				continue
			}
			if err := copyFileAtomic(blob, lp.file); err != nil {
				return false, "", err
			}
			return true, "", nil
		}
		return false, "", nil
	}
}

func copyFileAtomic(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+filepath.Base(dst)+"-*")
	if err != nil {
		return err
	}
	_, cerr := io.Copy(out, in)
	serr := out.Sync()
	clerr := out.Close()
	if err := errors.Join(cerr, serr, clerr); err != nil {
		os.Remove(out.Name())
		return fmt.Errorf("copying %s: %w", src, err)
	}
	_ = os.Chmod(out.Name(), 0o644)
	if err := os.Rename(out.Name(), dst); err != nil {
		os.Remove(out.Name())
		return err
	}
	return nil
}

// offlineLocalDir answers an offline Download into a local directory: the
// commit comes from the revision itself or the cache's refs, and the files
// from the directory's cached listing.
func offlineLocalDir(repo cacheRepo, revision string, filter *Filter, opts *DownloadOptions) (*Snapshot, error) {
	commit := revision
	if !IsCommitHash(revision) {
		if commit = repo.readRef(revision); commit == "" {
			return nil, fmt.Errorf("%w: %s@%s: offline, and no ref %q in %s to tell the commit", ErrNotCached, repo.repoID, revision, revision, repo.dir)
		}
	}
	files := readTreeCache(filepath.Join(opts.LocalDir, ".cache", "huggingface", "trees", commit+".json"))
	if files == nil {
		return nil, fmt.Errorf("%w: %s@%s: offline, and %s holds no listing of commit %s", ErrNotCached, repo.repoID, revision, opts.LocalDir, commit)
	}
	snap := &Snapshot{RepoID: repo.repoID, Revision: revision, Commit: commit, Dir: opts.LocalDir}
	var missing []string
	for _, f := range files {
		if !filter.Match(f.Path) || ValidateRepoPath(f.Path) != nil {
			continue
		}
		lp := localDirPaths(opts.LocalDir, f.Path, f.ETag())
		if st, err := os.Stat(lp.file); err != nil || st.Size() != f.Size {
			missing = append(missing, f.Path)
			continue
		}
		snap.Files = append(snap.Files, FileResult{Path: f.Path, LocalPath: lp.file, Size: f.Size, ETag: f.ETag(), LFS: f.LFS != nil, Cached: true})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s@%s: %d file(s) missing from %s (%s); pull again with network access",
			ErrNotCached, repo.repoID, revision, len(missing), opts.LocalDir, strings.Join(missing[:min(3, len(missing))], ", "))
	}
	if err := fillSHA256(snap.Files); err != nil {
		return nil, err
	}
	return snap, nil
}
