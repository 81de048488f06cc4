package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

func init() {
	register(&cli.Command{
		Name:      "verify",
		Usage:     "check a mirror: manifests, refs, blobs (sizes and sha256), chunk sidecars; name every damaged object",
		ArgsUsage: "URL [REPO]...",
		Description: `Checks the mirror at URL (a directory, file:///path or s3://bucket/prefix), or only
the REPOs named and the blobs their manifests list: every manifest parses and is
stored under its commit, every ref names a commit whose manifest exists, every blob a
manifest lists exists with the size and sha256 the manifest gives, and every chunk
sidecar is well-formed and holds the chunk hashes of its blob. Each distinct blob is
read once. Every damaged object is listed with what is wrong, and the exit code is 1
when there is any. --quick checks existence and sizes (and the form of sidecars)
without reading blob contents.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quick", Usage: "check existence and sizes only, without reading blobs"},
			&cli.IntFlag{Name: "workers", Value: 4, Usage: "blobs checked at once"},
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return usageErrorf("verify takes URL and optional REPOs, got %d arguments", c.NArg())
			}
			if c.Int("workers") < 1 {
				return usageErrorf("--workers must be at least 1, got %d", c.Int("workers"))
			}
			store, err := storage.Open(c.Context, c.Args().Get(0), storage.OpenOptions{MaxConcurrent: 2 * c.Int("workers")})
			if err != nil {
				return err
			}
			defer store.Close()
			rep, err := mirror.Verify(c.Context, store, mirror.VerifyOptions{Repos: c.Args().Slice()[1:], Quick: c.Bool("quick"), Jobs: c.Int("workers")})
			if err != nil {
				return err
			}
			w := c.App.Writer
			if c.Bool("json") {
				if err := writeJSON(w, rep); err != nil {
					return err
				}
			} else {
				what := "sizes and sha256"
				if rep.Quick {
					what = "existence and sizes"
				}
				fmt.Fprintf(w, "checked %d repos, %d manifests, %d refs, %d blobs (%s; %s)\n", rep.Repos, rep.Manifests, rep.Refs, rep.Blobs, formatBytes(rep.Bytes), what)
				for _, d := range rep.Damage {
					if d.Where != "" {
						fmt.Fprintf(w, "DAMAGED %s: %s (used by %s)\n", d.Key, d.Problem, d.Where)
					} else {
						fmt.Fprintf(w, "DAMAGED %s: %s\n", d.Key, d.Problem)
					}
				}
			}
			if n := len(rep.Damage); n > 0 {
				return fmt.Errorf("verify: %d damaged objects in %s: %w", n, store.Location(), mirror.ErrDamaged)
			}
			return nil
		},
	})
}
