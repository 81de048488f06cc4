package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/mirror"
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
func openModel(ctx context.Context, spec string) (*weights.Graph, *formats.Config, error) {
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
	cfg, err := formats.ParseConfig(g.Config)
	if err != nil {
		g.Close()
		return nil, nil, fmt.Errorf("%s: %w", spec, err)
	}
	return g, cfg, nil
}

// buildArtifact resolves SRC like every MODEL argument (a directory, a repo
// id in the Hugging Face cache, a mirror revision) and builds the artifact
// at dst from it.
func buildArtifact(ctx context.Context, src, dst, name string, pass artifact.Pass, opts artifact.Options) (*artifact.Result, error) {
	lm, err := mirror.ResolveModel(ctx, src, resolveModelOptions())
	if err != nil {
		return nil, err
	}
	defer lm.Close()
	opts.SourceLabel = src
	return artifact.Build(ctx, lm.Path, dst, name, pass, opts)
}
