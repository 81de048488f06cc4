// Package source is the one home of the SRC/MODEL argument of hubmirror: it
// resolves a spec (a model directory, a weight file, a snapshot directory of
// the Hugging Face cache, a repo id org/name[@rev] in that cache or on the
// Hub, a revision of a mirror STORE#org/name[@rev]) into files plus a record
// of where they came from (repo id, revision, commit), and publishes into a
// mirror: a source as a commit of its repo (Push), a built directory as a
// variant of a source (PublishVariant), with one ref policy. Every command
// and the pipeline go through it.
package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubproto"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

// Kind says where a source comes from.
type Kind string

// The kinds of source.
const (
	// KindDir is a model directory on disk.
	KindDir Kind = "dir"
	// KindFile is a single weight file on disk.
	KindFile Kind = "file"
	// KindCache is a snapshot of the Hugging Face cache.
	KindCache Kind = "cache"
	// KindHub is a repo downloaded from the Hub into the cache.
	KindHub Kind = "hub"
	// KindMirror is a revision of a mirror in storage.
	KindMirror Kind = "mirror"
)

// ErrRefused reports a request that would publish something wrong (an empty
// source, weights that do not parse, a mirror inside its own source, a
// revision that exists and is no variant); nothing was written.
var ErrRefused = errors.New("refused")

// ErrSpec reports a SRC, MODEL or DST argument, or a repo id given for one,
// that is malformed: the caller's mistake (the command line's usage error),
// never something read from storage or the Hub.
var ErrSpec = errors.New("invalid model argument")

// Options configure Resolve.
type Options struct {
	// CacheDir is the Hugging Face cache; "" means hubclient.CacheDirFromEnv().
	CacheDir string
	// Hub, when set, fetches a repo id from the Hub into CacheDir (with
	// Download; Download.Offline reads the cache alone). When nil, a repo id
	// is looked up in the cache, offline.
	Hub      *hubclient.Client
	Download hubclient.DownloadOptions
	// Revision is the revision of a repo id or mirror URL that names none
	// (an explicit @rev in the spec takes precedence, except for a repo id
	// fetched from the Hub, where Revision overrides it as --revision does).
	Revision string
	// RepoID names the repo: a directory's (default DefaultRepoID), or the
	// repo of a mirror root URL given without '#org/name'.
	RepoID string
	// ModelCache, when set, keeps the files of mirror revisions read by
	// Local under ModelCache/<store>/models--org--name/<commit> for reuse;
	// otherwise they go to a temporary directory (in TempDir) that Close
	// removes.
	ModelCache string
	TempDir    string
	// Open opens mirror roots for reading (nil: storage.Open).
	Open mirror.StoreOpener
	// Materialize configures reads from storage.
	Materialize mirror.MaterializeOptions
}

// Source is a resolved SRC/MODEL: its files and where they came from.
type Source struct {
	// Spec is the argument as given; errors name it.
	Spec string
	Kind Kind
	// Repo is the repo id it is recorded under: the source's own, or the
	// default of a directory.
	Repo string
	// Revision is the revision the spec names ("" when it names none: a
	// directory, a snapshot directory).
	Revision string
	// Commit is the commit id of a cache, Hub or mirror source; "" for a
	// directory (the mirror derives one from the content).
	Commit string
	// Refs are the cache's refs that name Commit (KindCache), "main" first.
	Refs []string
	// Store is the mirror root of a KindMirror source.
	Store string
	// Variant is set when a mirror revision is itself a variant.
	Variant *mirror.Variant
	// Path is the directory or file on disk; for a mirror revision, "" until
	// Local copies it.
	Path string
	// Endpoint, Include and Exclude record a download from the Hub.
	Endpoint         string
	Include, Exclude []string
	// Downloaded is the bytes fetched from the Hub by Resolve.
	Downloaded int64

	opts     Options
	snap     *CacheSnapshot
	files    []mirror.PushFile
	store    storage.Store
	manifest *mirror.Manifest
	remove   string
}

