package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/mirror"
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
  - a model directory (repo id: --repo, default the directory's name; commit id
    derived from the content);
  - a repo id ORG/NAME[@REV] in the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub or
    --cache-dir; read offline), or a snapshot directory of that cache
    (.../models--ORG--NAME/snapshots/COMMIT): pushed as the Hub's commit, with the
    cache's knowledge of which files are LFS files, under the revision REV (else
    --revision, else the cache's ref naming the commit);
  - a revision of another mirror, STORE#ORG/NAME[@REV] or STORE/ORG/NAME[@REV]
    (e.g. file:///srv/mirror#org/model@int8), or STORE with --repo and --revision:
    copied as the same commit.
--variant NAME --of REV --report FILE pushes SRC as a variant (a converted or
quantized model) of revision REV, with its validation report, as revision NAME.

To mirror a repo straight from the Hub without a local copy: hubmirror pull REPO --to URL.

Environment for s3:// URLs: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_REGION,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, or the credential
chain (~/.aws/credentials, IAM).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "repo", Usage: "repo id `ORG/NAME` in the mirror (default: the directory's name, or the source's repo)"},
			&cli.StringFlag{Name: "cache-dir", Usage: "Hugging Face cache for a repo id SRC (default $HF_HUB_CACHE or $HF_HOME/hub)"},
			&cli.StringFlag{Name: "revision", Usage: "revision name to set (default main); with a mirror URL as SRC, also the revision copied"},
			&cli.StringFlag{Name: "commit", Usage: "commit id to record (40 hex; default: derived from the content)"},
			&cli.StringFlag{Name: "variant", Usage: "push as the variant `NAME` (e.g. int8) of --of"},
			&cli.StringFlag{Name: "of", Usage: "the revision a variant was derived from (default main)"},
			&cli.StringFlag{Name: "report", Usage: "the variant's validation report `FILE` (JSON; stored as validation.json)"},
			&cli.IntFlag{Name: "jobs", Value: 4, Usage: "files hashed and uploaded at once"},
			&cli.StringFlag{Name: "part-size", Value: "16MiB", Usage: "S3 multipart part size"},
			&cli.IntFlag{Name: "threads", Value: 4, Usage: "S3 parts uploaded in parallel per file"},
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 2 {
				return usageErrorf("push takes SRC and URL, got %d arguments", len(args))
			}
			partSize, err := pullParseSize(c.String("part-size"))
			if err != nil || partSize < 5<<20 {
				return usageErrorf("--part-size %q: want a size of at least 5MiB", c.String("part-size"))
			}
			if c.Int("jobs") < 1 || c.Int("threads") < 1 {
				return usageErrorf("--jobs and --threads must be at least 1")
			}
			opts := pushOptions{
				Src: args[0], URL: args[1], Repo: c.String("repo"), Revision: c.String("revision"),
				Commit: c.String("commit"), Variant: c.String("variant"), Of: c.String("of"), Report: c.String("report"),
				Jobs: c.Int("jobs"), PartSize: uint64(partSize), Threads: uint(c.Int("threads")), JSON: c.Bool("json"),
				CacheDir: c.String("cache-dir"),
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
}

type pushReport struct {
	*mirror.PushResult
	URL string `json:"url"`
}

