package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/source"
	"github.com/hubmirror/hubmirror/storage"
)

func init() {
	register(&cli.Command{
		Name:      "push",
		Usage:     "copy a model directory, a Hugging Face cache snapshot or a revision of another mirror into a mirror in storage",
		ArgsUsage: "SRC URL",
		Description: `Copies SRC into the mirror at URL (a directory, file:///path or s3://bucket/prefix)
as one commit of a repo: blobs by sha256 (only those not already there), then the
manifest, then the ref (--revision, default main). Every blob is verified while it
uploads. A second push of the same content uploads nothing; an interrupted push
leaves no manifest, and running it again completes it.

SRC is one of:
  - a model directory (repo id: --repo-id, default local/<directory name>; commit id
    derived from the content; weight files must parse unless --allow-unparsed);
  - a repo id ORG/NAME[@REV] in the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub or
    --cache-dir; read offline), or a snapshot directory of that cache
    (.../models--ORG--NAME/snapshots/COMMIT): pushed as the Hub's commit, with the
    cache's knowledge of which files are LFS files, under --revision, else the
    revision REV (none for a commit id), else the cache's ref naming the commit (else
    none: the commit is reachable by its id);
  - a revision of another mirror, STORE#ORG/NAME[@REV] or STORE/ORG/NAME[@REV]
    (e.g. file:///srv/mirror#org/model@int8), or STORE with --repo-id and --revision:
    copied as the same commit.
--variant NAME --of REV --report FILE pushes SRC as a variant (a converted or
quantized model) of revision REV, with its validation report, as revision NAME.

To mirror a repo straight from the Hub without a local copy: hubmirror pull REPO --to URL.

Environment for s3:// URLs: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_REGION,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, or the credential
chain (~/.aws/credentials, IAM).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "repo-id", Usage: "repo id `ORG/NAME` in the mirror (default: local/<directory name>, or the source's repo)"},
			&cli.StringFlag{Name: "repo", Hidden: true, Usage: "the former name of --repo-id"},
			&cli.StringFlag{Name: "cache-dir", Usage: "Hugging Face cache for a repo id SRC (default $HF_HUB_CACHE or $HF_HOME/hub)"},
			&cli.StringFlag{Name: "revision", Usage: "revision name to set (default main); with a mirror URL as SRC, also the revision copied"},
			&cli.StringFlag{Name: "commit", Usage: "commit id to record (40 hex; default: derived from the content)"},
			&cli.StringFlag{Name: "variant", Usage: "push as the variant `NAME` (e.g. int8) of --of"},
			&cli.StringFlag{Name: "of", Usage: "the revision a variant was derived from (default main)"},
			&cli.StringFlag{Name: "report", Usage: "the variant's validation report `FILE` (JSON; stored as validation.json)"},
			&cli.IntFlag{Name: "workers", Value: 4, Usage: "files hashed and uploaded at once"},
			&cli.IntFlag{Name: "jobs", Hidden: true, Usage: "the former name of --workers"},
			&cli.BoolFlag{Name: "allow-unparsed", Usage: "push weight files that do not parse (truncated, or a format hubmirror does not read) as opaque files"},
			&cli.StringFlag{Name: "part-size", Value: "16MiB", Usage: "S3 multipart part size, 5MiB to 5GiB"},
			&cli.IntFlag{Name: "threads", Value: 4, Usage: "S3 parts uploaded in parallel per file"},
			&cli.DurationFlag{Name: "stale-uploads", Value: mirror.DefaultStaleUploadAge, Usage: "abort incomplete uploads of blobs older than this (left by a killed push); must exceed the longest upload of any push sharing the store"},
			repoTypeFlag,
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 2 {
				return usageErrorf("push takes SRC and URL, got %d arguments", len(args))
			}
			partSize, err := parseSize("part-size", c.String("part-size"), 5<<20, 5<<30) // S3's bounds
			if err != nil {
				return err
			}
			repo, err := aliasedString(c, "repo-id", "repo")
			if err != nil {
				return err
			}
			if repo != "" {
				if repo, err = qualifyRepo(c, "--repo-id", repo); err != nil {
					return err
				}
			}
			if args[0], err = qualifySpec(c, args[0]); err != nil {
				return err
			}
			workers, err := aliasedInt(c, "workers", "jobs")
			if err != nil {
				return err
			}
			if workers < 1 || c.Int("threads") < 1 {
				return usageErrorf("--workers and --threads must be at least 1")
			}
			if c.Duration("stale-uploads") <= 0 {
				return usageErrorf("--stale-uploads %v: want a positive duration", c.Duration("stale-uploads"))
			}
			opts := pushOptions{
				Src: args[0], URL: args[1], Repo: repo, Revision: c.String("revision"),
				Commit: c.String("commit"), Variant: c.String("variant"), Of: c.String("of"), Report: c.String("report"),
				Jobs: workers, PartSize: uint64(partSize), Threads: uint(c.Int("threads")), JSON: c.Bool("json"),
				CacheDir: hubSettingsFrom(c).CacheDir, AllowUnparsed: c.Bool("allow-unparsed"), Bars: showProgress(c),
				StaleUploadAge: c.Duration("stale-uploads"),
			}
			if opts.Variant == "" && (opts.Of != "" || opts.Report != "") {
				return usageErrorf("--of and --report go with --variant")
			}
			if opts.Variant != "" && opts.Report == "" && storage.IsURL(opts.Src) {
				return usageErrorf("--variant needs --report FILE")
			}
			return runPush(c.Context, opts, c.App.Writer, c.App.ErrWriter)
		},
	})
}

type pushOptions struct {
	Src, URL, Repo, Revision, Commit string
	CacheDir                         string
	Variant, Of, Report              string
	Jobs                             int
	PartSize                         uint64
	Threads                          uint
	JSON                             bool
	AllowUnparsed                    bool
	StaleUploadAge                   time.Duration
	// Bars: show a progress bar on stderr.
	Bars bool
}

type pushReport struct {
	*mirror.PushResult
	URL string `json:"url"`
}

func runPush(ctx context.Context, o pushOptions, stdout, stderr io.Writer) error {
	so := sourceOptions()
	if o.CacheDir != "" {
		so.CacheDir = o.CacheDir
	}
	so.RepoID = o.Repo
	if storage.IsURL(o.Src) && !strings.Contains(o.Src, "#") && o.Repo != "" {
		so.Revision = o.Revision // STORE --repo-id R --revision V names R@V of STORE
	}
	src, err := source.Resolve(ctx, o.Src, so)
	if err != nil {
		if errors.Is(err, mirror.ErrRepoNotFound) && storage.IsURL(o.Src) && !strings.Contains(o.Src, "#") {
			return usageErrorf("pushing from the mirror %s needs the repo: %s#org/name[@rev], or --repo-id (%v)", o.Src, o.Src, err)
		}
		return err
	}
	defer src.Close()
	// A dataset's or space's files are data, not weights to parse.
	popts := source.PushOptions{Revision: o.Revision, Commit: o.Commit, Jobs: o.Jobs, AllowUnparsed: o.AllowUnparsed || src.RequireModel() != nil,
		StaleUploadAge: o.StaleUploadAge}
	if o.Variant != "" {
		of := o.Of
		if of == "" {
			of = "main"
		}
		popts.Variant = &mirror.VariantSpec{Name: o.Variant, SourceRevision: of}
		if o.Report != "" {
			report, err := os.ReadFile(o.Report)
			if err != nil {
				return err
			}
			popts.Variant.Report = report
		}
	}
	// Before the mirror is opened, which creates its directory.
	if err := source.Check(src, o.URL, popts); err != nil {
		return err
	}
	files, err := src.Files()
	if err != nil {
		return err
	}

	dst, err := storage.Open(ctx, o.URL, storage.OpenOptions{Create: true, MaxConcurrent: 2 * o.Jobs,
		S3: storage.S3Config{PartSize: o.PartSize, Threads: o.Threads}})
	if err != nil {
		return err
	}
	defer dst.Close()

	var bars *pushBars
	if o.Bars {
		var total int64
		for _, f := range files {
			total += f.Size
		}
		bars = newPushBars(ctx, stderr, len(files), total)
		popts.Progress = bars
	}
	res, err := source.Push(ctx, dst, src, popts)
	if bars != nil {
		bars.finish(err == nil)
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("push interrupted; run the same command again to complete it: %w", err)
		}
		return err
	}
	if o.JSON {
		return writeJSON(stdout, pushReport{PushResult: res, URL: dst.Location()})
	}
	if res.Revision == "" {
		fmt.Fprintf(stdout, "pushed %s commit %s (no ref) to %s\n", res.Repo, res.Commit, dst.Location())
	} else {
		fmt.Fprintf(stdout, "pushed %s@%s (commit %s) to %s\n", res.Repo, res.Revision, res.Commit, dst.Location())
	}
	fmt.Fprintf(stdout, "  %d files, %s; uploaded %d (%s), already present %d (%s)\n", res.Files, formatBytes(res.Bytes),
		res.Uploaded, formatBytes(res.UploadedBytes), res.Present, formatBytes(res.PresentBytes))
	if !res.ManifestWritten && !res.RefUpdated {
		fmt.Fprintln(stdout, "  the mirror already had this commit; nothing written")
	}
	printAbortedUploads(stdout, res)
	return nil
}

// printAbortedUploads tells of the stale uploads a push aborted.
func printAbortedUploads(w io.Writer, res *mirror.PushResult) {
	if n := len(res.AbortedUploads); n > 0 {
		fmt.Fprintf(w, "  aborted %d incomplete uploads left by an interrupted push\n", n)
	}
}

// pushBars shows one bar for the bytes a push handles: uploaded, or found
// already in the mirror.
type pushBars struct {
	p    *mpb.Progress
	mu   sync.Mutex
	bar  *mpb.Bar
	sent map[string]int64
}

func newPushBars(ctx context.Context, w io.Writer, files int, total int64) *pushBars {
	p := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond))
	name := fmt.Sprintf("push (%d files)", files)
	bar := p.AddBar(total,
		mpb.PrependDecorators(decor.Name(name, decor.WC{C: decor.DindentRight | decor.DextraSpace, W: len(name) + 1})),
		mpb.AppendDecorators(
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace),
			decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace),
		))
	return &pushBars{p: p, bar: bar, sent: map[string]int64{}}
}

func (b *pushBars) Hashed(string, int64) {}

func (b *pushBars) Uploaded(path string, n int64) {
	b.mu.Lock()
	b.sent[path] += n
	b.mu.Unlock()
	b.bar.IncrInt64(n)
}

func (b *pushBars) FileDone(path string, size int64, uploaded bool) {
	b.mu.Lock()
	sent := b.sent[path]
	delete(b.sent, path)
	b.mu.Unlock()
	if rest := size - sent; rest > 0 {
		b.bar.IncrInt64(rest)
	}
}

func (b *pushBars) finish(ok bool) {
	if ok {
		b.bar.SetTotal(-1, true)
	} else {
		b.bar.Abort(false)
	}
	b.p.Wait()
}