// Resolve turns spec into a Source:
//
//   - an s3:// or file:// URL is a revision of a mirror (mirror.ModelURL;
//     a mirror root with opts.RepoID names that repo);
//   - an existing directory is a snapshot of the Hugging Face cache when it
//     is laid out as one (.../models--org--name/snapshots/<commit>), else a
//     model directory; an existing file is a weight file;
//   - otherwise org/name[@rev] is a repo id: fetched from the Hub when
//     opts.Hub is set, else looked up in the Hugging Face cache offline.
//
// The caller closes the Source.
func Resolve(ctx context.Context, spec string, opts Options) (*Source, error) {
	if spec == "" {
		return nil, fmt.Errorf("source: empty model argument: %w", ErrSpec)
	}
	if opts.CacheDir == "" {
		opts.CacheDir = opts.Download.CacheDir
	}
	if opts.CacheDir == "" {
		opts.CacheDir = hubclient.CacheDirFromEnv()
	}
	if opts.RepoID != "" {
		if err := mirror.ValidateRepoID(opts.RepoID); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSpec, err)
		}
	}
	if storage.IsURL(spec) {
		return resolveMirror(ctx, spec, opts)
	}
	st, err := os.Stat(spec)
	switch {
	case err == nil && st.IsDir():
		return resolveDir(spec, opts)
	case err == nil:
		repo := opts.RepoID
		if repo == "" {
			repo = DefaultRepoID(filepath.Dir(spec))
		}
		return &Source{Spec: spec, Kind: KindFile, Repo: repo, Path: spec, opts: opts}, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("source: %w", err)
	}
	return resolveRepo(ctx, spec, opts)
}

func resolveDir(spec string, opts Options) (*Source, error) {
	snap, ok, err := CacheSnapshotAt(spec)
	if ok {
		if err != nil {
			return nil, fmt.Errorf("source: %s: %w", spec, err)
		}
		return fromSnapshot(spec, snap, "", opts), nil
	}
	abs, err := filepath.Abs(spec)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	repo := opts.RepoID
	if repo == "" {
		repo = DefaultRepoID(abs)
	}
	return &Source{Spec: spec, Kind: KindDir, Repo: repo, Revision: opts.Revision, Path: abs, opts: opts}, nil
}

func fromSnapshot(spec string, snap *CacheSnapshot, rev string, opts Options) *Source {
	repo := opts.RepoID
	if repo == "" {
		repo = snap.Repo
	}
	return &Source{Spec: spec, Kind: KindCache, Repo: repo, Revision: rev, Commit: snap.Commit, Refs: snap.Refs,
		Path: snap.Dir, opts: opts, snap: snap}
}

// looksLikePath reports a spec written as a path, which is never a repo id.
func looksLikePath(spec string) bool {
	_, id := hubproto.SplitRepo(spec) // datasets/org/name is a repo id
	return strings.HasPrefix(spec, ".") || filepath.IsAbs(spec) || strings.HasPrefix(spec, "~") ||
		strings.Count(id, "/") > 1 && !strings.Contains(id, "@")
}

// RequireModel fails, wrapping ErrSpec, when the source is a dataset or a
// space: only models have weights to inspect, run, validate, quantize,
// convert or prune.
func (s *Source) RequireModel() error {
	if t, _ := hubproto.SplitRepo(s.Repo); t != hubproto.RepoTypeModel {
		return fmt.Errorf("source: %s is a %s, not a model: only models have weights to inspect, run, validate, quantize, convert or prune (pull, push, mirror, ls and serve take any repo): %w",
			s.Spec, t, ErrSpec)
	}
	return nil
}

func resolveRepo(ctx context.Context, spec string, opts Options) (*Source, error) {
	if dir, frag, ok := strings.Cut(spec, "#"); ok {
		hint := dir
		if abs, err := filepath.Abs(dir); err == nil {
			hint = abs
		}
		return nil, fmt.Errorf("source: %s: no such file or directory; a revision of a mirror is written as a URL: file://%s#%s: %w",
			spec, filepath.ToSlash(hint), frag, os.ErrNotExist)
	}
	repo, rev, err := hubclient.ParseRepoRef(spec)
	if err != nil || looksLikePath(spec) {
		if err != nil && !looksLikePath(spec) { // neither a path nor a repo id: the caller's mistake
			return nil, fmt.Errorf("source: %s: no such file or directory, and not a repo id org/name[@rev]: %w: %w", spec, ErrSpec, err)
		}
		return nil, fmt.Errorf("source: %s: %w; a model is a directory, a weight file, org/name[@rev] or a mirror URL", spec, os.ErrNotExist)
	}
	if opts.Hub != nil {
		return resolveHub(ctx, spec, repo, rev, opts)
	}
	if rev == "" {
		rev = opts.Revision
	}
	snap, err := FindCacheSnapshot(opts.CacheDir, repo, rev)
	if err != nil {
		if errors.Is(err, hubclient.ErrNotCached) {
			return nil, fmt.Errorf("source: %s is neither a file nor a directory, and the Hugging Face cache (%s) does not hold it; run `hubmirror pull %s` first: %w",
				spec, opts.CacheDir, spec, err)
		}
		return nil, fmt.Errorf("source: %s: %w", spec, err)
	}
	if rev == "" {
		rev = hubclient.DefaultRevision
	}
	return fromSnapshot(spec, snap, rev, opts), nil
}