func runPush(ctx context.Context, o pushOptions, stdout, stderr io.Writer) error {
	src, err := pushSource(ctx, &o)
	if err != nil {
		return err
	}
	if src.close != nil {
		defer src.close()
	}
	files, popts, repo := src.files, src.opts, src.repo
	if err := mirror.ValidateRepoID(repo); err != nil {
		return usageErrorf("%v", err)
	}
	if o.Commit != "" {
		popts.Commit = o.Commit
	}
	if o.Variant != "" {
		of := o.Of
		if of == "" {
			of = "main"
		}
		spec := &mirror.VariantSpec{Name: o.Variant, SourceRevision: of}
		if o.Report != "" {
			report, err := os.ReadFile(o.Report)
			if err != nil {
				return err
			}
			spec.Report = report
		}
		popts.Variant = spec
		popts.Revision, popts.NoRef = "", false
		if o.Revision != "" && o.Revision != o.Variant && !storage.IsURL(o.Src) {
			return usageErrorf("a variant is its own revision: drop --revision or make it %q", o.Variant)
		}
	}
	popts.Jobs = o.Jobs

	dst, err := storage.Open(ctx, o.URL, storage.OpenOptions{Create: true, MaxConcurrent: 2 * o.Jobs,
		S3: storage.S3Config{PartSize: o.PartSize, Threads: o.Threads}})
	if err != nil {
		return err
	}
	defer dst.Close()

	var bars *pushBars
	if !o.JSON && os.Getenv("HF_HUB_DISABLE_PROGRESS_BARS") == "" {
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			var total int64
			for _, f := range files {
				total += f.Size
			}
			bars = newPushBars(ctx, stderr, len(files), total)
			popts.Progress = bars
		}
	}
	res, err := mirror.Push(ctx, dst, repo, files, popts)
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
	fmt.Fprintf(stdout, "  %d files, %s; uploaded %d (%s), already present %d (%s)\n", res.Files, pullHumanBytes(res.Bytes),
		res.Uploaded, pullHumanBytes(res.UploadedBytes), res.Present, pullHumanBytes(res.PresentBytes))
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

// pushSrc is what a push copies: the files, the repo and how to record them.
type pushSrc struct {
	repo  string
	files []mirror.PushFile
	opts  mirror.PushOptions
	close func()
}

// pushSource resolves SRC: the revision of another mirror a storage URL
// names, a Hugging Face cache snapshot (its directory, or a repo id
// org/name[@rev] looked up in the cache offline), or a model directory.
func pushSource(ctx context.Context, o *pushOptions) (*pushSrc, error) {
	if storage.IsURL(o.Src) {
		return pushFromMirror(ctx, o)
	}
	st, statErr := os.Stat(o.Src)
	if statErr == nil && st.IsDir() {
		snap, ok, err := mirror.CacheSnapshotAt(o.Src)
		if ok {
			if err != nil {
				return nil, err
			}
			return pushFromCache(o, snap, "")
		}
		return pushFromDir(o)
	}
	if statErr == nil {
		return nil, usageErrorf("%s is a file; push takes a model directory, a cached snapshot, a repo id or a mirror URL", o.Src)
	}
	repo, rev := mirror.TrimRepoRevision(o.Src)
	if !errors.Is(statErr, os.ErrNotExist) || mirror.ValidateRepoID(repo) != nil || strings.HasPrefix(o.Src, ".") || filepath.IsAbs(o.Src) {
		return nil, statErr
	}
	cacheDir := o.CacheDir
	if cacheDir == "" {
		cacheDir = hubclient.CacheDirFromEnv()
	}
	snap, err := mirror.FindCacheSnapshot(cacheDir, repo, rev)
	if err != nil {
		if errors.Is(err, hubclient.ErrNotCached) {
			return nil, fmt.Errorf("%s is not a directory, and the Hugging Face cache (%s) does not hold it; pull it first (hubmirror pull %s), or pull it straight into the mirror (hubmirror pull %s --to %s): %w",
				o.Src, cacheDir, o.Src, o.Src, o.URL, err)
		}
		return nil, err
	}
	if rev == "" {
		rev = "main"
	}
	return pushFromCache(o, snap, rev)
}

// pushFromDir pushes a model directory under --repo or the directory's name.
func pushFromDir(o *pushOptions) (*pushSrc, error) {
	abs, err := filepath.Abs(o.Src)
	if err != nil {
		return nil, err
	}
	repo := o.Repo
	if repo == "" {
		repo = filepath.Base(abs)
		if mirror.ValidateRepoID(repo) != nil {
			return nil, usageErrorf("the directory name %q is not a repo id; name one with --repo ORG/NAME", repo)
		}
	}
	if err := mirror.ValidateRepoID(repo); err != nil {
		return nil, usageErrorf("%v", err)
	}
	files, err := mirror.DirFiles(abs, nil)
	if err != nil {
		return nil, err
	}
	return &pushSrc{repo: repo, files: files, opts: mirror.PushOptions{
		Revision: o.Revision, Commit: o.Commit, Source: mirror.Source{Kind: "dir", Location: abs},
	}}, nil
}

