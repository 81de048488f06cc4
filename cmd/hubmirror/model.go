package main

import (
	"context"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/source"
	"github.com/hubmirror/hubmirror/weights"
)

// sourceOptions are the options every command resolves MODEL/SRC with.
func sourceOptions() source.Options {
	return source.Options{
		CacheDir:   hubSettingsFrom(nil).CacheDir,
		ModelCache: os.Getenv("HUBMIRROR_MODEL_CACHE"),
	}
}

// openModel resolves and reads a MODEL argument (source.OpenGraph). The
// caller closes the Graph.
func openModel(ctx context.Context, spec string) (*weights.Graph, *arch.Config, error) {
	g, cfg, err := source.OpenGraph(ctx, spec, sourceOptions())
	return g, cfg, err
}

// buildArtifact builds the artifact of SRC at DST (source.Build).
func buildArtifact(ctx context.Context, src, dst, name string, pass artifact.Pass, opts artifact.Options) (*artifact.Result, error) {
	res, err := source.Build(ctx, src, dst, name, pass, opts, sourceOptions())
	return res, err
}

// modelHelp ends the help of every command that takes MODEL or SRC.
const modelHelp = `

MODEL/SRC: a model directory, a weight file, org/name[@rev] from the Hugging Face cache
(offline; $HF_HUB_CACHE, else $HF_HOME/hub), a snapshot directory of that cache, or a
mirror revision STORE#org/name[@rev] (file:///path or s3://bucket/prefix; S3 from
AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), copied verified
to a temporary directory (or kept under $HUBMIRROR_MODEL_CACHE).`

// dstHelp ends the help of the commands that write an artifact.
const dstHelp = `
DST: a directory, or a revision to create in a mirror, STORE#org/name@revision: built and
validated in a temporary directory, pushed only when it passed (a variant of SRC when SRC
is a revision of the same repo in the same mirror). A DST revision the push could not
take (a branch or tag for a variant, a variant for a revision of its own) is refused
before anything is built.`

// aliasedString reads the string flag name, or its hidden former name old;
// setting both is a usage error.
func aliasedString(c *cli.Context, name, old string) (string, error) {
	if c.IsSet(old) {
		if c.IsSet(name) {
			return "", usageErrorf("--%s and --%s are the same flag; give one", name, old)
		}
		return c.String(old), nil
	}
	return c.String(name), nil
}

// aliasedInt reads the int flag name, or its hidden former name old.
func aliasedInt(c *cli.Context, name, old string) (int, error) {
	if c.IsSet(old) {
		if c.IsSet(name) {
			return 0, usageErrorf("--%s and --%s are the same flag; give one", name, old)
		}
		return c.Int(old), nil
	}
	return c.Int(name), nil
}
