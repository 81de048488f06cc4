package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/hubmirror/hubmirror/storage"
)

// errStop ends a List early.
var errStop = errors.New("stop")

// ReadManifest reads and validates the manifest of repo at commit. A missing
// manifest is ErrRevisionNotFound (ErrRepoNotFound when the repo has no
// manifest at all).
func ReadManifest(ctx context.Context, s storage.Store, repo, commit string) (*Manifest, error) {
	if err := ValidateRepoID(repo); err != nil {
		return nil, err
	}
	if !IsCommitID(commit) {
		return nil, fmt.Errorf("mirror: commit %q is not 40 hex digits: %w", commit, ErrInvalid)
	}
	data, err := storage.ReadAll(ctx, s, ManifestKey(repo, commit), MaxManifestSize)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound(ctx, s, repo, commit)
	}
	if err != nil {
		return nil, err
	}
	return ParseManifest(data, repo, commit)
}

// notFound returns ErrRevisionNotFound for rev, or ErrRepoNotFound when the
// repo has no manifest at all.
func notFound(ctx context.Context, s storage.Store, repo, rev string) error {
	ok, err := RepoExists(ctx, s, repo)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("mirror: %s: %w", repo, ErrRepoNotFound)
	}
	return fmt.Errorf("mirror: %s@%s: %w", repo, rev, ErrRevisionNotFound)
}

// RepoExists reports whether the mirror holds a manifest of repo.
func RepoExists(ctx context.Context, s storage.Store, repo string) (bool, error) {
	if err := ValidateRepoID(repo); err != nil {
		return false, err
	}
	found := false
	err := s.List(ctx, repoDir(repo)+"/manifests/", func(storage.Info) error { found = true; return errStop })
	if err != nil && !errors.Is(err, errStop) {
		return false, err
	}
	return found, nil
}

// ReadRef returns the commit a ref names, or ErrRevisionNotFound.
func ReadRef(ctx context.Context, s storage.Store, repo, rev string) (string, error) {
	if err := ValidateRevision(rev); err != nil {
		return "", err
	}
	data, err := storage.ReadAll(ctx, s, RefKey(repo, rev), 1024)
	if errors.Is(err, storage.ErrNotFound) {
		return "", fmt.Errorf("mirror: %s@%s: %w", repo, rev, ErrRevisionNotFound)
	}
	if err != nil {
		return "", err
	}
	commit := strings.TrimSpace(string(data))
	if !IsCommitID(commit) {
		return "", fmt.Errorf("mirror: ref %s of %s holds %q, not a commit id: %w", rev, repo, data, ErrCorrupt)
	}
	return commit, nil
}

// refPrefixes are the full ref names clients may use for a name.
var refPrefixes = []string{"refs/heads/", "refs/tags/", "refs/convert/"}

// Resolve returns the manifest a revision names: "" (main), a ref name
// (branch, tag or variant), a full ref ("refs/heads/main",
// "refs/convert/int8") or a 40-hex commit id. Errors: ErrRepoNotFound,
// ErrRevisionNotFound, ErrInvalid, ErrCorrupt.
func Resolve(ctx context.Context, s storage.Store, repo, rev string) (*Manifest, error) {
	commit, err := ResolveCommit(ctx, s, repo, rev)
	if err != nil {
		return nil, err
	}
	m, err := ReadManifest(ctx, s, repo, commit)
	if err != nil && !IsCommitID(rev) && (errors.Is(err, ErrRevisionNotFound) || errors.Is(err, ErrRepoNotFound)) {
		return nil, fmt.Errorf("mirror: ref %s of %s names commit %s, which has no manifest: %w", rev, repo, commit, ErrCorrupt)
	}
	return m, err
}

// ResolveCommit returns the commit a revision names (see Resolve) without
// reading its manifest; a commit id is returned as it is.
func ResolveCommit(ctx context.Context, s storage.Store, repo, rev string) (string, error) {
	if err := ValidateRepoID(repo); err != nil {
		return "", err
	}
	if rev == "" {
		rev = "main"
	}
	if IsCommitID(rev) {
		return rev, nil
	}
	if ValidateRevision(rev) != nil {
		// Not a name a ref can have: it names nothing.
		return "", notFound(ctx, s, repo, rev)
	}
	names := []string{rev}
	for _, p := range refPrefixes {
		if short, ok := strings.CutPrefix(rev, p); ok && ValidateRevision(short) == nil {
			names = append(names, short)
		}
	}
	for _, name := range names {
		commit, err := ReadRef(ctx, s, repo, name)
		if errors.Is(err, ErrRevisionNotFound) {
			continue
		}
		return commit, err
	}
	return "", notFound(ctx, s, repo, rev)
}

