package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/storage"
)

// PullOptions configure Pull.
type PullOptions struct {
	// Include and Exclude select files with huggingface_hub's
	// allow_patterns / ignore_patterns semantics (hubclient.Filter). The
	// commit is then mirrored with the selected files only, under the Hub's
	// commit id, and the filters are recorded in the manifest's source.
	Include, Exclude []string
	// Revision is the ref to set in the mirror; "" means the revision
	// pulled (with a "refs/heads/" or "refs/tags/" prefix removed). A pull
	// of a commit hash without Revision sets no ref.
	Revision string
	// Jobs is the number of files streamed at once; 0 means 4.
	Jobs int
	// Connections is how many byte ranges of one file are fetched from the
	// Hub at once (0: hubclient.DefaultStreamConnections, 8; 1: one
	// connection per file), and ChunkSize the size of those ranges (0:
	// hubclient.DefaultStreamChunkSize, 8 MiB). A file of at most one range
	// is read over one connection. Each file streaming holds at most
	// (Connections+1) × ChunkSize bytes in memory, so Pull holds at most
	// Jobs × that (288 MiB with the defaults), besides what storage
	// buffers.
	Connections int
	ChunkSize   int64
	// SpoolMemory and TempDir bound what a regular (non-LFS) file whose
	// sha256 the mirror does not know yet costs while it is hashed: it is
	// kept in memory up to SpoolMemory (0: 32 MiB, more than the Hub lets
	// a file in git have), beyond that in a temporary file in TempDir.
	// LFS files stream straight from the Hub into storage.
	SpoolMemory int64
	TempDir     string
	// Listed, when set, is told the commit and the number and total size of
	// the selected files once the Hub listed them, before any transfer.
	Listed func(commit string, files int, bytes int64)
	// Progress receives the bytes streamed (Uploaded) and each file's end.
	Progress PushProgress
	// Now is passed to Push.
	Now func() time.Time
	// StaleUploadAge is passed to Push (PushOptions.StaleUploadAge).
	StaleUploadAge time.Duration
	// First names files to stream before the others (a file a client
	// waits for), and Stored is passed to Push (PushOptions.Stored).
	First  []string
	Stored func(Entry)
	// tee, when set, is given each download of a file from the Hub with
	// what the listing says of the file, and returns the reader to upload
	// from (pull-through serving: see pullstream.go).
	tee func(Entry, io.ReadCloser) io.ReadCloser
}

// PullResult says what a pull did.
type PullResult struct {
	PushResult
	// Endpoint is the Hub the files came from.
	Endpoint string `json:"endpoint"`
	// Requested is the revision asked for ("main", a tag, a commit).
	Requested string `json:"requested"`
	// Downloaded counts the files and bytes read from the Hub in this run;
	// a pull of a commit the mirror already holds downloads nothing.
	DownloadedFiles int   `json:"downloaded_files"`
	Downloaded      int64 `json:"downloaded_bytes"`
}

