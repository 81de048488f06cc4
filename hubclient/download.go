package hubclient

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// DownloadOptions configures Download. The zero value of every field means
// its default.
type DownloadOptions struct {
	// CacheDir is the Hugging Face cache to fill (default CacheDirFromEnv()).
	// With LocalDir set, blobs already in CacheDir are copied instead of
	// downloaded.
	CacheDir string
	// LocalDir, when set, receives the files as a plain directory tree,
	// with huggingface_hub's metadata under LocalDir/.cache/huggingface/.
	LocalDir string
	// Include and Exclude select files with huggingface_hub's
	// allow_patterns / ignore_patterns semantics (see Filter).
	Include, Exclude []string
	// Workers is how many files download at once (default 8).
	Workers int
	// Connections is how many byte ranges of one file download at once
	// (default 8). 1 downloads each file over a single connection. A large
	// file starts with one connection and opens more only while that raises
	// its throughput (see FixedConnections).
	Connections int
	// FixedConnections opens all Connections at once instead of ramping up
	// (one, then two, then all when two were at least 1.5 times faster
	// than one; back to one when the second gained less than 15%; no
	// further when hashing the file already kept one core half busy).
	FixedConnections bool
	// ChunkSize is the size of the byte ranges a large file is split into
	// (default 16 MiB). Files up to ChunkSize use one request. Smaller
	// chunks let the in-order hashing follow the download more closely.
	ChunkSize int64
	// Offline resolves the revision and the files from the cache alone and
	// sends no request (HF_HUB_OFFLINE).
	Offline bool
	// VerifyExisting re-hashes files already in the cache instead of
	// trusting their size (blobs written by other tools were checked by
	// size only).
	VerifyExisting bool
	// IntegrityRetries is how many times a file whose bytes do not match
	// its hash is downloaded again from scratch (default 1; negative: 0).
	IntegrityRetries int
	// Fsync syncs each file to disk before it is renamed into place (and
	// partial data before its range record is written), so that a machine
	// crash cannot leave a torn file under its final name. Off by default,
	// as in huggingface_hub: it bounds a pull by the disk's sustained write
	// speed, and a torn blob is caught by VerifyExisting.
	Fsync bool
	// Progress receives events (default NopProgress).
	Progress Progress
}