// pushFromCache pushes a cache snapshot under the Hub's commit id. The ref
// set is --revision, else the revision asked for (rev), else the cache's
// ref naming the commit.
func pushFromCache(o *pushOptions, snap *mirror.CacheSnapshot, rev string) (*pushSrc, error) {
	repo := o.Repo
	if repo == "" {
		repo = snap.Repo
	}
	if err := mirror.ValidateRepoID(repo); err != nil {
		return nil, usageErrorf("%v", err)
	}
	ref := o.Revision
	if ref == "" && rev != "" && !mirror.IsCommitID(rev) {
		ref = rev
	}
	if ref == "" && len(snap.Refs) > 0 {
		ref = snap.Refs[0]
	}
	if ref == "" && o.Variant == "" {
		return nil, usageErrorf("no ref of the cache names commit %s of %s; name the revision to set with --revision", snap.Commit, snap.Repo)
	}
	files, err := snap.Files()
	if err != nil {
		return nil, err
	}
	commit := snap.Commit
	if o.Commit != "" || o.Variant != "" {
		commit = o.Commit // a variant's commit is derived from its content
	}
	return &pushSrc{repo: repo, files: files, opts: mirror.PushOptions{
		Revision: ref, Commit: commit, Source: mirror.Source{Kind: "cache", Location: snap.Dir, Revision: ref},
	}}, nil
}

// pushFromMirror copies a revision of another mirror, named as a model URL
// (STORE#org/name[@rev], STORE/org/name[@rev]) or as the mirror's root with
// --repo and --revision.
func pushFromMirror(ctx context.Context, o *pushOptions) (*pushSrc, error) {
	var u mirror.ModelURL
	if parsed, ok, err := mirror.ParseModelURL(o.Src); err != nil {
		return nil, usageErrorf("%v", err)
	} else if ok {
		u = parsed
	} else if o.Repo != "" {
		u = mirror.ModelURL{Store: o.Src, Repo: o.Repo, Revision: o.Revision}
	} else {
		found, err := mirror.FindModelURL(ctx, o.Src, nil)
		if err != nil {
			if errors.Is(err, mirror.ErrRepoNotFound) || errors.Is(err, mirror.ErrInvalid) {
				return nil, usageErrorf("pushing from the mirror %s needs the repo: %s#org/name[@rev], or --repo (%v)", o.Src, o.Src, err)
			}
			return nil, err
		}
		u = found
	}
	repo := o.Repo
	if repo == "" {
		repo = u.Repo
	}
	if err := mirror.ValidateRepoID(repo); err != nil {
		return nil, usageErrorf("%v", err)
	}
	s, err := storage.Open(ctx, u.Store, storage.OpenOptions{})
	if err != nil {
		return nil, err
	}
	m, err := mirror.Resolve(ctx, s, u.Repo, u.Revision)
	if err != nil {
		s.Close()
		return nil, err
	}
	popts := mirror.PushOptions{Commit: m.Commit, Source: mirror.Source{Kind: "mirror", Location: u.String(), Revision: u.Revision}}
	switch {
	case o.Revision != "":
		popts.Revision = o.Revision
	case u.Revision != "" && !mirror.IsCommitID(u.Revision):
		popts.Revision = u.Revision
	case u.Revision != "":
		popts.NoRef = true // a commit id names no ref
	}
	if m.Variant != nil && o.Variant == "" {
		popts.Variant = &mirror.VariantSpec{Name: m.Variant.Name, SourceRevision: m.Variant.SourceCommit}
		popts.Commit, popts.NoRef = "", false
		if popts.Revision != m.Variant.Name {
			popts.Revision = ""
		}
	}
	if o.Commit != "" {
		popts.Commit = o.Commit
	}
	return &pushSrc{repo: repo, files: mirror.ManifestFiles(s, m), opts: popts, close: func() { s.Close() }}, nil
}
