package mirror

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hubmirror/hubmirror/storage"
)

// PushFile is one file to push: where its bytes come from and what is known
// about them. A file from disk knows only its path and size; a file streamed
// from the Hub also knows its sha256 (LFS files) or git blob id (regular
// files), which Push then checks.
type PushFile struct {
	Path string
	Size int64
	// SHA256 of the content, lowercase hex; "" when unknown, and Push reads
	// the file once to compute it before it decides whether to upload.
	SHA256 string
	// GitOID is the blob id the Hub reports; "" when unknown. For a regular
	// file it is checked against the content; for an LFS file against the
	// pointer of SHA256 and Size.
	GitOID string
	LFS    bool
	// Open returns the content from its first byte. When Push must hash
	// the file first, it calls Open once and uploads from the same reader
	// rewound when it is an io.Seeker, else from a copy it keeps in memory
	// (up to SpoolMemory) or in a temporary file. Otherwise Push calls Open
	// once per upload attempt: a failed upload is retried (storage.Retry)
	// by opening the file again, which for a stream means streaming it
	// again.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// VariantSpec makes a push a variant of another commit of the repo.
type VariantSpec struct {
	// Name is the variant's revision name ("int8").
	Name string
	// SourceRevision names the commit it was derived from; it must be in
	// the mirror already.
	SourceRevision string
	// Report is the validation report (JSON), stored as the variant's file
	// ReportPath. When nil, the files must include ReportPath.
	Report []byte
}

// ReportPath is the path of a variant's validation report among its files.
const ReportPath = "validation.json"

// PushProgress receives progress events; its methods are called from several
// goroutines. Push works without one.
type PushProgress interface {
	// Hashed is called as bytes of a file are read to hash it.
	Hashed(path string, n int64)
	// Uploaded is called as bytes of a file are uploaded.
	Uploaded(path string, n int64)
	// FileDone is called once per file, with whether it was uploaded (false:
	// its blob was already in the mirror).
	FileDone(path string, size int64, uploaded bool)
}

// PushOptions configure Push.
type PushOptions struct {
	// Revision is the ref to point at the commit; "" means "main", or the
	// variant's name for a variant.
	Revision string
	// NoRef writes no ref: the commit is reachable by its id alone (a
	// commit pulled by its hash). Not for variants.
	NoRef bool
	// Commit is the commit id to record (a Hub commit when mirroring one);
	// "" derives one from the content with CommitID.
	Commit string
	// Source is recorded in the manifest.
	Source Source
	// Variant makes this push a variant; see VariantSpec.
	Variant *VariantSpec
	// Jobs is the number of files hashed and uploaded at once; 0 means 4.
	Jobs int
	// SpoolMemory is the largest unseekable stream kept in memory while it
	// is hashed; larger ones go to a temporary file. 0 means 32 MiB.
	SpoolMemory int64
	// TempDir holds spool files; "" means os.TempDir().
	TempDir  string
	Progress PushProgress
	// Now returns the creation time recorded in a new manifest; nil means
	// time.Now.
	Now func() time.Time
	// Stored, when set, is called (from several goroutines) with each
	// file's entry once its blob, verified, and its chunk sidecar are in
	// the store, before the manifest is written: a caller may read the
	// blob from then on (pull-through serving, Upstream). For a blob
	// uploaded, that is when its upload ends (its lease keeps it from a
	// GC); for one found present, once every blob is in place and checked
	// again after the GCs running meanwhile (see lease.go).
	Stored func(Entry)
	// StaleUploadAge is the age from which an incomplete upload of a blob
	// (an S3 multipart upload a crashed or killed push left behind) is
	// aborted when Push starts; 0 means DefaultStaleUploadAge, a negative
	// value leaves them. It must exceed the time the longest upload takes,
	// or Push aborts the upload of a push running elsewhere.
	StaleUploadAge time.Duration
}

// DefaultStaleUploadAge is the default of PushOptions.StaleUploadAge.
const DefaultStaleUploadAge = 24 * time.Hour

// PushResult says what a push did.
type PushResult struct {
	Repo     string `json:"repo"`
	Revision string `json:"revision"`
	Commit   string `json:"commit"`
	Files    int    `json:"files"`
	Bytes    int64  `json:"bytes"`
	// Uploaded counts the blobs uploaded; Present those already there.
	Uploaded      int   `json:"uploaded"`
	UploadedBytes int64 `json:"uploaded_bytes"`
	Present       int   `json:"present"`
	PresentBytes  int64 `json:"present_bytes"`
	// Reuploaded counts the blobs uploaded again because a gc running at
	// the same time deleted them before it saw this push's lease (see GC).
	Reuploaded int `json:"reuploaded,omitempty"`
	// ManifestWritten is false when the manifest was already there.
	ManifestWritten bool `json:"manifest_written"`
	// RefUpdated is false when the ref already named the commit.
	RefUpdated bool `json:"ref_updated"`
	// AbortedUploads are the stale incomplete uploads of blobs Push
	// aborted (see PushOptions.StaleUploadAge).
	AbortedUploads []storage.IncompleteUpload `json:"aborted_uploads,omitempty"`
	// AbortError says why looking for stale uploads failed; that does not
	// fail the push.
	AbortError string `json:"abort_error,omitempty"`
}

// Push copies files into the mirror as one commit of repo: every blob not
// already present (by sha256 and size) is uploaded and verified, and one
// larger than a chunk gets its chunk sidecar (ChunksKey), hashed as it
// streams; then the manifest is written, then the ref. Push is idempotent:
// pushing the same files again uploads nothing and writes nothing, except
// the chunk sidecar of a present blob when it is missing or malformed
// (rebuilt from the content when Push reads it anyway, else from the stored
// blob) or wrong (when Push reads the content). When it fails or ctx is
// cancelled, no manifest or ref is written, blobs already uploaded are
// complete and verified, and a second Push completes the work.
func Push(ctx context.Context, s storage.Store, repo string, files []PushFile, opts PushOptions) (*PushResult, error) {
	if err := ValidateRepoID(repo); err != nil {
		return nil, err
	}
	rev := opts.Revision
	var variant *Variant
	if v := opts.Variant; v != nil {
		if err := ValidateRevision(v.Name); err != nil {
			return nil, err
		}
		if rev == "" {
			rev = v.Name
		}
		if rev != v.Name {
			return nil, fmt.Errorf("mirror: push of variant %q as revision %q: a variant is its own revision: %w", v.Name, rev, ErrInvalid)
		}
		src, err := Resolve(ctx, s, repo, v.SourceRevision)
		if err != nil {
			return nil, fmt.Errorf("mirror: variant %s of %s: %w", v.Name, v.SourceRevision, err)
		}
		if src.Variant != nil {
			return nil, fmt.Errorf("mirror: variant %s: source %s is itself a variant: %w", v.Name, v.SourceRevision, ErrInvalid)
		}
		variant = &Variant{Name: v.Name, SourceCommit: src.Commit, Report: ReportPath}
		if v.Report != nil {
			if !json.Valid(v.Report) {
				return nil, fmt.Errorf("mirror: variant %s: the validation report is not JSON: %w", v.Name, ErrInvalid)
			}
			report := v.Report
			files = append(slices.Clone(files), PushFile{
				Path: ReportPath, Size: int64(len(report)),
				Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(report)), nil },
			})
		}
	}
	if opts.NoRef {
		if variant != nil || rev != "" {
			return nil, fmt.Errorf("mirror: a push without a ref takes no revision or variant: %w", ErrInvalid)
		}
	} else {
		if rev == "" {
			rev = "main"
		}
		if err := ValidateRevision(rev); err != nil {
			return nil, err
		}
	}
	if opts.Commit != "" && !IsCommitID(opts.Commit) {
		return nil, fmt.Errorf("mirror: commit %q is not 40 hex digits: %w", opts.Commit, ErrInvalid)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if err := ValidatePath(f.Path); err != nil {
			return nil, err
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("mirror: %s appears twice: %w", f.Path, ErrInvalid)
		}
		seen[f.Path] = true
		if f.Size < 0 || f.Size > MaxFileSize {
			return nil, fmt.Errorf("mirror: %s: size %d out of range: %w", f.Path, f.Size, ErrInvalid)
		}
		if f.SHA256 != "" && storage.ValidateSHA256(f.SHA256) != nil {
			return nil, fmt.Errorf("mirror: %s: sha256 %q is not 64 hex digits: %w", f.Path, f.SHA256, ErrInvalid)
		}
		if f.Open == nil {
			return nil, fmt.Errorf("mirror: %s: no Open: %w", f.Path, ErrInvalid)
		}
	}
	if variant != nil && !seen[ReportPath] {
		return nil, fmt.Errorf("mirror: variant %s has no validation report (%s): %w", variant.Name, ReportPath, ErrInvalid)
	}

	p := &pusher{store: s, opts: opts, res: &PushResult{Repo: repo, Revision: rev, Files: len(files)}}
	if p.opts.Jobs <= 0 {
		p.opts.Jobs = 4
	}
	if p.opts.SpoolMemory <= 0 {
		p.opts.SpoolMemory = 32 << 20
	}
	if age := opts.StaleUploadAge; age >= 0 {
		if age == 0 {
			age = DefaultStaleUploadAge
		}
		aborted, err := storage.AbortIncompleteUploads(ctx, s, blobPrefix, age)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p.res.AbortedUploads = aborted
		if err != nil {
			p.res.AbortError = err.Error()
		}
	}
	p.lease = newLeaser(s)
	defer p.lease.release(ctx)
	if err := p.lease.start(ctx); err != nil {
		return nil, fmt.Errorf("mirror: push %s: %w", repo, err)
	}
	// The blobs (and sidecars) are fsynced one by one, but the renames
	// that put them in place are made durable once per directory, before
	// the manifest that refers to them (storage.SyncBatch; on a local
	// store, one directory fsync per push instead of one per blob).
	batch := storage.NewSyncBatch()
	bctx := storage.WithSyncBatch(ctx, batch)
	entries := make([]Entry, len(files))
	later := make([]bool, len(files)) // Stored after the recheck
	g, gctx := errgroup.WithContext(bctx)
	g.SetLimit(p.opts.Jobs)
	for i := range files {
		g.Go(func() error {
			e, err := p.pushFile(gctx, files[i])
			if err != nil {
				return fmt.Errorf("mirror: push %s: %w", files[i].Path, err)
			}
			entries[i] = e
			if opts.Stored != nil {
				if p.foundPresent(e.SHA256) {
					later[i] = true
				} else {
					opts.Stored(e)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := p.recheck(bctx, files, entries); err != nil {
		return nil, err
	}
	batch.Sync()
	if opts.Stored != nil {
		// A blob found present has no blob lease: a GC that listed the
		// leases before the full list lease may delete it until the
		// recheck; it is safe to read from now on.
		for i, e := range entries {
			if later[i] {
				opts.Stored(e)
			}
		}
	}
	sortEntries(entries)
	commit := opts.Commit
	if commit == "" {
		commit = CommitID(entries, variant)
	}
	p.res.Commit = commit
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	src := opts.Source
	if src.Revision == "" {
		src.Revision = rev
	}
	if variant != nil && src.Kind == "" {
		src.Kind = "variant"
	}
	m := &Manifest{Version: ManifestVersion, Repo: repo, Commit: commit, Created: now().UTC(), Source: src, Variant: variant, Files: entries}
	if err := p.writeManifest(ctx, m); err != nil {
		return nil, err
	}
	if !opts.NoRef {
		if err := p.writeRef(ctx, m, rev); err != nil {
			return nil, err
		}
	}
	return p.res, nil
}

type pusher struct {
	store storage.Store
	opts  PushOptions
	mu    sync.Mutex
	res   *PushResult
	// blobs serializes the stat-then-upload of one blob, so that files
	// with the same content upload it once.
	blobs map[string]*sync.Mutex
	// lease holds the leases on the blobs the push relies on (see GC).
	lease *leaser
	// present holds the blobs found present (no blob lease), by sha256.
	present map[string]bool
}

// foundPresent reports whether the blob with the given sha256 was found
// present rather than uploaded by this push.
func (p *pusher) foundPresent(sha string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.present[sha]
}

// recheck runs when every blob of the push is in place: it writes the
// push's list lease with every blob, waits for the GCs running to end and,
// if a GC ended after the push started, checks that every blob is still
// there and uploads again any that is not (a GC that listed leases before
// the list named the blob may have deleted one the push found present). A
// GC that starts later sees the list. See lease.go.
func (p *pusher) recheck(ctx context.Context, files []PushFile, entries []Entry) error {
	shas := make([]string, len(entries))
	for i, e := range entries {
		shas[i] = e.SHA256
	}
	again, err := p.lease.mustRecheck(ctx, shas)
	if err != nil {
		return fmt.Errorf("mirror: looking for a gc: %w", err)
	}
	if !again {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Jobs)
	for i, e := range entries {
		g.Go(func() error {
			info, err := p.store.Stat(gctx, BlobKey(e.SHA256))
			if err == nil && info.Size == e.Size {
				return nil
			}
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			f := files[i]
			f.SHA256, f.GitOID = e.SHA256, e.GitOID
			if _, err := p.pushFile(gctx, f); err != nil {
				return fmt.Errorf("mirror: push %s again after a gc: %w", f.Path, err)
			}
			p.mu.Lock()
			p.res.Reuploaded++
			p.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// blobLock returns the lock of the blob under key.
func (p *pusher) blobLock(key string) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blobs == nil {
		p.blobs = map[string]*sync.Mutex{}
	}
	l, ok := p.blobs[key]
	if !ok {
		l = &sync.Mutex{}
		p.blobs[key] = l
	}
	return l
}

// source is the content of a file ready to upload.
type source struct {
	// open returns the content from its first byte; it is called once per
	// upload attempt (storage.Source).
	open    func(ctx context.Context) (io.ReadCloser, error)
	closers []func() error
}

func (s *source) close() {
	for _, c := range s.closers {
		_ = c()
	}
	s.closers = nil
}

func (p *pusher) pushFile(ctx context.Context, f PushFile) (Entry, error) {
	e := Entry{Path: f.Path, Size: f.Size, SHA256: f.SHA256, GitOID: f.GitOID, LFS: f.LFS}
	var src *source
	defer func() {
		if src != nil {
			src.close()
		}
	}()
	// A blob larger than a chunk gets a chunk sidecar, hashed in the same
	// pass as the rest: the hash pass when there is one, else the upload.
	chunkSize := sidecarChunkSize(f.Size)
	var sums [][32]byte
	if e.SHA256 == "" || (!e.LFS && e.GitOID == "") {
		var sha, oid string
		var err error
		src, sha, oid, sums, err = p.hash(ctx, f, chunkSize)
		if err != nil {
			return Entry{}, err
		}
		if e.SHA256 != "" && e.SHA256 != sha {
			return Entry{}, fmt.Errorf("content has sha256 %s, the source declared %s: %w", sha, e.SHA256, storage.ErrHashMismatch)
		}
		e.SHA256 = sha
		if !e.LFS {
			if e.GitOID != "" && e.GitOID != oid {
				return Entry{}, fmt.Errorf("content has git blob id %s, the source declared %s: %w", oid, e.GitOID, storage.ErrHashMismatch)
			}
			e.GitOID = oid
		}
	}
	if e.LFS {
		oid := LFSOID(e.SHA256, e.Size)
		if e.GitOID != "" && e.GitOID != oid {
			return Entry{}, fmt.Errorf("LFS pointer has git blob id %s, the source declared %s: %w", oid, e.GitOID, storage.ErrHashMismatch)
		}
		e.GitOID = oid
	}

	key := BlobKey(e.SHA256)
	l := p.blobLock(key)
	l.Lock()
	defer l.Unlock()
	info, err := p.store.Stat(ctx, key)
	if err == nil && info.Size == e.Size && sums == nil && chunkSize > 0 {
		// Present, and this push did not read the content: a missing
		// or malformed sidecar is rebuilt from the stored blob, which is
		// verified on the way (a blob that does not match is replaced).
		sums, err = p.storedChunks(ctx, e, chunkSize)
		if errors.Is(err, ErrCorrupt) {
			info.Size = -1
			err = nil
		}
	}
	switch {
	case err == nil && info.Size == e.Size:
		// Present. Its sidecar is written when this push hashed the
		// content (a mirror from before sidecars gains them, a wrong one
		// is replaced) or rebuilt a missing one.
		if sums != nil {
			if err := writeChunks(ctx, p.store, e, chunkSize, sums); err != nil {
				return Entry{}, err
			}
		}
		p.done(e, false)
		return e, nil
	case err == nil:
		// A blob of the wrong size under its hash is corrupt: replace it.
	case !errors.Is(err, storage.ErrNotFound):
		return Entry{}, err
	}
	// A blob lease keeps the upload from a GC that runs meanwhile (a blob
	// found present needs none: the list lease and the recheck cover it).
	if err := p.lease.take(ctx, e.SHA256); err != nil {
		return Entry{}, err
	}
	if src == nil {
		// Not read yet: each upload attempt opens the file anew (for a
		// file streamed from the Hub, a new download).
		src = &source{open: f.Open}
	}
	var chunks *chunkHasher
	if chunkSize > 0 && sums == nil {
		chunks = newChunkHasher(chunkSize)
	}
	upload := func(ctx context.Context) (io.ReadCloser, error) {
		rc, err := src.open(ctx)
		if err != nil {
			return nil, err
		}
		var r io.Reader = rc
		if chunks != nil {
			chunks.reset() // an attempt starts at the first byte
			r = &chunkTee{r: r, h: chunks}
		}
		if p.opts.Progress != nil {
			r = &progressReader{r: r, fn: func(n int64) { p.opts.Progress.Uploaded(e.Path, n) }}
		}
		return struct {
			io.Reader
			io.Closer
		}{r, rc}, nil
	}
	if err := p.store.Put(ctx, key, upload, e.Size, e.SHA256); err != nil {
		return Entry{}, err
	}
	if chunks != nil {
		// Put verified the bytes that went through the tee.
		sums, _ = chunks.result(e.Size)
	}
	if sums != nil {
		if err := writeChunks(ctx, p.store, e, chunkSize, sums); err != nil {
			return Entry{}, err
		}
	}
	p.done(e, true)
	return e, nil
}

// storedChunks checks the sidecar of e's blob, present in the store: it
// returns nil when the sidecar is there and well-formed, else the chunk
// hashes of the stored blob, read and hashed whole. A stored blob that does
// not hash to e.SHA256 is an error wrapping ErrCorrupt.
func (p *pusher) storedChunks(ctx context.Context, e Entry, chunkSize int64) ([][32]byte, error) {
	_, err := readChunks(ctx, p.store, e)
	switch {
	case err == nil:
		return nil, nil
	case !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, ErrBadChunks):
		return nil, err
	}
	rc, err := p.store.Get(ctx, BlobKey(e.SHA256), 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	hs := sha256.New()
	chunks := newChunkHasher(chunkSize)
	n, err := io.Copy(io.MultiWriter(hs, chunks), storage.ContextReader(ctx, rc))
	if err != nil {
		return nil, fmt.Errorf("reading the stored blob to rebuild its chunk sidecar: %w", err)
	}
	if got := hex.EncodeToString(hs.Sum(nil)); n != e.Size || got != e.SHA256 {
		return nil, fmt.Errorf("the stored blob %s has %d bytes with sha256 %s: %w", e.SHA256, n, got, ErrCorrupt)
	}
	sums, ok := chunks.result(e.Size)
	if !ok {
		return nil, fmt.Errorf("the stored blob %s: chunk hashes of %d bytes: %w", e.SHA256, n, ErrCorrupt)
	}
	return sums, nil
}

func (p *pusher) done(e Entry, uploaded bool) {
	p.mu.Lock()
	p.res.Bytes += e.Size
	if uploaded {
		p.res.Uploaded++
		p.res.UploadedBytes += e.Size
	} else {
		p.res.Present++
		p.res.PresentBytes += e.Size
		if p.present == nil {
			p.present = map[string]bool{}
		}
		p.present[e.SHA256] = true
	}
	p.mu.Unlock()
	if p.opts.Progress != nil {
		p.opts.Progress.FileDone(e.Path, e.Size, uploaded)
	}
}

// hash reads f once, returning its sha256 and git blob id, its chunk
// hashes when chunkSize > 0, and a source to upload it from: the same
// reader rewound when it can seek, else a spool.
func (p *pusher) hash(ctx context.Context, f PushFile, chunkSize int64) (*source, string, string, [][32]byte, error) {
	rc, err := f.Open(ctx)
	if err != nil {
		return nil, "", "", nil, err
	}
	src := &source{closers: []func() error{rc.Close}}
	ok := false
	defer func() {
		if !ok {
			src.close()
		}
	}()
	hs := sha256.New()
	var ho hash.Hash
	if !f.LFS {
		ho = sha1.New()
		ho.Write(GitBlobHeader(f.Size))
	}
	ws := []io.Writer{hs}
	if ho != nil {
		ws = append(ws, ho)
	}
	var chunks *chunkHasher
	if chunkSize > 0 {
		chunks = newChunkHasher(chunkSize)
		ws = append(ws, chunks)
	}
	w := io.MultiWriter(ws...)
	seeker, canSeek := rc.(io.Seeker)
	var spool io.Writer
	var reopen func() (io.Reader, error)
	switch {
	case canSeek:
		reopen = func() (io.Reader, error) {
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
			return rc, nil
		}
	case f.Size <= p.opts.SpoolMemory:
		buf := bytes.NewBuffer(make([]byte, 0, f.Size))
		spool = buf
		reopen = func() (io.Reader, error) { return bytes.NewReader(buf.Bytes()), nil }
	default:
		tmp, err := os.CreateTemp(p.opts.TempDir, "hubmirror-spool-*")
		if err != nil {
			return nil, "", "", nil, err
		}
		src.closers = append(src.closers, tmp.Close, func() error { return os.Remove(tmp.Name()) })
		spool = tmp
		reopen = func() (io.Reader, error) {
			if _, err := tmp.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
			return tmp, nil
		}
	}
	if spool != nil {
		w = io.MultiWriter(w, spool)
	}
	in := storage.ContextReader(ctx, rc)
	if p.opts.Progress != nil {
		in = &progressReader{r: in, fn: func(n int64) { p.opts.Progress.Hashed(f.Path, n) }}
	}
	n, err := io.Copy(w, io.LimitReader(in, f.Size+1))
	if err != nil {
		return nil, "", "", nil, err
	}
	if n != f.Size {
		return nil, "", "", nil, fmt.Errorf("read %d bytes, expected %d (did the file change?): %w", n, f.Size, storage.ErrShortRead)
	}
	src.open = func(context.Context) (io.ReadCloser, error) {
		r, err := reopen()
		if err != nil {
			return nil, err
		}
		return io.NopCloser(r), nil // src.close releases it
	}
	ok = true
	oid := ""
	if ho != nil {
		oid = hex.EncodeToString(ho.Sum(nil))
	}
	var sums [][32]byte
	if chunks != nil {
		sums, _ = chunks.result(f.Size)
	}
	return src, hex.EncodeToString(hs.Sum(nil)), oid, sums, nil
}

// writeManifest writes m unless a manifest for its commit already exists; an
// existing one must list the same files.
func (p *pusher) writeManifest(ctx context.Context, m *Manifest) error {
	key := ManifestKey(m.Repo, m.Commit)
	old, err := ReadManifest(ctx, p.store, m.Repo, m.Commit)
	switch {
	case err == nil:
		if !slices.Equal(old.Files, m.Files) || !variantEqual(old.Variant, m.Variant) {
			return fmt.Errorf("mirror: %s already holds commit %s with other content: %w", key, m.Commit, ErrCorrupt)
		}
		return nil
	case !errors.Is(err, ErrRevisionNotFound) && !errors.Is(err, ErrRepoNotFound):
		return err
	}
	data, err := m.Encode()
	if err != nil {
		return fmt.Errorf("mirror: manifest %s: %w", key, err)
	}
	if err := storage.PutBytes(ctx, p.store, key, data); err != nil {
		return err
	}
	p.res.ManifestWritten = true
	return nil
}

func variantEqual(a, b *Variant) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// writeRef points rev at m's commit. A ref may move between ordinary
// commits, or between variants, but a variant name never replaces a branch
// or tag (nor the reverse).
func (p *pusher) writeRef(ctx context.Context, m *Manifest, rev string) error {
	old, err := ReadRef(ctx, p.store, m.Repo, rev)
	switch {
	case err == nil && old == m.Commit:
		return nil
	case err == nil:
		prev, err := ReadManifest(ctx, p.store, m.Repo, old)
		if err == nil && (prev.Variant == nil) != (m.Variant == nil) {
			what := "branch or tag"
			if prev.Variant != nil {
				what = "variant"
			}
			return fmt.Errorf("mirror: revision %q of %s is a %s; it cannot be replaced by %s: %w", rev, m.Repo, what, m.Commit, ErrInvalid)
		}
	case !errors.Is(err, ErrRevisionNotFound):
		return err
	}
	if err := storage.PutBytes(ctx, p.store, RefKey(m.Repo, rev), []byte(m.Commit)); err != nil {
		return err
	}
	p.res.RefUpdated = true
	return nil
}

type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(int64(n))
	}
	return n, err
}

// TrimRepoRevision splits "org/name@rev" into repo and revision ("" when
// there is no '@').
func TrimRepoRevision(s string) (repo, rev string) {
	repo, rev, _ = strings.Cut(s, "@")
	return repo, rev
}