func (o *DownloadOptions) setDefaults() {
	if o.CacheDir == "" {
		o.CacheDir = CacheDirFromEnv()
	}
	// Absolute paths, as huggingface_hub resolves them: the snapshot path
	// is handed to other programs.
	if abs, err := filepath.Abs(o.CacheDir); err == nil {
		o.CacheDir = abs
	}
	if o.LocalDir != "" {
		if abs, err := filepath.Abs(o.LocalDir); err == nil {
			o.LocalDir = abs
		}
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Connections <= 0 {
		o.Connections = 8
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 16 << 20
	}
	if o.IntegrityRetries == 0 {
		o.IntegrityRetries = 1
	} else if o.IntegrityRetries < 0 {
		o.IntegrityRetries = 0
	}
	if o.Progress == nil {
		o.Progress = NopProgress{}
	}
}

// Snapshot is a downloaded (or cached) repository revision.
type Snapshot struct {
	RepoID   string
	Revision string
	Commit   string
	// Dir is the snapshot directory in the cache, or the local directory.
	Dir   string
	Files []FileResult
	// FromCache is set when the Hub could not be reached and the snapshot
	// was answered from a complete copy in the cache.
	FromCache bool
}

// FileResult describes one file of a snapshot.
type FileResult struct {
	Path      string // path in the repository
	LocalPath string // where it is on disk (a symlink in a cache snapshot)
	Size      int64
	ETag      string // blob name: sha256 for LFS files, git blob sha1 otherwise
	LFS       bool
	SHA256    string        // hex sha256 of the content
	Cached    bool          // complete before this run; nothing was downloaded
	Resumed   int64         // bytes reused from an interrupted earlier run
	Received  int64         // bytes received from the network in this run
	Duration  time.Duration // time spent on this file
}

// Download fetches the files of repoID at revision (default "main") that
// the filters select, verifies them and lays them out like
// huggingface_hub's snapshot_download: in the cache (blobs, refs,
// snapshots/<commit> symlinks) or, with LocalDir, as a plain directory.
// Nothing already present and complete is downloaded again; partial
// downloads of an interrupted run are resumed.
func (c *Client) Download(ctx context.Context, repoID, revision string, opts DownloadOptions) (*Snapshot, error) {
	opts.setDefaults()
	revision, err := checkRef(repoID, revision)
	if err != nil {
		return nil, err
	}
	filter, err := NewFilter(opts.Include, opts.Exclude)
	if err != nil {
		return nil, err
	}
	repo := newCacheRepo(opts.CacheDir, repoID)
	if opts.Offline {
		return c.offlineSnapshot(repo, revision, filter, &opts)
	}

	commit := revision
	if !IsCommitHash(revision) {
		info, err := c.RepoInfo(ctx, repoID, revision)
		if err != nil {
			// The Hub cannot be reached (or keeps failing): like
			// huggingface_hub, fall back to a complete cached snapshot.
			// Authorization and not-found answers are never masked.
			if (errors.Is(err, ErrServer) || errors.Is(err, ErrUnreachable)) && ctx.Err() == nil {
				if snap, cerr := c.offlineSnapshot(repo, revision, filter, &opts); cerr == nil {
					snap.FromCache = true
					return snap, nil
				}
			}
			return nil, err
		}
		commit = info.SHA
	}

	treePath := repo.treePath(commit)
	if opts.LocalDir != "" {
		treePath = filepath.Join(opts.LocalDir, ".cache", "huggingface", "trees", commit+".json")
	}
	files := readTreeCache(treePath)
	fromServer := files == nil
	if fromServer {
		if files, err = c.ListTree(ctx, repoID, commit); err != nil {
			return nil, err
		}
	}
	selected, err := selectFiles(files, filter)
	if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", repoID, revision, err)
	}
	if fromServer {
		if err := checkListing(files); err != nil {
			return nil, fmt.Errorf("%s@%s: %w", repoID, revision, err)
		}
	}

	snap := &Snapshot{RepoID: repoID, Revision: revision, Commit: commit}
	var plan []*planned
	if opts.LocalDir != "" {
		if plan, err = c.planLocal(selected, commit, &opts); err != nil {
			return nil, err
		}
		snap.Dir = opts.LocalDir
	} else {
		if err := ensureCacheRoot(opts.CacheDir); err != nil {
			return nil, err
		}
		snap.Dir = repo.snapshotDir(commit)
		if err := os.MkdirAll(snap.Dir, 0o755); err != nil {
			return nil, err
		}
		if err := repo.writeRef(revision, commit); err != nil {
			return nil, err
		}
		if plan, err = c.planCache(repo, selected, commit, &opts); err != nil {
			return nil, err
		}
	}
	if fromServer {
		if err := writeTreeCache(treePath, files); err != nil {
			return nil, err
		}
	}

	var nFetch int
	var bytesFetch int64
	for _, p := range plan {
		if !p.done {
			nFetch++
			bytesFetch += p.file.Size
		}
	}
	opts.Progress.Start(nFetch, bytesFetch)

	params := fetchParams{
		connections:      opts.Connections,
		chunkSize:        opts.ChunkSize,
		integrityRetries: opts.IntegrityRetries,
		progress:         opts.Progress,
		flushInterval:    2 * time.Second,
		flushBytes:       flushBytes,
		fsync:            opts.Fsync,
		fixedConnections: opts.FixedConnections,
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Workers)
	for _, p := range plan {
		if p.done {
			continue
		}
		g.Go(func() error {
			start := time.Now()
			err := p.fetch(gctx, c, repoID, commit, params)
			p.result.Duration = time.Since(start)
			opts.Progress.FileDone(p.file.Path, err)
			if err != nil {
				return fmt.Errorf("%s@%s: %s: %w", repoID, revision, plainServer(p.file.Path), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, p := range plan {
		for _, r := range p.results() {
			snap.Files = append(snap.Files, *r)
		}
	}
	sort.Slice(snap.Files, func(i, j int) bool { return snap.Files[i].Path < snap.Files[j].Path })
	if err := fillSHA256(snap.Files); err != nil {
		return nil, err
	}
	return snap, nil
}

// selectFiles applies the filter and validates what it keeps.
func selectFiles(files []RepoFile, filter *Filter) ([]RepoFile, error) {
	var out []RepoFile
	for _, f := range files {
		if !filter.Match(f.Path) {
			continue
		}
		if err := f.validate(); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// checkListing refuses listings with duplicate paths or a path that is
// both a file and a directory.
func checkListing(files []RepoFile) error {
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		if seen[f.Path] {
			return fmt.Errorf("%w: the listing names %s twice", ErrServer, quoteServer(f.Path))
		}
		seen[f.Path] = true
	}
	for _, f := range files {
		for i := strings.IndexByte(f.Path, '/'); i >= 0; {
			if seen[f.Path[:i]] {
				return fmt.Errorf("%w: %s is both a file and a directory in the listing", ErrServer, quoteServer(f.Path[:i]))
			}
			j := strings.IndexByte(f.Path[i+1:], '/')
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	return nil
}

// planned is one blob to place: one download that fills one or more files
// (several paths of a repository may share content, hence a blob).
type planned struct {
	file    RepoFile // the first path with this content
	done    bool     // nothing to download
	result  *FileResult
	others  []*FileResult // further paths sharing the blob (cache mode)
	target  blobTarget
	lock    string
	after   func() error                                    // places the file(s) once the blob is verified
	reuse   func(ctx context.Context) (bool, string, error) // finds the blob already complete under the lock
	results func() []*FileResult
}

func (p *planned) fetch(ctx context.Context, c *Client, repoID, commit string, params fetchParams) error {
	unlock, err := fileLock(ctx, p.lock)
	if err != nil {
		return err
	}
	defer unlock()
	if p.reuse != nil {
		ok, sum, err := p.reuse(ctx)
		if err != nil {
			return err
		}
		if ok {
			p.result.SHA256 = sum
			return p.after()
		}
	}
	res, err := c.fetchBlob(ctx, repoID, commit, p.file, p.target, params)
	p.result.Received, p.result.Resumed = res.downloaded, res.resumed
	if err != nil {
		return err
	}
	p.result.SHA256 = res.sha256
	for _, o := range p.others {
		o.SHA256 = res.sha256
	}
	return p.after()
}

// planCache decides, per blob, whether the cache already has it.
func (c *Client) planCache(repo cacheRepo, files []RepoFile, commit string, opts *DownloadOptions) ([]*planned, error) {
	if err := os.MkdirAll(filepath.Join(repo.dir, "blobs"), 0o755); err != nil {
		return nil, err
	}
	byETag := map[string]*planned{}
	var plan []*planned
	for _, f := range files {
		res := &FileResult{Path: f.Path, LocalPath: repo.pointerPath(commit, f.Path), Size: f.Size, ETag: f.ETag(), LFS: f.LFS != nil}
		if p := byETag[f.ETag()]; p != nil {
			p.others = append(p.others, res)
			if p.done {
				res.Cached = true
				if err := repo.link(commit, f.Path, f.ETag()); err != nil {
					return nil, err
				}
			}
			continue
		}
		blob := repo.blobPath(f.ETag())
		p := &planned{file: f, result: res, lock: repo.lockPath(f.ETag())}
		p.results = func() []*FileResult { return append([]*FileResult{p.result}, p.others...) }
		p.target = blobTarget{incomplete: blob + ".incomplete", final: blob}
		p.after = func() error {
			for _, r := range p.results() {
				if err := repo.link(commit, r.Path, f.ETag()); err != nil {
					return err
				}
			}
			return nil
		}
		p.reuse = func(context.Context) (bool, string, error) {
			// Another process may have completed the blob while we waited.
			if st, err := os.Stat(blob); err == nil && st.Mode().IsRegular() && st.Size() == f.Size {
				return true, "", nil
			}
			return false, "", nil
		}
		if ok, err := blobPresent(blob, f, opts.VerifyExisting); err != nil {
			return nil, err
		} else if ok {
			p.done = true
			res.Cached = true
			if err := repo.link(commit, f.Path, f.ETag()); err != nil {
				return nil, err
			}
		}
		byETag[f.ETag()] = p
		plan = append(plan, p)
	}
	return plan, nil
}

// blobPresent reports whether path holds f's content: right size, and with
// verify, right hash. A blob that fails verification is removed.
func blobPresent(path string, f RepoFile, verify bool) (bool, error) {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Size() != f.Size {
		return false, nil
	}
	if !verify {
		return true, nil
	}
	ok, err := fileMatches(path, f)
	if err != nil {
		return false, err
	}
	if !ok {
		if err := os.Remove(path); err != nil {
			return false, err
		}
	}
	return ok, nil
}

// fileMatches hashes path and compares with f's ETag.
func fileMatches(path string, f RepoFile) (bool, error) {
	s256, git, err := hashFile(path)
	if err != nil {
		return false, err
	}
	if f.LFS != nil {
		return s256 == f.LFS.SHA256, nil
	}
	return git == f.BlobID, nil
}

// hashFile returns the hex sha256 and git blob sha1 of a file.
func hashFile(path string) (sha256Hex, gitSHA1Hex string, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return "", "", err
	}
	s := sha256.New()
	g := sha1.New()
	fmt.Fprintf(g, "blob %d\x00", st.Size())
	if _, err := io.Copy(io.MultiWriter(s, g), fh); err != nil {
		return "", "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(s.Sum(nil)), hex.EncodeToString(g.Sum(nil)), nil
}

// fillSHA256 completes the sha256 of every result: an LFS file's ETag is
// its sha256; other files (small, stored in git) are hashed.
func fillSHA256(files []FileResult) error {
	var wg sync.WaitGroup
	errs := make([]error, len(files))
	sem := make(chan struct{}, 4)
	for i := range files {
		f := &files[i]
		if f.SHA256 != "" {
			continue
		}
		if f.LFS {
			f.SHA256 = f.ETag
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, _, err := hashFile(f.LocalPath)
			f.SHA256, errs[i] = s, err
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// offlineSnapshot answers Download from the cache alone.
func (c *Client) offlineSnapshot(repo cacheRepo, revision string, filter *Filter, opts *DownloadOptions) (*Snapshot, error) {
	if opts.LocalDir != "" {
		return offlineLocalDir(repo, revision, filter, opts)
	}
	dir, commit, err := findSnapshot(repo.cacheDir, repo.repoID, revision, filter)
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{RepoID: repo.repoID, Revision: revision, Commit: commit, Dir: dir}
	if files := readTreeCache(repo.treePath(commit)); files != nil {
		for _, f := range files {
			if !filter.Match(f.Path) || ValidateRepoPath(f.Path) != nil {
				continue
			}
			snap.Files = append(snap.Files, FileResult{Path: f.Path, LocalPath: repo.pointerPath(commit, f.Path),
				Size: f.Size, ETag: f.ETag(), LFS: f.LFS != nil, Cached: true})
		}
	} else {
		// No listing: report what the snapshot holds.
		err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			rel = filepath.ToSlash(rel)
			if !filter.Match(rel) {
				return nil
			}
			st, err := os.Stat(p)
			if err != nil {
				return fmt.Errorf("%w: %s: broken file in the cached snapshot: %v", ErrNotCached, rel, err)
			}
			fr := FileResult{Path: rel, LocalPath: p, Size: st.Size(), Cached: true}
			if target, err := os.Readlink(p); err == nil {
				fr.ETag = filepath.Base(target)
				fr.LFS = sha256Re.MatchString(fr.ETag)
			}
			snap.Files = append(snap.Files, fr)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if err := fillSHA256(snap.Files); err != nil {
		return nil, err
	}
	return snap, nil
}

// DownloadFile fetches one file of repoID at revision into the cache (or
// opts.LocalDir) and returns where it is, like huggingface_hub's
// hf_hub_download. A file already cached is returned without a request when
// revision is a commit hash. When the Hub says the file does not exist, the
// cache records it under .no_exist/<commit>/<path> (as huggingface_hub
// does) and the error wraps ErrEntryNotFound. Include and Exclude are
// ignored.
func (c *Client) DownloadFile(ctx context.Context, repoID, revision, path string, opts DownloadOptions) (*FileResult, error) {
	opts.setDefaults()
	revision, err := checkRef(repoID, revision)
	if err != nil {
		return nil, err
	}
	if err := ValidateRepoPath(path); err != nil {
		return nil, err
	}
	repo := newCacheRepo(opts.CacheDir, repoID)
	if opts.LocalDir == "" && (opts.Offline || IsCommitHash(revision)) {
		if p, err := CachedFile(opts.CacheDir, repoID, revision, path); err == nil || opts.Offline {
			if err != nil {
				return nil, err
			}
			st, err := os.Stat(p)
			if err != nil {
				return nil, err
			}
			res := &FileResult{Path: path, LocalPath: p, Size: st.Size(), Cached: true}
			if target, err := os.Readlink(p); err == nil {
				res.ETag = filepath.Base(target)
				res.LFS = sha256Re.MatchString(res.ETag)
			}
			files := []FileResult{*res}
			if err := fillSHA256(files); err != nil {
				return nil, err
			}
			return &files[0], nil
		}
	}
	if opts.Offline {
		return nil, fmt.Errorf("%w: %s@%s: %s (offline)", ErrNotCached, repoID, revision, path)
	}
	meta, err := c.Resolve(ctx, repoID, revision, path)
	if err != nil {
		var herr *HTTPError
		if errors.As(err, &herr) && errors.Is(err, ErrEntryNotFound) && opts.LocalDir == "" && commitRe.MatchString(herr.Commit) {
			if ensureCacheRoot(opts.CacheDir) == nil && repo.markNoExist(herr.Commit, path) == nil {
				_ = repo.writeRef(revision, herr.Commit)
			}
		}
		return nil, err
	}
	f := RepoFile{Path: path, Size: meta.Size, BlobID: meta.ETag}
	if sha256Re.MatchString(meta.ETag) {
		f = RepoFile{Path: path, Size: meta.Size, LFS: &LFSInfo{SHA256: meta.ETag, Size: meta.Size}}
	}
	var plan []*planned
	if opts.LocalDir != "" {
		plan, err = c.planLocal([]RepoFile{f}, meta.Commit, &opts)
	} else {
		if err := ensureCacheRoot(opts.CacheDir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(repo.snapshotDir(meta.Commit), 0o755); err != nil {
			return nil, err
		}
		if err := repo.writeRef(revision, meta.Commit); err != nil {
			return nil, err
		}
		plan, err = c.planCache(repo, []RepoFile{f}, meta.Commit, &opts)
	}
	if err != nil {
		return nil, err
	}
	p := plan[0]
	if !p.done {
		opts.Progress.Start(1, f.Size)
		start := time.Now()
		err := p.fetch(ctx, c, repoID, meta.Commit, fetchParams{
			connections: opts.Connections, chunkSize: opts.ChunkSize, integrityRetries: opts.IntegrityRetries,
			progress: opts.Progress, flushInterval: 2 * time.Second, flushBytes: flushBytes, fsync: opts.Fsync,
			fixedConnections: opts.FixedConnections,
		})
		p.result.Duration = time.Since(start)
		opts.Progress.FileDone(path, err)
		if err != nil {
			return nil, fmt.Errorf("%s@%s: %s: %w", repoID, revision, path, err)
		}
	}
	files := []FileResult{*p.result}
	if err := fillSHA256(files); err != nil {
		return nil, err
	}
	return &files[0], nil
}

// checkRef validates a repo id and a revision ("" means DefaultRevision),
// and returns the revision.
func checkRef(repoID, revision string) (string, error) {
	if revision == "" {
		revision = DefaultRevision
	}
	if err := ValidateRepoID(repoID); err != nil {
		return "", err
	}
	if err := ValidateRevision(revision); err != nil {
		return "", err
	}
	return revision, nil
}

// flushBytes is how many bytes of a file a download writes before it
// records them for resuming, besides every 2 s: a killed pull loses at most
// that much (or 2 s) of each file.
const flushBytes = 8 << 20