// Pull mirrors one revision of a repository from a Hub into the mirror in
// s without a local copy: it lists the revision's files (c.Files), streams
// each file the mirror lacks from the Hub (c.OpenFileParallel: byte ranges
// over opts.Connections connections, each resumed when its connection
// breaks, handed out in order and verified against the sha256 or git blob
// id) into storage (Push, which verifies again before a blob becomes
// visible, and writes the chunk sidecar of a blob larger than a chunk,
// hashed on the way), then writes the manifest under the Hub's commit id
// and the ref.
//
// Pull is idempotent: blobs already in the mirror are not downloaded. The
// sha256 of an LFS file is in the Hub's listing; that of a regular file is
// taken from a manifest of the repo that lists the same git blob id, so a
// second pull of the same revision downloads nothing and uploads nothing.
// An interrupted pull leaves complete, verified blobs and no manifest; a
// rerun downloads only what is missing.
func Pull(ctx context.Context, c *hubclient.Client, s storage.Store, repo, revision string, opts PullOptions) (*PullResult, error) {
	if err := ValidateRepoID(repo); err != nil {
		return nil, err
	}
	if revision == "" {
		revision = hubclient.DefaultRevision
	}
	refName := opts.Revision
	noRef := false
	if refName == "" {
		switch {
		case hubclient.IsCommitHash(revision):
			noRef = true
		default:
			refName = revision
			for _, p := range []string{"refs/heads/", "refs/tags/"} {
				if short, ok := strings.CutPrefix(refName, p); ok {
					refName = short
					break
				}
			}
		}
	}
	if !noRef {
		if err := ValidateRevision(refName); err != nil {
			return nil, err
		}
	}
	commit, listed, err := c.Files(ctx, repo, revision, opts.Include, opts.Exclude)
	if err != nil {
		return nil, fmt.Errorf("mirror: pull %s@%s: %w", repo, revision, err)
	}
	if !IsCommitID(commit) {
		return nil, fmt.Errorf("mirror: pull %s@%s: the Hub names commit %q, not 40 hex digits: %w", repo, revision, commit, ErrInvalid)
	}
	res := &PullResult{Endpoint: c.Endpoint(), Requested: revision}

	existing, err := ReadManifest(ctx, s, repo, commit)
	switch {
	case err == nil:
	case errors.Is(err, ErrRevisionNotFound) || errors.Is(err, ErrRepoNotFound):
		existing = nil
	default:
		return nil, err
	}
	known := knownSHA256(ctx, s, repo, existing)

	stream := hubclient.ParallelOptions{Connections: opts.Connections, ChunkSize: opts.ChunkSize}
	var downloads atomic.Int64
	var downloadedFiles atomic.Int64
	files := make([]PushFile, 0, len(listed))
	for _, f := range listed {
		pf := PushFile{Path: f.Path, Size: f.Size, GitOID: f.BlobID, LFS: f.LFS != nil}
		if f.LFS != nil {
			pf.SHA256 = f.LFS.SHA256
		} else {
			pf.SHA256 = known[blobKey{f.BlobID, f.Size}]
		}
		path, etag, size := f.Path, f.ETag(), f.Size
		known, oid, lfs := pf.SHA256, f.BlobID, pf.LFS
		pf.Open = func(ctx context.Context) (io.ReadCloser, error) {
			rc, meta, err := c.OpenFileParallel(ctx, repo, commit, path, stream)
			if err != nil {
				return nil, err
			}
			if meta.ETag != etag || meta.Size != size {
				rc.Close()
				return nil, fmt.Errorf("%s@%s: %s resolves to etag %s and %d bytes, the listing says %s and %d: %w",
					repo, commit, path, meta.ETag, meta.Size, etag, size, storage.ErrHashMismatch)
			}
			downloadedFiles.Add(1)
			var r io.ReadCloser = &countingReader{ReadCloser: rc, n: &downloads}
			if opts.tee != nil {
				r = opts.tee(Entry{Path: path, Size: size, SHA256: known, GitOID: oid, LFS: lfs}, r)
			}
			return r, nil
		}
		files = append(files, pf)
	}

	if len(opts.First) > 0 {
		first := map[string]bool{}
		for _, p := range opts.First {
			first[p] = true
		}
		slices.SortStableFunc(files, func(a, b PushFile) int {
			switch {
			case first[a.Path] == first[b.Path]:
				return 0
			case first[a.Path]:
				return -1
			}
			return 1
		})
	}
	if opts.Listed != nil {
		var total int64
		for _, f := range files {
			total += f.Size
		}
		opts.Listed(commit, len(files), total)
	}
	if existing != nil {
		files, err = againstExisting(existing, files)
		if err != nil {
			return nil, fmt.Errorf("mirror: pull %s@%s: %w", repo, revision, err)
		}
	}
	src := Source{Kind: "hub", Location: c.Endpoint() + "/" + repo, Revision: revision, Include: opts.Include, Exclude: opts.Exclude}
	if existing != nil {
		src = existing.Source
	}
	pushed, err := Push(ctx, s, repo, files, PushOptions{
		Revision: refName, NoRef: noRef, Commit: commit, Source: src,
		Jobs: opts.Jobs, SpoolMemory: opts.SpoolMemory, TempDir: opts.TempDir, Progress: opts.Progress, Now: opts.Now,
		StaleUploadAge: opts.StaleUploadAge, Stored: opts.Stored,
	})
	if err != nil {
		return nil, err
	}
	res.PushResult = *pushed
	res.Downloaded = downloads.Load()
	res.DownloadedFiles = int(downloadedFiles.Load())
	return res, nil
}

