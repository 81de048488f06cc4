package mirror

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hubmirror/hubmirror/storage"
)

// ModelURL names one revision of a repo in a mirror in storage. It is
// written
//
//	STORE#org/name[@revision]       s3://bucket/prefix#org/name@int8, file:///srv/mirror#gpt2
//	STORE/org/name[@revision]       s3://bucket/prefix/org/name@int8
//
// where STORE is the storage URL of the mirror's root (s3:// or file://),
// and a dataset or space is written datasets/org/name, spaces/org/name.
// The first form is unambiguous and needs no storage access to parse. In
// the second, the repo is found by the layout: the last three path
// segments before '@' are the repo when they name a dataset or space the
// mirror at the rest holds, else the last two, else the last one; a path
// where two readings name a repo is refused as ambiguous. The revision (default main) is a branch, tag, variant or
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
	for _, n := range []int{3, 2, 1} { // 3: datasets/org/name, spaces/org/name
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
