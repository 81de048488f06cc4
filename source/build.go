package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
	"github.com/hubmirror/hubmirror/weights"
)

// OpenGraph resolves spec and reads it (formats.Open). A mirror revision is
// copied first (Source.Local). Closing the Graph closes the Source, which
// removes a temporary copy. cfg is nil when the model has no config.json.
// Errors name the model as spec, never a temporary copy's path.
func OpenGraph(ctx context.Context, spec string, opts Options) (*weights.Graph, *arch.Config, error) {
	src, err := Resolve(ctx, spec, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := src.RequireModel(); err != nil {
		src.Close()
		return nil, nil, err
	}
	path, err := src.Local(ctx)
	if err != nil {
		src.Close()
		return nil, nil, err
	}
	g, err := formats.Open(path)
	if err != nil {
		src.Close()
		return nil, nil, src.named(err)
	}
	g.AddCloser(src)
	if g.Config == nil {
		return g, nil, nil
	}
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		g.Close()
		return nil, nil, fmt.Errorf("%s: %w", spec, err)
	}
	return g, cfg, nil
}

// namedError is an error whose message names the model by its spec instead
// of the temporary directory it was copied to.
type namedError struct {
	msg string
	err error
}

func (e *namedError) Error() string { return e.msg }
func (e *namedError) Unwrap() error { return e.err }

// named rewrites the local copy's path in err's message as the spec.
func (s *Source) named(err error) error {
	if err == nil || s.Kind != KindMirror || s.Path == "" {
		return err
	}
	return nameCopy(err, s.Path, s.Spec)
}

// nameCopy rewrites the path of a local copy in err's message as spec.
func nameCopy(err error, path, spec string) error {
	msg := err.Error()
	if !strings.Contains(msg, path) {
		return err
	}
	return &namedError{msg: strings.ReplaceAll(msg, path, spec), err: err}
}

// Target is where a build goes: a directory, or a revision to create in a
// mirror.
type Target struct {
	Dir string
	URL mirror.ModelURL
}

// ParseTarget parses a DST: STORE#org/name@revision for a revision of a
// mirror, else a directory.
func ParseTarget(dst string) (Target, error) {
	if !storage.IsURL(dst) {
		if dst == "" {
			return Target{}, fmt.Errorf("source: empty destination: %w", ErrSpec)
		}
		return Target{Dir: dst}, nil
	}
	u, ok, err := mirror.ParseModelURL(dst)
	if err != nil {
		return Target{}, fmt.Errorf("DST %s: %w: %w", dst, ErrSpec, err)
	}
	if !ok || u.Revision == "" {
		return Target{}, fmt.Errorf("DST %s: a DST in storage names the repo and the revision to create: STORE#org/name@revision: %w", dst, ErrSpec)
	}
	if mirror.IsCommitID(u.Revision) {
		return Target{}, fmt.Errorf("DST %s: a commit id cannot be created; name a revision: %w", dst, ErrSpec)
	}
	return Target{URL: u}, nil
}

// CheckRef refuses (ErrRefused) to point the ref rev of repo in s at a new
// commit that is a variant (variant true) when rev is a branch or tag, or
// at an ordinary commit when rev is a variant: the push would write its
// blobs and manifest and then fail. Nothing there is fine.
func CheckRef(ctx context.Context, s storage.Store, repo, rev string, variant bool) error {
	m, err := mirror.Resolve(ctx, s, repo, rev)
	if errors.Is(err, mirror.ErrRevisionNotFound) || errors.Is(err, mirror.ErrRepoNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if variant && m.Variant == nil {
		return fmt.Errorf("source: %s@%s is a branch or tag of the mirror; a variant cannot replace it, name another revision: %w", repo, rev, ErrRefused)
	}
	if !variant && m.Variant != nil {
		return fmt.Errorf("source: %s@%s is a variant in the mirror; a revision of its own cannot replace it, name another revision: %w", repo, rev, ErrRefused)
	}
	return nil
}

// Build resolves srcSpec (any MODEL), applies pass and publishes the
// validated result at dst (ParseTarget): a directory, or a revision of a
// mirror, built in a temporary directory and pushed once it passed: as a
// variant of the source when the source is a revision of the same repo in
// the same mirror, else as a revision of its own. A DST revision the push
// could not take (CheckRef) is refused before anything is built.
func Build(ctx context.Context, srcSpec, dst, name string, pass artifact.Pass, ao artifact.Options, opts Options) (*artifact.Result, error) {
	target, err := ParseTarget(dst)
	if err != nil {
		return nil, err
	}
	src, err := Resolve(ctx, srcSpec, opts)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if err := src.RequireModel(); err != nil {
		return nil, err
	}
	ao.SourceLabel = srcSpec
	if target.Dir != "" {
		path, err := src.Local(ctx)
		if err != nil {
			return nil, err
		}
		res, err := artifact.Build(ctx, path, target.Dir, name, pass, ao)
		return res, src.named(err)
	}
	asVariant := src.Kind == KindMirror && src.Store == target.URL.Store && src.manifest.Repo == target.URL.Repo
	// The check reads the mirror as it is; a mirror not created yet has
	// nothing in the way.
	if existing, err := storage.Open(ctx, target.URL.Store, storage.OpenOptions{}); err == nil {
		err = CheckRef(ctx, existing, target.URL.Repo, target.URL.Revision, asVariant)
		existing.Close()
		if err != nil {
			return nil, err
		}
	}
	path, err := src.Local(ctx)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "hubmirror-artifact-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "out")
	res, err := artifact.Build(ctx, path, out, name, pass, ao)
	err = src.named(err)
	if res != nil {
		res.Dir = dst
	}
	if res == nil || !res.Published {
		return res, err
	}
	store, err := storage.Open(ctx, target.URL.Store, storage.OpenOptions{Create: true})
	if err != nil {
		res.Published = false
		return res, err
	}
	defer store.Close()
	po := PublishOptions{Source: mirror.Source{Kind: "dir", Location: srcSpec}}
	var perr error
	if asVariant {
		_, perr = PublishVariant(ctx, store, target.URL.Repo, target.URL.Revision, src.Commit, out, po)
	} else {
		_, perr = PublishRevision(ctx, store, target.URL.Repo, target.URL.Revision, out, po)
	}
	if perr != nil {
		res.Published = false
		return res, fmt.Errorf("pushing to %s: %w", dst, perr)
	}
	return res, err
}
