package mirror

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hubmirror/hubmirror/storage"
)

// RemoveResult says what Remove dropped.
type RemoveResult struct {
	Repo string `json:"repo"`
	// Refs are the refs deleted.
	Refs []string `json:"refs"`
	// Manifests are the commits whose manifests were deleted.
	Manifests []string `json:"manifests"`
	// Kept are the commits of deleted refs whose manifests stay because a
	// remaining ref still reaches them.
	Kept []string `json:"kept,omitempty"`
}

// Remove drops refs of repo and the manifests no ref reaches any more; it
// never deletes blobs (GC does, once no manifest lists them).
//
// With rev "", every ref and every manifest of the repo is deleted: the
// repo is gone. With a revision (a ref name, or "refs/heads/X" and the
// like), that ref is deleted, then the manifest of the commit it named
// unless a remaining ref reaches it. A ref reaches its commit and, for a
// variant, the variant's source commit: a variant keeps the commit it was
// derived from (its validation compared against it), so removing "main"
// while the variant "int8" derived from it exists drops the ref main but
// keeps its manifest; remove the variant too to drop it. Removing a
// variant never removes its source. Manifests no ref ever named (a commit
// pulled by its id) are removed only with the whole repo.
//
// Refs are deleted before manifests, so a ref never names a missing
// manifest. A push that points a ref at a commit while Remove deletes
// that commit's manifest can lose: do not remove what is being pushed.
func Remove(ctx context.Context, s storage.Store, repo, rev string) (*RemoveResult, error) {
	commits, refs, err := existingRepo(ctx, s, repo)
	if err != nil {
		return nil, err
	}
	res := &RemoveResult{Repo: repo, Refs: []string{}, Manifests: []string{}}
	if rev == "" {
		for _, name := range refs {
			if err := s.Delete(ctx, RefKey(repo, name)); err != nil {
				return res, err
			}
			res.Refs = append(res.Refs, name)
		}
		for _, c := range commits {
			if err := s.Delete(ctx, ManifestKey(repo, c)); err != nil {
				return res, err
			}
			res.Manifests = append(res.Manifests, c)
		}
		return res, nil
	}
	name, err := refName(ctx, s, repo, rev)
	if err != nil {
		return nil, err
	}
	commit, err := ReadRef(ctx, s, repo, name)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return nil, err
	}
	if err := s.Delete(ctx, RefKey(repo, name)); err != nil {
		return nil, err
	}
	res.Refs = append(res.Refs, name)
	if commit == "" {
		return res, nil
	}
	reached, err := reachable(ctx, s, repo)
	if err != nil {
		return res, err
	}
	if reached[commit] {
		res.Kept = append(res.Kept, commit)
		return res, nil
	}
	if err := s.Delete(ctx, ManifestKey(repo, commit)); err != nil {
		return res, err
	}
	res.Manifests = append(res.Manifests, commit)
	return res, nil
}

// refName returns the name of the ref rev names (rev itself, or rev
// without "refs/heads/" and the like), or ErrRevisionNotFound.
func refName(ctx context.Context, s storage.Store, repo, rev string) (string, error) {
	if IsCommitID(rev) {
		return "", fmt.Errorf("mirror: %s@%s: a commit id is not a ref; remove the refs that name it: %w", repo, rev, ErrInvalid)
	}
	names := []string{rev}
	for _, p := range refPrefixes {
		if short, ok := strings.CutPrefix(rev, p); ok {
			names = append(names, short)
		}
	}
	for _, n := range names {
		if ValidateRevision(n) != nil {
			continue
		}
		if _, err := s.Stat(ctx, RefKey(repo, n)); err == nil {
			return n, nil
		} else if !errors.Is(err, storage.ErrNotFound) {
			return "", err
		}
	}
	if err := ValidateRevision(rev); err != nil {
		return "", err
	}
	return "", fmt.Errorf("mirror: %s@%s: %w", repo, rev, ErrRevisionNotFound)
}

// reachable returns the commits of repo the refs reach: the commits they
// name and, for variants, their source commits. Refs that cannot be read
// reach nothing.
func reachable(ctx context.Context, s storage.Store, repo string) (map[string]bool, error) {
	_, refs, _, err := repoKeys(ctx, s, repo)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, name := range refs {
		c, err := ReadRef(ctx, s, repo, name)
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrRevisionNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[c] = true
		m, err := ReadManifest(ctx, s, repo, c)
		if err == nil && m.Variant != nil {
			out[m.Variant.SourceCommit] = true
		} else if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrRevisionNotFound) && !errors.Is(err, ErrRepoNotFound) {
			return nil, err
		}
	}
	return out, nil
}
