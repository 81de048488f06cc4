package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

func init() {
	register(&cli.Command{
		Name:      "rm",
		Usage:     "remove a repo, or one of its refs, from a mirror (refs and the manifests no ref reaches; blobs stay for gc)",
		ArgsUsage: "URL REPO[@REV]",
		Description: `Without @REV, removes every ref and every manifest of REPO from the mirror at URL.
With @REV (a branch, tag or variant name), removes that ref, then the manifest of the
commit it named unless another ref still reaches it: a ref reaches the commit it names
and, for a variant, the commit the variant was derived from (so removing main keeps
main's manifest while a variant of it exists; remove the variant too).
Blobs are never deleted here: hubmirror gc deletes those no manifest lists.`,
		Flags: []cli.Flag{jsonFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageErrorf("rm takes URL and REPO[@REV], got %d arguments", c.NArg())
			}
			repo, rev := mirror.TrimRepoRevision(c.Args().Get(1))
			if strings.Contains(c.Args().Get(1), "@") && rev == "" {
				return usageErrorf("rm %s: empty revision after '@'", c.Args().Get(1))
			}
			store, err := storage.Open(c.Context, c.Args().Get(0), storage.OpenOptions{})
			if err != nil {
				return err
			}
			defer store.Close()
			res, err := mirror.Remove(c.Context, store, repo, rev)
			if err != nil {
				return err
			}
			w := c.App.Writer
			if c.Bool("json") {
				return writeJSON(w, res)
			}
			for _, r := range res.Refs {
				fmt.Fprintf(w, "removed ref %s@%s\n", repo, r)
			}
			for _, m := range res.Manifests {
				fmt.Fprintf(w, "removed manifest %s@%s\n", repo, m)
			}
			for _, m := range res.Kept {
				fmt.Fprintf(w, "kept manifest %s@%s (another ref reaches it)\n", repo, m)
			}
			return nil
		},
	})
}
