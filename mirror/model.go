package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/storage"
)

// ModelURL names one revision of a repo in a mirror in storage. It is
// written
//
//	STORE#org/name[@revision]       s3://bucket/prefix#org/name@int8, file:///srv/mirror#gpt2
//	STORE/org/name[@revision]       s3://bucket/prefix/org/name@int8
//
// where STORE is the storage URL of the mirror's root (s3:// or file://).
// The first form is unambiguous and needs no storage access to parse. In
// the second, the repo is found by the layout: the last two path segments
// before '@' are the repo when the mirror at the rest holds it, else the
// last one; a path where both readings name a repo is refused as
// ambiguous. The revision (default main) is a branch, tag, variant or
// commit id, and may contain '/' ("refs/pr/1").
type ModelURL struct {
	// Store is the storage URL of the mirror's root.
	Store    string
	Repo     string
	Revision string
}

// String returns the unambiguous form, STORE#repo[@revision].
func (u ModelURL) String() string {
	s := u.Store + "#" + u.Repo
	if u.Revision != "" {
		s += "@" + u.Revision
	}
	return s
}

// StoreOpener opens the store of a mirror root URL, for reading.
type StoreOpener func(ctx context.Context, rawURL string) (storage.Store, error)

// openForReading is the default StoreOpener.
func openForReading(ctx context.Context, rawURL string) (storage.Store, error) {
	return storage.Open(ctx, rawURL, storage.OpenOptions{})
}

// ParseModelURL parses the STORE#repo[@revision] form without storage
// access. ok is false when spec has no '#' (or is not an s3:// or file://
// URL).
func ParseModelURL(spec string) (u ModelURL, ok bool, err error) {
	if !storage.IsURL(spec) {
		return ModelURL{}, false, nil
	}
	store, frag, found := strings.Cut(spec, "#")
	if !found {
		return ModelURL{}, false, nil
	}
	repo, rev := TrimRepoRevision(frag)
	if err := ValidateRepoID(repo); err != nil {
		return ModelURL{}, true, fmt.Errorf("mirror: %s: %w", spec, err)
	}
	if rev == "" && strings.Contains(frag, "@") {
		return ModelURL{}, true, fmt.Errorf("mirror: %s: empty revision after '@': %w", spec, ErrInvalid)
	}
	return ModelURL{Store: store, Repo: repo, Revision: rev}, true, nil
}

// FindModelURL parses either form of ModelURL; for the path form it opens
// the candidate mirror roots with open (nil: storage.Open for reading) to
// find the repo. It fails with an error wrapping ErrRepoNotFound when no
// reading names a repo of a mirror.
func FindModelURL(ctx context.Context, spec string, open StoreOpener) (ModelURL, error) {
	if u, ok, err := ParseModelURL(spec); ok || err != nil {
		return u, err
	}
	if !storage.IsURL(spec) {
		return ModelURL{}, fmt.Errorf("mirror: %q is not an s3:// or file:// URL: %w", spec, ErrInvalid)
	}
	if open == nil {
		open = openForReading
	}
	scheme, rest, _ := strings.Cut(spec, "://")
	host, p, _ := strings.Cut(rest, "/")
	base, rev, hasRev := strings.Cut(p, "@")
	if hasRev && rev == "" {
		return ModelURL{}, fmt.Errorf("mirror: %s: empty revision after '@': %w", spec, ErrInvalid)
	}
	segs := strings.Split(strings.Trim(base, "/"), "/")
	var found []ModelURL
	var tried []string
	for _, n := range []int{2, 1} {
		if len(segs) < n {
			continue
		}
		repo := strings.Join(segs[len(segs)-n:], "/")
		if ValidateRepoID(repo) != nil {
			continue
		}
		root := scheme + "://" + host + "/" + strings.Join(segs[:len(segs)-n], "/")
		tried = append(tried, root+"#"+repo)
		s, err := open(ctx, root)
		if err != nil {
			continue // not a store (a missing directory, bucket)
		}
		ok, err := RepoExists(ctx, s, repo)
		s.Close()
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return ModelURL{}, fmt.Errorf("mirror: %s: %w", spec, err)
		}
		if ok {
			found = append(found, ModelURL{Store: root, Repo: repo, Revision: rev})
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		if len(tried) == 0 {
			return ModelURL{}, fmt.Errorf("mirror: %s: the path does not end in a repo id (write STORE#org/name[@rev]): %w", spec, ErrInvalid)
		}
		return ModelURL{}, fmt.Errorf("mirror: %s: no mirror holds the repo (tried %s): %w", spec, strings.Join(tried, ", "), ErrRepoNotFound)
	default:
		return ModelURL{}, fmt.Errorf("mirror: %s is ambiguous: both %s and %s exist; write one of them: %w", spec, found[0], found[1], ErrInvalid)
	}
}

