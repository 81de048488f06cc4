package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

func init() {
	register(&cli.Command{
		Name:      "gc",
		Usage:     "free what no revision needs: old commits (--keep-last), unreferenced blobs older than --grace, stale uploads",
		ArgsUsage: "URL",
		Description: `Collects the garbage of the mirror at URL (a directory, file:///path or s3://bucket/prefix):
  - with --keep-last N, drops the manifests of all but the newest N commits (by when
    they were mirrored) of each revision name they were pushed as; a commit a ref names
    (or a variant's source) always stays;
  - deletes the blobs, and their chunk sidecars, that no manifest lists, no running
    push holds a lease on, and that are at least --grace old (and 2s: some stores
    keep whole seconds);
  - aborts incomplete multipart uploads of blobs older than --stale-uploads;
and prints what it freed. --dry-run prints what it would do and changes nothing.
Safe while push, pull --to, mirror and serve --upstream write to the same store:
a push leases its blobs before it relies on them and re-checks them after a gc
(see README, "Operations").`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "keep-last", Usage: "keep the newest `N` commits of each revision (0: drop no commit)"},
			&cli.DurationFlag{Name: "grace", Value: mirror.DefaultGCGrace, Usage: "delete an unreferenced blob only when at least this old"},
			&cli.DurationFlag{Name: "stale-uploads", Value: mirror.DefaultStaleUploadAge, Usage: "abort incomplete uploads of blobs older than this"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would be freed; change nothing"},
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf("gc takes URL, got %d arguments", c.NArg())
			}
			if c.Int("keep-last") < 0 {
				return usageErrorf("--keep-last must be 0 or more, got %d", c.Int("keep-last"))
			}
			if c.Duration("grace") < 0 || c.Duration("stale-uploads") <= 0 {
				return usageErrorf("--grace must be 0 or more and --stale-uploads more than 0")
			}
			store, err := storage.Open(c.Context, c.Args().Get(0), storage.OpenOptions{})
			if err != nil {
				return err
			}
			defer store.Close()
			res, err := mirror.GC(c.Context, store, mirror.GCOptions{KeepLast: c.Int("keep-last"), Grace: c.Duration("grace"),
				DryRun: c.Bool("dry-run"), StaleUploadAge: c.Duration("stale-uploads")})
			if res == nil {
				return err
			}
			w := c.App.Writer
			if c.Bool("json") {
				if jerr := writeJSON(w, res); jerr != nil {
					return jerr
				}
				return err
			}
			verb := "deleted"
			if res.DryRun {
				verb = "would delete"
			}
			for _, m := range res.DroppedManifests {
				fmt.Fprintf(w, "%s manifest %s@%s (%s, mirrored %s)\n", verb, m.Repo, m.Commit, m.Revision, m.Created.Format("2006-01-02 15:04"))
			}
			for _, b := range res.DeletedBlobs {
				fmt.Fprintf(w, "%s blob %s (%s)\n", verb, b.SHA256, formatBytes(b.Size))
			}
			for _, u := range res.AbortedUploads {
				fmt.Fprintf(w, "aborted upload of %s begun %s\n", u.Key, u.Initiated.Format("2006-01-02 15:04"))
			}
			fmt.Fprintf(w, "%s %d manifests, %d blobs, %d sidecars: %s freed; kept %d referenced blobs, %d unreferenced younger than %s, %d leased by running pushes\n",
				verb, len(res.DroppedManifests), len(res.DeletedBlobs), res.DeletedSidecars, formatBytes(res.FreedBytes),
				res.ReferencedBlobs, res.KeptYoung, c.Duration("grace"), res.KeptLeased)
			return err
		},
	})
}