// ListRepos returns the ids of the repos that have at least one manifest,
// sorted.
func ListRepos(ctx context.Context, s storage.Store) ([]string, error) {
	set := map[string]bool{}
	err := s.List(ctx, repoPrefix, func(i storage.Info) error {
		rest := strings.TrimPrefix(i.Key, repoPrefix)
		dir, tail, ok := strings.Cut(rest, "/")
		if !ok || !strings.HasPrefix(tail, "manifests/") {
			return nil
		}
		if id, ok := repoFromDir(dir); ok {
			set[id] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

// Ref is a named revision of a repo.
type Ref struct {
	Name   string
	Commit string
	// Variant is true when the ref names a variant.
	Variant bool
}

// ListRefs returns the refs of repo, sorted by name. Refs whose object is
// unreadable or corrupt are an error; refs are few and small.
func ListRefs(ctx context.Context, s storage.Store, repo string) ([]Ref, error) {
	if err := ValidateRepoID(repo); err != nil {
		return nil, err
	}
	prefix := repoDir(repo) + "/refs/"
	var names []string
	err := s.List(ctx, prefix, func(i storage.Info) error {
		name, err := url.PathUnescape(strings.TrimPrefix(i.Key, prefix))
		if err == nil && ValidateRevision(name) == nil {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	refs := make([]Ref, 0, len(names))
	for _, n := range names {
		commit, err := ReadRef(ctx, s, repo, n)
		if err != nil {
			return nil, err
		}
		m, err := ReadManifest(ctx, s, repo, commit)
		if err != nil {
			return nil, fmt.Errorf("mirror: ref %s of %s: %w", n, repo, err)
		}
		refs = append(refs, Ref{Name: n, Commit: commit, Variant: m.Variant != nil})
	}
	return refs, nil
}

// OpenFile returns a reader of length bytes of e's content from offset
// (length < 0: to the end). A read of the whole file is verified: the reader
// fails with an error wrapping ErrCorrupt, before it delivers the last bytes,
// when the blob does not hash to e.SHA256. A partial read cannot be verified
// without reading the whole blob; callers that need that call VerifyBlob
// first, or verify the chunks that cover the range against the blob's
// chunk sidecar (Server does either, and remembers a whole verification).
func OpenFile(ctx context.Context, s storage.Store, e Entry, offset, length int64) (io.ReadCloser, error) {
	if length < 0 && offset >= 0 && offset <= e.Size {
		length = e.Size - offset
	}
	if offset < 0 || length < 0 || offset > e.Size || length > e.Size-offset {
		return nil, fmt.Errorf("mirror: %s: range offset %d length %d of %d bytes: %w", e.Path, offset, length, e.Size, storage.ErrInvalidRange)
	}
	rc, err := s.Get(ctx, BlobKey(e.SHA256), offset, length)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("mirror: %s: blob %s is missing: %w", e.Path, e.SHA256, ErrCorrupt)
	}
	if errors.Is(err, storage.ErrInvalidRange) {
		return nil, fmt.Errorf("mirror: %s: blob %s is shorter than the manifest says: %w", e.Path, e.SHA256, ErrCorrupt)
	}
	if err != nil {
		return nil, err
	}
	if offset != 0 || length != e.Size {
		return rc, nil
	}
	return &verifiedFile{vr: storage.NewVerifyReader(rc, e.Size, e.SHA256), rc: rc, e: e}, nil
}

// verifiedFile turns a VerifyReader's mismatch into ErrCorrupt, and notices
// a blob longer than the manifest says.
type verifiedFile struct {
	vr *storage.VerifyReader
	rc io.ReadCloser
	e  Entry
}

func (f *verifiedFile) Read(p []byte) (int, error) {
	n, err := f.vr.Read(p)
	if err != nil && err != io.EOF {
		if errors.Is(err, storage.ErrHashMismatch) || errors.Is(err, storage.ErrShortRead) {
			return n, fmt.Errorf("mirror: %s: blob %s does not match the manifest: %v: %w", f.e.Path, f.e.SHA256, err, ErrCorrupt)
		}
		return n, fmt.Errorf("mirror: %s: %w", f.e.Path, err)
	}
	return n, err
}

func (f *verifiedFile) Close() error { return f.rc.Close() }

// VerifyBlob reads e's whole blob and checks its size and sha256; a
// mismatch or a missing blob is ErrCorrupt. It returns the blob's Info as it
// was before reading, for callers that cache the result by Info.Version.
func VerifyBlob(ctx context.Context, s storage.Store, e Entry) (storage.Info, error) {
	info, err := s.Stat(ctx, BlobKey(e.SHA256))
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Info{}, fmt.Errorf("mirror: %s: blob %s is missing: %w", e.Path, e.SHA256, ErrCorrupt)
	}
	if err != nil {
		return storage.Info{}, err
	}
	if info.Size != e.Size {
		return storage.Info{}, fmt.Errorf("mirror: %s: blob %s has %d bytes, the manifest says %d: %w", e.Path, e.SHA256, info.Size, e.Size, ErrCorrupt)
	}
	rc, err := s.Get(ctx, BlobKey(e.SHA256), 0, -1)
	if err != nil {
		return storage.Info{}, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return storage.Info{}, fmt.Errorf("mirror: %s: reading blob %s: %w", e.Path, e.SHA256, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != e.Size || got != e.SHA256 {
		return storage.Info{}, fmt.Errorf("mirror: %s: blob %s has %d bytes with sha256 %s: %w", e.Path, e.SHA256, n, got, ErrCorrupt)
	}
	return info, nil
}

// ManifestFiles returns m's files as PushFiles that read from the mirror in
// s (verified whole-file reads), to copy a commit into another mirror.
func ManifestFiles(s storage.Store, m *Manifest) []PushFile {
	files := make([]PushFile, len(m.Files))
	for i, e := range m.Files {
		files[i] = PushFile{
			Path: e.Path, Size: e.Size, SHA256: e.SHA256, GitOID: e.GitOID, LFS: e.LFS,
			Open: func(ctx context.Context) (io.ReadCloser, error) { return OpenFile(ctx, s, e, 0, -1) },
		}
	}
	return files
}
