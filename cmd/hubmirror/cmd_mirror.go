package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/hubproto"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/pipeline"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/source"
	"github.com/hubmirror/hubmirror/storage"
)

func init() {
	register(&cli.Command{
		Name:      "mirror",
		Usage:     "pull a repository, build validated variants, push everything into a mirror: the pipeline step",
		ArgsUsage: "REPO[@REVISION]|SRC  (or --catalog FILE)",
		Description: `Pulls REPO from the Hub into the Hugging Face cache (verified, resumable) or takes any
other SRC (a model directory received on disk, a snapshot directory of the Hugging Face
cache, a revision of another mirror STORE#org/name[@rev]), pushes it into the mirror at --to (s3://bucket/prefix,
file:///path or a directory), then builds each requested variant (--quantize int8,fp16,bf16;
--convert safetensors), validates it against the original with the native forward pass, and
pushes the ones that pass beside their source as revisions named after them ("int8"), each
with its validation.json. Clients read them with HF_ENDPOINT pointed at "hubmirror serve".

A rerun with nothing new downloads nothing, uploads nothing and rebuilds no variant the
mirror holds for the same source commit (--rebuild builds them again); a variant the
mirror holds is judged again by the thresholds in force. Exit codes: 0 success, 1 error, 2 usage error,
3 a variant failed validation; the error names the failed step.

--catalog FILE mirrors every repo a catalog lists, one per line:
REPO[@REV] [--repo-type model] [--quantize S[,S]] (# starts a comment; an entry's
--quantize replaces the command line's). Every entry is attempted; with --json
each gives one JSON line as it ends (line, entry, repo_type, passed, report,
error). The exit code is 0 only when every entry passed (3 when every failure
is a failed validation, else 1). --shard I/N takes the entries whose position
among the entries (from 0, comments and blank lines not counted) mod N is I,
I from 0 as Kubernetes' JOB_COMPLETION_INDEX: N machines with the same catalog
and I = 0..N-1 mirror all of it into one store with no other coordination.
--parallel K mirrors K entries at once.
A dataset or space (--repo-type dataset, or datasets/ORG/NAME) is mirrored like a model,
without variants.

Environment: HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE;
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL for s3:// URLs.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "the mirror: s3://bucket/prefix, file:///path or a directory (required)"},
			&cli.StringFlag{Name: "revision", Usage: "branch, tag or commit of REPO (default main; or REPO@REVISION)"},
			&cli.StringFlag{Name: "catalog", Usage: "mirror every repo the catalog `FILE` lists (one REPO[@REV] [--repo-type T] [--quantize S] per line; - reads stdin)"},
			&cli.StringFlag{Name: "shard", Usage: "with --catalog: mirror only shard `I/N` (entries whose index mod N is I; I from 0)"},
			&cli.IntFlag{Name: "parallel", Value: 1, Usage: "with --catalog: entries mirrored at once"},
			repoTypeFlag,
			&cli.StringSliceFlag{Name: "quantize", Usage: "variants to build: int8, w8a8, w4a16 (groups of 128), fp8, fp16, bf16 (comma-separated or repeated)"},
			&cli.IntFlag{Name: "group-size", Usage: "int8: inputs per scale (0: per output channel); needs --quantize int8"},
			&cli.StringSliceFlag{Name: "convert", Usage: "conversion variants: safetensors (from pickled weights)"},
			&cli.StringSliceFlag{Name: "include", Usage: "only pull files matching this glob (repeatable)"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "do not pull files matching this glob (repeatable)"},
			&cli.StringFlag{Name: "repo-id", Usage: "repo id `ORG/NAME` in the mirror of a SRC that is not a Hub repo (default local/<dir name> for a directory, else the source's)"},
			&cli.BoolFlag{Name: "rebuild", Usage: "build, validate and push every variant again, even one the mirror holds for the source commit"},
			&cli.BoolFlag{Name: "allow-unparsed", Usage: "push a directory whose weight files do not parse (as opaque files)"},
			&cli.IntFlag{Name: "workers", Value: 4, Usage: "files pushed at once"},
			&cli.StringFlag{Name: "cache-dir", Usage: "Hugging Face cache (default $HF_HUB_CACHE or $HF_HOME/hub)"},
			&cli.StringFlag{Name: "endpoint", Usage: "Hub URL (default $HF_ENDPOINT or https://huggingface.co)"},
			&cli.StringFlag{Name: "token", Usage: "Hub token (default $HF_TOKEN or $HF_HOME/token)"},
			&cli.BoolFlag{Name: "offline", Usage: "take REPO from the cache alone (also HF_HUB_OFFLINE=1)"},
			speedLimitFlag, speedTimeFlag,
		}, passFlags()...),
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			cat, err := catalogFlags(c, args)
			if err != nil {
				return err
			}
			if cat == nil && len(args) != 1 {
				return usageErrorf("mirror takes one REPO[@REVISION] or DIR, got %d arguments", len(args))
			}
			if c.String("to") == "" {
				return usageErrorf("mirror needs --to URL (s3://bucket/prefix, file:///path or a directory)")
			}
			// Every flag is checked before anything is pulled or pushed.
			repoID := c.String("repo-id")
			if repoID != "" {
				if err := mirror.ValidateRepoID(repoID); err != nil {
					return usageErrorf("--repo-id: %v", err)
				}
				var err error
				if repoID, err = qualifyRepo(c, "--repo-id", repoID); err != nil {
					return err
				}
			}
			if cat == nil {
				if args[0], err = qualifySpec(c, args[0]); err != nil {
					return err
				}
			}
			if c.Int("workers") < 1 {
				return usageErrorf("--workers %d: want at least 1", c.Int("workers"))
			}
			opts := pipeline.Options{Revision: c.String("revision"), RepoID: repoID,
				Rebuild: c.Bool("rebuild"), AllowUnparsed: c.Bool("allow-unparsed"), Workers: c.Int("workers")}
			if cat == nil {
				opts.Source = args[0]
			}
			var schemes []quantize.Scheme
			for _, s := range splitList(c.StringSlice("quantize")) {
				scheme, err := quantize.ParseScheme(s)
				if err != nil {
					return usageErrorf("--quantize: %v", err)
				}
				schemes = append(schemes, scheme)
			}
			if err := checkGroupSize(c.Int("group-size"), schemes...); err != nil {
				return err
			}
			for _, scheme := range schemes {
				gs := 0
				switch scheme {
				case quantize.Int8:
					gs = c.Int("group-size")
				case quantize.W4A16:
					gs = quantize.DefaultInt4GroupSize
				}
				v, err := pipeline.QuantizeVariant(quantize.Options{Scheme: scheme, GroupSize: gs})
				if err != nil {
					return usageErrorf("--quantize: %v", err)
				}
				opts.Variants = append(opts.Variants, v)
			}
			for _, s := range splitList(c.StringSlice("convert")) {
				v, err := pipeline.ConvertVariant(s)
				if err != nil {
					return usageErrorf("%v", err)
				}
				opts.Variants = append(opts.Variants, v)
			}
			if repo, _, ok := source.RepoSpec(opts.Source); ok && len(opts.Variants) > 0 {
				if t, _ := hubproto.SplitRepo(repo); t != hubproto.RepoTypeModel {
					return usageErrorf("%s is a %s: --quantize and --convert build variants of models only", repo, t)
				}
			}
			build, thresholds, err := buildSettings(c)
			if err != nil {
				return err
			}
			build.Progress = nil
			opts.Build, opts.Thresholds = build, thresholds
			hub := hubSettingsFrom(c)
			if hub.Client.SpeedLimit, hub.Client.SpeedTime, err = speedLimit(c); err != nil {
				return err
			}
			opts.Download.CacheDir = hub.CacheDir
			opts.Download.Include, opts.Download.Exclude = c.StringSlice("include"), c.StringSlice("exclude")
			opts.Download.Offline = hub.Offline
			if opts.Hub, err = hub.newHubClient(); err != nil {
				return err
			}
			if showProgress(c) {
				w := c.App.ErrWriter
				opts.Progress = func(step, detail string) { fmt.Fprintf(w, "%s: %s\n", step, detail) }
			}
			if cat != nil {
				cat.Base = opts
				return runMirrorCatalog(c.Context, c.String("to"), cat, c.Bool("json"), c.App.Writer)
			}
			return runMirror(c.Context, c.String("to"), opts, c.Bool("json"), c.App.Writer)
		},
	})
}

// splitList splits comma-separated flag values: --quantize int8,fp16.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func runMirror(ctx context.Context, to string, opts pipeline.Options, asJSON bool, w io.Writer) error {
	// What Push would refuse in a source on disk (a mirror inside it, no
	// files, weights that do not parse) is refused before the mirror is
	// created.
	if src, err := source.Resolve(ctx, opts.Source, source.Options{CacheDir: opts.Download.CacheDir}); err == nil {
		err = source.Check(src, to, source.PushOptions{AllowUnparsed: opts.AllowUnparsed || src.RequireModel() != nil})
		src.Close()
		if err != nil {
			return err
		}
	}
	store, err := storage.Open(ctx, to, storage.OpenOptions{Create: true})
	if err != nil {
		return fmt.Errorf("step open %s: %w", to, err)
	}
	rep, err := pipeline.Run(ctx, store, opts)
	if rep != nil {
		if asJSON {
			if jerr := writeJSON(w, rep); jerr != nil {
				return jerr
			}
		} else {
			printMirror(w, to, rep)
		}
	}
	return err
}

func printMirror(w io.Writer, to string, r *pipeline.Report) {
	s := r.Source
	fmt.Fprintf(w, "source:   %s@%s (commit %s)\n", s.Repo, s.Revision, s.Commit)
	fmt.Fprintf(w, "files:    %d, %s; downloaded %s, uploaded %d files, %s\n", s.Files, formatBytes(s.Bytes),
		formatBytes(s.Downloaded), s.Uploaded, formatBytes(s.UploadedBytes))
	for _, v := range r.Variants {
		if v.Validation != nil {
			if v.Status == "present" {
				fmt.Fprintf(w, "\nvariant %s (already in the mirror; its report from when it was built):\n", v.Name)
			} else {
				fmt.Fprintf(w, "\nvariant %s:\n", v.Name)
			}
			printValidation(w, validateOptions{Reference: s.Repo + "@" + s.Revision, Candidate: s.Repo + "@" + v.Name}, v.Validation)
		}
	}
	if len(r.Variants) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "variant\tstatus\tvalidation\tuploaded\tnote")
		for _, v := range r.Variants {
			verdict := "-"
			switch {
			case v.Validation != nil && v.Validation.Passed:
				verdict = "passed (" + string(v.Validation.Kind) + ")"
			case v.Validation != nil:
				verdict = "FAILED"
			case v.Status == "present":
				verdict = "passed earlier"
			}
			note := v.Reason
			if v.Error != "" {
				note = v.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, v.Status, verdict, formatBytes(v.UploadedBytes), note)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "time:     %.1fs\n", r.Seconds)
	if r.Passed {
		fmt.Fprintf(w, "mirrored %s@%s into %s\n", s.Repo, s.Revision, to)
	} else {
		fmt.Fprintf(w, "FAILED at step %s\n", r.FailedStep)
	}
}