// againstExisting checks the files listed for a commit against the manifest
// the mirror already holds for it, and returns what to push: the manifest's
// files (so that the manifest is unchanged), with the listing's sources.
// A listing that selects a file the manifest lacks (an earlier pull was
// filtered), or one that differs from it, is refused: manifests never
// change.
func againstExisting(m *Manifest, files []PushFile) ([]PushFile, error) {
	byPath := make(map[string]PushFile, len(files))
	for _, f := range files {
		e, ok := m.File(f.Path)
		if !ok {
			how := ""
			if len(m.Source.Include)+len(m.Source.Exclude) > 0 {
				how = fmt.Sprintf(" (it was pulled with include %q, exclude %q)", m.Source.Include, m.Source.Exclude)
			}
			return nil, fmt.Errorf("the mirror holds commit %s with %d files%s, without %s; a manifest never changes, so the commit cannot be extended: %w",
				m.Commit, len(m.Files), how, f.Path, ErrCorrupt)
		}
		if e.Size != f.Size || e.LFS != f.LFS || (f.GitOID != "" && e.GitOID != f.GitOID) || (f.SHA256 != "" && e.SHA256 != f.SHA256) {
			return nil, fmt.Errorf("the mirror's manifest of commit %s describes %s differently from the Hub: %w", m.Commit, f.Path, ErrCorrupt)
		}
		byPath[f.Path] = f
	}
	out := make([]PushFile, len(m.Files))
	for i, e := range m.Files {
		f, ok := byPath[e.Path]
		if !ok {
			// Not selected this time: the blob is read from the mirror if it
			// has to be uploaded again (it never is: it was verified
			// present when the manifest was written, and Push only reads
			// a source whose blob is missing).
			f = PushFile{Path: e.Path, Open: func(context.Context) (io.ReadCloser, error) {
				return nil, fmt.Errorf("%s: blob %s is missing from the mirror and was not selected for this pull: %w", e.Path, e.SHA256, ErrCorrupt)
			}}
		}
		f.Size, f.SHA256, f.GitOID, f.LFS = e.Size, e.SHA256, e.GitOID, e.LFS
		out[i] = f
	}
	return out, nil
}

type blobKey struct {
	gitOID string
	size   int64
}

// knownSHA256 maps the git blob ids of regular files to their sha256, from
// the manifest of the commit being pulled (when the mirror has it) and those
// the repo's refs name: a file unchanged since a mirrored revision needs no
// download to learn its sha256. Unreadable manifests are skipped: this is
// only a shortcut.
func knownSHA256(ctx context.Context, s storage.Store, repo string, existing *Manifest) map[blobKey]string {
	known := map[blobKey]string{}
	add := func(m *Manifest) {
		for _, e := range m.Files {
			if !e.LFS {
				known[blobKey{e.GitOID, e.Size}] = e.SHA256
			}
		}
	}
	if existing != nil {
		add(existing)
	}
	refs, err := ListRefs(ctx, s, repo)
	if err != nil {
		return known
	}
	seen := map[string]bool{}
	if existing != nil {
		seen[existing.Commit] = true
	}
	for _, r := range refs {
		if seen[r.Commit] || r.Variant {
			continue
		}
		seen[r.Commit] = true
		if m, err := ReadManifest(ctx, s, repo, r.Commit); err == nil {
			add(m)
		}
	}
	return known
}

// countingReader counts the bytes read through it.
type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
