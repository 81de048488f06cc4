package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

func init() { register(pullCommand()) }

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "download a model, dataset or space repository into the Hugging Face cache (or a plain directory), or stream it into a mirror (--to)",
		ArgsUsage: "REPO[@REVISION]",
		Description: `Downloads the files of a model repository, verifies every byte (sha256 for LFS
files, git blob sha1 for the rest), and lays them out exactly as huggingface_hub
does, so Python tools find them. Large files download over several connections
in parallel byte ranges; an interrupted pull resumes where it stopped. A second
pull of the same revision downloads nothing. The snapshot path is the last line
of the output.

--to URL (s3://bucket/prefix, file:///path or a directory) streams the revision
from the Hub into that mirror instead, without a local copy: each file goes from
the Hub (a large one in byte ranges of 8 MiB, or --chunk-size, over up to
--connections connections, each resumed when it breaks, handed out in order;
up to connections+1 ranges in memory) through verification (by the Hub client,
then by storage before the blob becomes visible) into storage; only regular
(non-LFS) files not yet known to the mirror are held in memory while they are
hashed. The mirror records the Hub's commit id and sets the ref of the revision
asked for (none for a commit hash). Blobs already in the mirror are not
downloaded: a second pull --to of the same revision downloads and uploads
nothing; an interrupted one leaves no manifest, and running it again completes it.
The last line of the output is then the mirrored model, STORE#ORG/NAME@COMMIT, a
MODEL argument for inspect, forward and validate (see hubmirror serve to serve it).
--workers files stream at once (default 4 with --to: on S3 each large file holds
up to 4 parts of 16 MiB in memory); --include/--exclude mirror only some files (the
commit then holds only those, for good).

A dataset or space is pulled with --repo-type dataset (space), or named
datasets/ORG/NAME (spaces/ORG/NAME) as the Hub's URLs write it; the cache folder is
then datasets--ORG--NAME (spaces--ORG--NAME), as huggingface_hub names it, and in a
mirror the types are kept apart.

Environment: HF_ENDPOINT, HF_TOKEN (or $HF_HOME/token), HF_HOME, HF_HUB_CACHE,
HF_HUB_OFFLINE, HF_HUB_DISABLE_PROGRESS_BARS.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "revision", Usage: "branch, tag or commit (default main; or REPO@REVISION)"},
			repoTypeFlag,
			&cli.StringSliceFlag{Name: "include", Usage: "only files matching this glob (fnmatch, like allow_patterns; repeatable)"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "skip files matching this glob (like ignore_patterns; repeatable)"},
			&cli.StringFlag{Name: "cache-dir", Usage: "Hugging Face cache directory (default $HF_HUB_CACHE or $HF_HOME/hub)"},
			&cli.StringFlag{Name: "local-dir", Usage: "write the files to this plain directory instead of cache snapshots"},
			&cli.IntFlag{Name: "workers", Value: 8, Usage: "files downloaded at once"},
			&cli.IntFlag{Name: "connections", Value: 8, Usage: "most connections (parallel byte ranges) per large file; starts with one, adds more while that speeds it up"},
			&cli.StringFlag{Name: "chunk-size", Value: "16MiB", Usage: "byte range size for large files, 1MiB to 1GiB (e.g. 16MiB, 64MB; KB, MB, GB are powers of 10)"},
			&cli.StringFlag{Name: "token", Usage: "Hub token (default $HF_TOKEN or $HF_HOME/token); sent to the endpoint host only"},
			&cli.StringFlag{Name: "endpoint", Usage: "Hub URL (default $HF_ENDPOINT or https://huggingface.co)"},
			&cli.BoolFlag{Name: "offline", Usage: "resolve from the cache alone, without network (also HF_HUB_OFFLINE=1)"},
			&cli.BoolFlag{Name: "verify", Usage: "re-hash files already in the cache instead of trusting their size"},
			&cli.BoolFlag{Name: "fsync", Usage: "sync every file to disk before it appears in the snapshot (slower; survives a machine crash)"},
			&cli.StringFlag{Name: "to", Usage: "stream the revision into the mirror at `URL` (s3://bucket/prefix, file:///path) instead of the cache"},
			speedLimitFlag, speedTimeFlag,
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			opts, err := pullOptionsFrom(c)
			if err != nil {
				return err
			}
			if opts.to != "" {
				return runPullTo(c.Context, opts, c.App.Writer, c.App.ErrWriter)
			}
			return runPull(c.Context, opts, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// pullOptions is everything pull needs, resolved from flags and environment.
type pullOptions struct {
	repoID, revision string
	client           hubclient.Options
	download         hubclient.DownloadOptions
	json             bool
	bars             bool
	// filtered: --include or --exclude was given.
	filtered bool
	// to is the mirror of pull --to; toJobs the files streamed at once;
	// toChunk the byte ranges they are fetched in (0: mirror.Pull's).
	to      string
	toJobs  int
	toChunk int64
}

func pullOptionsFrom(c *cli.Context) (*pullOptions, error) {
	args := c.Args().Slice() // flags after REPO are parsed by newApp
	if len(args) != 1 {
		return nil, usageErrorf("pull takes exactly one REPO[@REVISION] argument, got %d", len(args))
	}
	repoID, revision, err := hubclient.ParseRepoRef(args[0])
	if err != nil {
		return nil, err
	}
	if repoID, err = qualifyRepo(c, "REPO", repoID); err != nil {
		return nil, err
	}
	if r := c.String("revision"); r != "" {
		if strings.Contains(args[0], "@") && r != revision {
			return nil, usageErrorf("revision given twice: @%s and --revision %s", revision, r)
		}
		if err := hubclient.ValidateRevision(r); err != nil {
			return nil, fmt.Errorf("--revision: %w", err)
		}
		revision = r
	}
	chunk, err := parseSize("chunk-size", c.String("chunk-size"), minChunkSize, maxChunkSize)
	if err != nil {
		return nil, err
	}
	if c.Int("workers") < 1 || c.Int("connections") < 1 {
		return nil, usageErrorf("--workers and --connections must be at least 1")
	}
	hub := hubSettingsFrom(c)
	if hub.Client.SpeedLimit, hub.Client.SpeedTime, err = speedLimit(c); err != nil {
		return nil, err
	}
	o := &pullOptions{repoID: repoID, revision: revision, json: c.Bool("json"), to: c.String("to"), bars: showProgress(c),
		client: hub.Client, filtered: c.IsSet("include") || c.IsSet("exclude")}
	if o.to != "" {
		for _, f := range []string{"local-dir", "cache-dir", "offline", "verify", "fsync"} {
			if c.IsSet(f) {
				return nil, usageErrorf("--%s does not go with --to: pull --to streams from the Hub into storage without a local copy", f)
			}
		}
		o.toJobs = 4 // each large file holds up to 4 parts of 16 MiB in memory on S3
		if c.IsSet("workers") {
			o.toJobs = c.Int("workers")
		}
		if c.IsSet("chunk-size") {
			o.toChunk = chunk
		}
		if hub.Offline {
			return nil, usageErrorf("pull --to needs the Hub, and HF_HUB_OFFLINE is set; to mirror the cached snapshot, run hubmirror push %s %s", args[0], o.to)
		}
	}
	o.download = hubclient.DownloadOptions{
		CacheDir:       hub.CacheDir,
		LocalDir:       c.String("local-dir"),
		Include:        c.StringSlice("include"),
		Exclude:        c.StringSlice("exclude"),
		Workers:        c.Int("workers"),
		Connections:    c.Int("connections"),
		ChunkSize:      chunk,
		Offline:        hub.Offline,
		VerifyExisting: c.Bool("verify"),
		Fsync:          c.Bool("fsync"),
	}
	return o, nil
}

// The bounds of --chunk-size: below 1 MiB a large file costs a request per
// few bytes; above 1 GiB the ranges held in memory grow too large.
const (
	minChunkSize = 1 << 20
	maxChunkSize = 1 << 30
)

// pullFileJSON is one file in the --json output.
type pullFileJSON struct {
	Path       string  `json:"path"`
	Size       int64   `json:"size"`
	SHA256     string  `json:"sha256"`
	Downloaded int64   `json:"bytes_downloaded"`
	Resumed    int64   `json:"bytes_resumed"`
	Cached     bool    `json:"cached"`
	Seconds    float64 `json:"seconds"`
}

type pullJSON struct {
	Repo       string         `json:"repo"`
	Revision   string         `json:"revision"`
	Commit     string         `json:"commit"`
	Snapshot   string         `json:"snapshot"`
	Downloaded int64          `json:"bytes_downloaded"`
	Seconds    float64        `json:"seconds"`
	Files      []pullFileJSON `json:"files"`
}

func runPull(ctx context.Context, o *pullOptions, stdout, stderr io.Writer) error {
	client, err := hubSettings{Client: o.client}.newHubClient()
	if err != nil {
		return err
	}
	var bars *pullBars
	if o.bars {
		bars = newPullBars(ctx, stderr)
		o.download.Progress = bars
	} else {
		o.download.Progress = pullRetryLog{w: stderr}
	}
	start := time.Now()
	snap, err := client.Download(ctx, o.repoID, o.revision, o.download)
	if bars != nil {
		bars.finish(err == nil)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("pull interrupted; run the same command again to resume: %w", err)
		}
		return err
	}
	elapsed := time.Since(start)
	if snap.FromCache {
		fmt.Fprintf(stderr, "hubmirror: warning: the Hub could not be reached; using the complete snapshot in the cache\n")
	}
	var received, fetched int64
	var nFetched int
	for _, f := range snap.Files {
		received += f.Received
		if !f.Cached {
			nFetched++
			fetched += f.Size
		}
	}
	if o.json {
		out := pullJSON{Repo: snap.RepoID, Revision: snap.Revision, Commit: snap.Commit, Snapshot: snap.Dir,
			Downloaded: received, Seconds: elapsed.Seconds(), Files: []pullFileJSON{}}
		for _, f := range snap.Files {
			out.Files = append(out.Files, pullFileJSON{Path: f.Path, Size: f.Size, SHA256: f.SHA256,
				Downloaded: f.Received, Resumed: f.Resumed, Cached: f.Cached, Seconds: f.Duration.Seconds()})
		}
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "%s@%s: commit %s, %d files\n", snap.RepoID, snap.Revision, snap.Commit, len(snap.Files))
	if len(snap.Files) == 0 && o.filtered {
		fmt.Fprintf(stdout, "no file of the revision matches --include/--exclude; nothing downloaded\n")
	} else if nFetched == 0 {
		fmt.Fprintf(stdout, "all files already present, nothing downloaded\n")
	} else {
		rate := float64(received) / max(elapsed.Seconds(), 1e-9)
		fmt.Fprintf(stdout, "fetched %d files (%s, %s received) in %s, %s/s\n", nFetched,
			formatBytes(fetched), formatBytes(received), elapsed.Round(10*time.Millisecond), formatBytes(int64(rate)))
	}
	fmt.Fprintln(stdout, snap.Dir)
	return nil
}

// pullBars shows a bar per file in flight and one for the whole pull.
type pullBars struct {
	p     *mpb.Progress
	mu    sync.Mutex
	total *mpb.Bar
	files map[string]*mpb.Bar
}

func newPullBars(ctx context.Context, w io.Writer) *pullBars {
	return &pullBars{
		p:     mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond)),
		files: map[string]*mpb.Bar{},
	}
}

func pullBarDecorators(name string) []mpb.BarOption {
	if len(name) > 40 {
		name = "…" + name[len(name)-39:]
	}
	return []mpb.BarOption{
		mpb.PrependDecorators(decor.Name(name, decor.WC{C: decor.DindentRight | decor.DextraSpace, W: 41})),
		mpb.AppendDecorators(
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace),
			decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace),
			decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace), "done"),
		),
	}
}

func (b *pullBars) Start(files int, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = b.p.AddBar(bytes, pullBarDecorators(fmt.Sprintf("total (%d files)", files))...)
}

func (b *pullBars) FileStart(path string, size, have int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old := b.files[path]; old != nil {
		old.Abort(true) // the file starts over (its bytes did not match)
	}
	// A resumed file's bar counts what this run fetches, so rate and ETA
	// stay true; the total bar counts the resumed bytes as done.
	bar := b.p.AddBar(size-have, append(pullBarDecorators(path), mpb.BarRemoveOnComplete())...)
	if have > 0 && b.total != nil {
		b.total.IncrInt64(have)
	}
	b.files[path] = bar
}

func (b *pullBars) FileAdvance(path string, n int64) {
	b.mu.Lock()
	bar, total := b.files[path], b.total
	b.mu.Unlock()
	if bar != nil {
		bar.IncrInt64(n)
	}
	if total != nil {
		total.IncrInt64(n)
	}
}

func (b *pullBars) FileDone(path string, err error) {
	b.mu.Lock()
	bar := b.files[path]
	delete(b.files, path)
	b.mu.Unlock()
	if bar == nil {
		return
	}
	if err != nil {
		bar.Abort(true)
		return
	}
	bar.SetTotal(-1, true)
}

// Retry prints the retry above the bars.
func (b *pullBars) Retry(path string, attempt int, wait time.Duration, err error) {
	fmt.Fprintln(b.p, pullRetryLine(path, attempt, wait, err))
}

func pullRetryLine(path string, attempt int, wait time.Duration, err error) string {
	if wait <= 0 {
		return fmt.Sprintf("%s: attempt %d failed, starting over: %v", path, attempt, err)
	}
	return fmt.Sprintf("%s: attempt %d failed, retrying in %s: %v", path, attempt, wait.Round(time.Millisecond), err)
}

// pullRetryLog reports retries on stderr when there are no bars.
type pullRetryLog struct {
	hubclient.NopProgress
	w io.Writer
}

func (l pullRetryLog) Retry(path string, attempt int, wait time.Duration, err error) {
	fmt.Fprintln(l.w, "hubmirror: "+pullRetryLine(path, attempt, wait, err))
}

// finish completes or aborts what is left and waits for the last render.
func (b *pullBars) finish(ok bool) {
	b.mu.Lock()
	for p, bar := range b.files {
		bar.Abort(true)
		delete(b.files, p)
	}
	if b.total != nil {
		if ok {
			b.total.SetTotal(-1, true)
		} else {
			b.total.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
}

// pullToJSON is the --json output of pull --to.
type pullToJSON struct {
	*mirror.PullResult
	// URL is the mirror's storage location.
	URL string `json:"url"`
	// Model names the mirrored commit as a MODEL argument.
	Model   string  `json:"model"`
	Seconds float64 `json:"seconds"`
}

// runPullTo streams a revision from the Hub into the mirror at o.to.
func runPullTo(ctx context.Context, o *pullOptions, stdout, stderr io.Writer) error {
	client, err := hubSettings{Client: o.client}.newHubClient()
	if err != nil {
		return err
	}
	workers := o.toJobs
	dst, err := storage.Open(ctx, o.to, storage.OpenOptions{Create: true, MaxConcurrent: 2*workers + 4})
	if err != nil {
		return err
	}
	defer dst.Close()
	popts := mirror.PullOptions{Include: o.download.Include, Exclude: o.download.Exclude, Jobs: workers,
		Connections: o.download.Connections, ChunkSize: o.toChunk}
	var bars *pushBars
	if o.bars {
		// The bar is made once the listing says how much there is to do.
		fwd := &lateProgress{}
		popts.Progress = fwd
		popts.Listed = func(_ string, files int, bytes int64) {
			bars = newPushBars(ctx, stderr, files, bytes)
			fwd.set(bars)
		}
	}
	start := time.Now()
	res, err := mirror.Pull(ctx, client, dst, o.repoID, o.revision, popts)
	if bars != nil {
		bars.finish(err == nil)
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("pull interrupted; run the same command again to complete it: %w", err)
		}
		return err
	}
	elapsed := time.Since(start)
	model := mirror.ModelURL{Store: dst.Location(), Repo: res.Repo, Revision: res.Commit}.String()
	if o.json {
		return writeJSON(stdout, pullToJSON{PullResult: res, URL: dst.Location(), Model: model, Seconds: elapsed.Seconds()})
	}
	ref := res.Revision
	if ref == "" {
		ref = res.Requested + " (no ref set)"
	}
	fmt.Fprintf(stdout, "%s@%s: commit %s, %d files (%s) from %s into %s\n", res.Repo, ref, res.Commit, res.Files,
		formatBytes(res.Bytes), res.Endpoint, dst.Location())
	if res.Files == 0 && o.filtered {
		fmt.Fprintln(stdout, "no file of the revision matches --include/--exclude; nothing downloaded")
	} else if res.DownloadedFiles == 0 && res.Uploaded == 0 {
		fmt.Fprintln(stdout, "the mirror already had every file, nothing downloaded")
	} else {
		rate := float64(res.Downloaded) / max(elapsed.Seconds(), 1e-9)
		fmt.Fprintf(stdout, "downloaded %d files (%s) in %s, %s/s; uploaded %d blobs (%s), %d already in the mirror (%s)\n",
			res.DownloadedFiles, formatBytes(res.Downloaded), elapsed.Round(10*time.Millisecond), formatBytes(int64(rate)),
			res.Uploaded, formatBytes(res.UploadedBytes), res.Present, formatBytes(res.PresentBytes))
	}
	printAbortedUploads(stdout, &res.PushResult)
	fmt.Fprintln(stdout, model)
	return nil
}

// lateProgress forwards push progress to bars made after the push started.
type lateProgress struct {
	mu sync.Mutex
	p  mirror.PushProgress
}

func (l *lateProgress) set(p mirror.PushProgress) {
	l.mu.Lock()
	l.p = p
	l.mu.Unlock()
}

func (l *lateProgress) get() mirror.PushProgress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.p
}

func (l *lateProgress) Hashed(path string, n int64) {
	if p := l.get(); p != nil {
		p.Hashed(path, n)
	}
}

func (l *lateProgress) Uploaded(path string, n int64) {
	if p := l.get(); p != nil {
		p.Uploaded(path, n)
	}
}

func (l *lateProgress) FileDone(path string, size int64, uploaded bool) {
	if p := l.get(); p != nil {
		p.FileDone(path, size, uploaded)
	}
}
