package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
	"github.com/hubmirror/hubmirror/weights"
)

// resolveModelOptions are the options every command resolves MODEL with.
func resolveModelOptions() mirror.ResolveOptions {
	return mirror.ResolveOptions{
		CacheDir:   hubclient.CacheDirFromEnv(),
		ModelCache: os.Getenv("HUBMIRROR_MODEL_CACHE"),
	}
}

// openModel resolves a MODEL argument of the command-line contract (a
// model directory, a weight file, org/name[@rev] in the Hugging Face cache,
// or a mirror revision s3://bucket/prefix#org/name[@rev]; see
// mirror.ResolveModel) and reads it. A model in storage is copied, verified,
// into a temporary directory, or under $HUBMIRROR_MODEL_CACHE for reuse. The caller closes
// the Graph, which also removes a temporary copy of a model read from
// storage. cfg is nil when the model has no config.json.
func openModel(ctx context.Context, spec string) (*weights.Graph, *arch.Config, error) {
	lm, err := mirror.ResolveModel(ctx, spec, resolveModelOptions())
	if err != nil {
		return nil, nil, err
	}
	g, err := formats.Open(lm.Path)
	if err != nil {
		lm.Close()
		return nil, nil, err
	}
	g.AddCloser(lm)
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

// buildArtifact resolves SRC like every MODEL argument (a directory, a repo
// id in the Hugging Face cache, a mirror revision) and builds the artifact
// at dst from it. A dst in storage, STORE#org/name@revision, is built in a
// temporary directory and pushed into that mirror once it passed: as a
// variant of SRC when SRC is a revision of the same repo in the same
// mirror, else as a revision of its own.
func buildArtifact(ctx context.Context, src, dst, name string, pass artifact.Pass, opts artifact.Options) (*artifact.Result, error) {
	var target mirror.ModelURL
	if storage.IsURL(dst) {
		u, ok, err := mirror.ParseModelURL(dst)
		if err != nil {
			return nil, usageErrorf("DST %s: %v", dst, err)
		}
		if !ok || u.Revision == "" {
			return nil, usageErrorf("DST %s: a DST in storage names the repo and the revision to create: STORE#org/name@revision", dst)
		}
		target = u
	}
	lm, err := mirror.ResolveModel(ctx, src, resolveModelOptions())
	if err != nil {
		return nil, err
	}
	defer lm.Close()
	opts.SourceLabel = src
	if target.Store == "" {
		return artifact.Build(ctx, lm.Path, dst, name, pass, opts)
	}
	tmp, err := os.MkdirTemp("", "hubmirror-artifact-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "out")
	res, err := artifact.Build(ctx, lm.Path, out, name, pass, opts)
	if res != nil {
		res.Dir = dst
	}
	if res == nil || !res.Published {
		return res, err
	}
	store, serr := storage.Open(ctx, target.Store, storage.OpenOptions{Create: true})
	if serr != nil {
		return res, serr
	}
	defer store.Close()
	files, serr := mirror.DirFiles(out, nil)
	if serr != nil {
		return res, serr
	}
	po := mirror.PushOptions{Revision: target.Revision, Source: mirror.Source{Kind: "dir", Location: src}}
	if lm.Kind == "mirror" && lm.Store == target.Store && lm.Repo == target.Repo {
		po.Revision = ""
		po.Variant = &mirror.VariantSpec{Name: target.Revision, SourceRevision: lm.Commit}
	}
	if _, serr := mirror.Push(ctx, store, target.Repo, files, po); serr != nil {
		res.Published = false
		return res, fmt.Errorf("pushing to %s: %w", dst, serr)
	}
	return res, err
}

// modelHelp ends the help of every command that takes MODEL or SRC.
const modelHelp = `

MODEL/SRC: a model directory, a weight file, org/name[@rev] from the Hugging Face cache
(offline; $HF_HUB_CACHE, else $HF_HOME/hub), or a mirror revision STORE#org/name[@rev]
(file:///path or s3://bucket/prefix; S3 from AWS_ENDPOINT_URL, AWS_REGION,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), copied verified to a temporary directory
(or kept under $HUBMIRROR_MODEL_CACHE).`

// dstHelp ends the help of the commands that write an artifact.
const dstHelp = `
DST: a directory, or a revision to create in a mirror, STORE#org/name@revision: built and
validated in a temporary directory, pushed only when it passed (a variant of SRC when SRC
is a revision of the same repo in the same mirror).`