func resolveHub(ctx context.Context, spec, repo, rev string, opts Options) (*Source, error) {
	if opts.Revision != "" {
		rev = opts.Revision
	}
	if rev == "" {
		rev = hubclient.DefaultRevision
	}
	do := opts.Download
	do.CacheDir = opts.CacheDir
	snap, err := opts.Hub.Download(ctx, repo, rev, do)
	if err != nil {
		return nil, err
	}
	s := &Source{Spec: spec, Kind: KindHub, Repo: repo, Revision: rev, Commit: snap.Commit, Path: snap.Dir,
		Endpoint: opts.Hub.Endpoint(), Include: do.Include, Exclude: do.Exclude, opts: opts,
		files: make([]mirror.PushFile, 0, len(snap.Files))}
	if opts.RepoID != "" {
		s.Repo = opts.RepoID
	}
	for _, f := range snap.Files {
		s.Downloaded += f.Received
		local := f.LocalPath
		pf := mirror.PushFile{Path: f.Path, Size: f.Size, SHA256: f.SHA256, LFS: f.LFS,
			Open: func(context.Context) (io.ReadCloser, error) { return os.Open(local) }}
		if !f.LFS {
			pf.GitOID = f.ETag
		}
		s.files = append(s.files, pf)
	}
	return s, nil
}

func resolveMirror(ctx context.Context, spec string, opts Options) (*Source, error) {
	open := opts.Open
	if open == nil {
		open = func(ctx context.Context, u string) (storage.Store, error) {
			return storage.Open(ctx, u, storage.OpenOptions{})
		}
	}
	u, ok, err := mirror.ParseModelURL(spec)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	case !ok && opts.RepoID != "":
		u = mirror.ModelURL{Store: spec, Repo: opts.RepoID}
	case !ok:
		if u, err = mirror.FindModelURL(ctx, spec, open); err != nil {
			return nil, err
		}
	}
	if u.Revision == "" {
		u.Revision = opts.Revision
	}
	s, err := open(ctx, u.Store)
	if err != nil {
		return nil, err
	}
	m, err := mirror.Resolve(ctx, s, u.Repo, u.Revision)
	if err != nil {
		s.Close()
		return nil, err
	}
	src := &Source{Spec: spec, Kind: KindMirror, Repo: u.Repo, Revision: u.Revision, Commit: m.Commit, Store: u.Store,
		Variant: m.Variant, opts: opts, store: s, manifest: m}
	if src.Revision == "" {
		src.Revision = hubclient.DefaultRevision
	}
	if opts.RepoID != "" {
		src.Repo = opts.RepoID
	}
	return src, nil
}

// Label names the source in messages and reports: the spec as given.
func (s *Source) Label() string { return s.Spec }

// Files lists the files to push: a mirror revision's blobs (copied from
// store to store), a Hub download's or cache snapshot's files with what the
// Hub said of them, a directory's files.
func (s *Source) Files() ([]mirror.PushFile, error) {
	if s.files != nil {
		return s.files, nil
	}
	var err error
	switch s.Kind {
	case KindMirror:
		s.files = mirror.ManifestFiles(s.store, s.manifest)
	case KindCache:
		s.files, err = s.snap.Files()
	case KindDir:
		s.files, err = mirror.DirFiles(s.Path, nil)
	case KindFile:
		err = fmt.Errorf("source: %s is a file; a repo is pushed from a model directory, a cached snapshot, a repo id or a mirror URL: %w",
			s.Spec, ErrRefused)
	default:
		err = fmt.Errorf("source: %s: no files", s.Spec)
	}
	return s.files, err
}

// Local returns the source's directory or file on disk; a mirror revision
// is first copied (verified) into a temporary directory, or under
// Options.ModelCache.
func (s *Source) Local(ctx context.Context) (string, error) {
	return s.local(ctx, nil)
}