// ResolveOptions configure ResolveModel.
type ResolveOptions struct {
	// CacheDir is the Hugging Face cache repo ids are looked up in; ""
	// means hubclient.CacheDirFromEnv() (HF_HUB_CACHE, HF_HOME).
	CacheDir string
	// ModelCache, when set, keeps models materialized from storage under
	// ModelCache/<store>/models--org--name/<commit> and reuses them (a
	// commit never changes). When empty, they go to a new temporary
	// directory (in TempDir, "" meaning os.TempDir()) that LocalModel.Close
	// removes.
	ModelCache string
	TempDir    string
	// Open opens mirror roots (nil: storage.Open for reading).
	Open StoreOpener
	// Materialize configures reads from storage.
	Materialize MaterializeOptions
}

// LocalModel is a model on local disk, ready for formats.Open.
type LocalModel struct {
	// Path is a model directory or a weight file.
	Path string
	// Kind says where it came from: "path" (given as a local path),
	// "cache" (a Hugging Face cache snapshot), "mirror" (materialized from
	// storage).
	Kind string
	// Repo, Revision and Commit are set for "cache" and "mirror".
	Repo, Revision, Commit string
	// Store is the mirror root of a "mirror" model.
	Store string

	remove string
}

// Close removes a temporary materialized copy; it is a no-op otherwise.
func (m *LocalModel) Close() error {
	if m.remove == "" {
		return nil
	}
	err := os.RemoveAll(m.remove)
	m.remove = ""
	return err
}

// ResolveModel turns a MODEL argument into a model on local disk:
//
//   - an s3:// or file:// URL is a revision in a mirror (ModelURL), whose
//     files are materialized (verified) into a directory;
//   - an existing path (directory or weight file) is used as it is;
//   - otherwise "org/name[@rev]" (or "name[@rev]") is looked up in the
//     Hugging Face cache, offline (FindCacheSnapshot): the snapshot
//     directory is used as it is.
//
// The caller closes the LocalModel when done with its files.
func ResolveModel(ctx context.Context, spec string, opts ResolveOptions) (*LocalModel, error) {
	if spec == "" {
		return nil, fmt.Errorf("mirror: empty model: %w", ErrInvalid)
	}
	if storage.IsURL(spec) {
		return resolveMirrorModel(ctx, spec, opts)
	}
	if _, err := os.Stat(spec); err == nil {
		return &LocalModel{Path: spec, Kind: "path"}, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	repo, rev := TrimRepoRevision(spec)
	if ValidateRepoID(repo) != nil || strings.HasPrefix(spec, ".") || filepath.IsAbs(spec) {
		return nil, fmt.Errorf("mirror: %s: no such file or directory", spec)
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		cacheDir = hubclient.CacheDirFromEnv()
	}
	snap, err := FindCacheSnapshot(cacheDir, repo, rev)
	if err != nil {
		if errors.Is(err, hubclient.ErrNotCached) {
			return nil, fmt.Errorf("mirror: %s is neither a file nor a directory, and the Hugging Face cache (%s) does not hold it; run `hubmirror pull %s` first: %w",
				spec, cacheDir, spec, err)
		}
		return nil, fmt.Errorf("mirror: %s: %w", spec, err)
	}
	if rev == "" {
		rev = hubclient.DefaultRevision
	}
	return &LocalModel{Path: snap.Dir, Kind: "cache", Repo: repo, Revision: rev, Commit: snap.Commit}, nil
}

func resolveMirrorModel(ctx context.Context, spec string, opts ResolveOptions) (*LocalModel, error) {
	open := opts.Open
	if open == nil {
		open = openForReading
	}
	u, err := FindModelURL(ctx, spec, open)
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, u.Store)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	m, err := Resolve(ctx, s, u.Repo, u.Revision)
	if err != nil {
		return nil, err
	}
	lm := &LocalModel{Kind: "mirror", Repo: u.Repo, Revision: u.Revision, Commit: m.Commit, Store: u.Store}
	if lm.Revision == "" {
		lm.Revision = "main"
	}
	if opts.ModelCache != "" {
		sum := sha256.Sum256([]byte(s.Location()))
		lm.Path = filepath.Join(opts.ModelCache, hex.EncodeToString(sum[:8]), repoKind+strings.ReplaceAll(u.Repo, "/", "--"), m.Commit)
	} else {
		tmp, err := os.MkdirTemp(opts.TempDir, "hubmirror-model-*")
		if err != nil {
			return nil, fmt.Errorf("mirror: %w", err)
		}
		lm.Path, lm.remove = tmp, tmp
	}
	// Materialize by commit: the revision could move between Resolve and
	// the read.
	if _, err := Materialize(ctx, s, u.Repo, m.Commit, lm.Path, opts.Materialize); err != nil {
		lm.Close()
		return nil, err
	}
	return lm, nil
}