// local is Local; only, when set, selects the files of a mirror revision
// to copy (the directory then holds those alone, and a later Local
// completes it).
func (s *Source) local(ctx context.Context, only func(path string) bool) (string, error) {
	if s.Path != "" {
		return s.Path, nil
	}
	if s.Kind != KindMirror {
		return "", fmt.Errorf("source: %s has no local copy", s.Spec)
	}
	var dir string
	switch {
	case s.opts.ModelCache != "":
		sum := sha256.Sum256([]byte(s.store.Location()))
		dir = filepath.Join(s.opts.ModelCache, hex.EncodeToString(sum[:8]), hubclient.RepoFolderName(s.manifest.Repo), s.Commit)
	case s.remove != "": // a partial copy made before
		dir = s.remove
	default:
		tmp, err := os.MkdirTemp(s.opts.TempDir, "hubmirror-model-*")
		if err != nil {
			return "", fmt.Errorf("source: %w", err)
		}
		dir, s.remove = tmp, tmp
	}
	mo := s.opts.Materialize
	mo.Only = only
	// By commit: the revision could move between Resolve and the read.
	if _, err := mirror.Materialize(ctx, s.store, s.manifest.Repo, s.Commit, dir, mo); err != nil {
		s.dropCopy()
		if err = nameCopy(err, dir, s.Spec); !strings.Contains(err.Error(), s.Spec) {
			err = fmt.Errorf("%s: %w", s.Spec, err)
		}
		return "", err
	}
	if only == nil {
		s.Path = dir
	}
	return dir, nil
}

func (s *Source) dropCopy() error {
	if s.remove == "" {
		return nil
	}
	err := os.RemoveAll(s.remove)
	s.remove = ""
	return err
}

// Close releases the source: a mirror's store, a temporary local copy.
func (s *Source) Close() error {
	err := s.dropCopy()
	if s.store != nil {
		if cerr := s.store.Close(); err == nil {
			err = cerr
		}
		s.store = nil
	}
	return err
}

// Record is the provenance recorded in the manifest of a push of s.
func (s *Source) Record() mirror.Source {
	switch s.Kind {
	case KindHub:
		return mirror.Source{Kind: "hub", Location: s.Endpoint + "/" + s.Repo, Revision: s.Revision, Include: s.Include, Exclude: s.Exclude}
	case KindMirror:
		u := mirror.ModelURL{Store: s.Store, Repo: s.manifest.Repo, Revision: s.Revision}
		return mirror.Source{Kind: "mirror", Location: u.String(), Revision: s.Revision}
	case KindCache:
		return mirror.Source{Kind: "cache", Location: s.Path, Revision: s.Revision}
	}
	return mirror.Source{Kind: "dir", Location: s.Path, Revision: s.Revision}
}

// maxNameLength bounds the name part of a directory's repo id: "local/"
// and the name fit mirror.MaxRepoIDLength.
const maxNameLength = mirror.MaxRepoIDLength - len("local/")

// DefaultRepoID is the repo id of a model directory pushed without one:
// local/<the directory's name>, made a valid repo id (Sanitize). The
// "local/" namespace keeps a directory received on disk apart from any repo
// mirrored from the Hub, and every directory name gets a valid id.
func DefaultRepoID(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return "local/" + Sanitize(filepath.Base(filepath.Clean(abs)))
}

// Sanitize makes a directory name usable as the name part of a repo id
// (mirror.ValidateRepoID): other characters become '-', runs of '-' or '.'
// collapse to one, and none starts or ends it.
func Sanitize(name string) string {
	var b strings.Builder
	var last byte
	for _, r := range name {
		c := byte('-')
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' {
			c = byte(r)
		}
		if (c == '-' || c == '.') && c == last {
			continue
		}
		b.WriteByte(c)
		last = c
	}
	s := strings.Trim(b.String(), "-.")
	if len(s) > maxNameLength {
		s = strings.Trim(s[:maxNameLength], "-.")
	}
	if s == "" {
		s = "model"
	}
	return s
}

// RepoSpec reports whether spec names a repo id, org/name[@rev], rather than
// a mirror URL or a path that exists; it does not check that the repo
// exists anywhere.
func RepoSpec(spec string) (repo, rev string, ok bool) {
	if spec == "" || storage.IsURL(spec) || looksLikePath(spec) {
		return "", "", false
	}
	if _, err := os.Stat(spec); err == nil {
		return "", "", false
	}
	repo, rev, err := hubclient.ParseRepoRef(spec)
	if err != nil {
		return "", "", false
	}
	return repo, rev, true
}
