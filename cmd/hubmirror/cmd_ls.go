package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/storage"
)

func init() {
	register(&cli.Command{
		Name:      "ls",
		Usage:     "list the repos of a mirror: refs, commits, variants with their validation verdicts, sizes, when mirrored",
		ArgsUsage: "URL [REPO]",
		Description: `Lists every repo of the mirror at URL (a directory, file:///path or s3://bucket/prefix),
or only REPO (ORG/NAME; a dataset or space with --repo-type, or as datasets/ORG/NAME,
spaces/ORG/NAME): its type (model, dataset, space), its refs and the commits they name, every commit
(newest first) with when it was mirrored, its files and size, where it came from, and
for a variant its source commit and validation verdict (passed, failed). A repo's size
counts each distinct blob once. Objects that cannot be read are named under
"problems"; hubmirror verify checks everything.`,
		Flags: []cli.Flag{repoTypeFlag, jsonFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usageErrorf("ls takes URL and an optional REPO, got %d arguments", c.NArg())
			}
			store, err := storage.Open(c.Context, c.Args().Get(0), storage.OpenOptions{})
			if err != nil {
				return err
			}
			defer store.Close()
			w := c.App.Writer
			if c.NArg() == 2 {
				repo, err := qualifyRepo(c, "REPO", c.Args().Get(1))
				if err != nil {
					return err
				}
				info, err := mirror.Describe(c.Context, store, repo)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return writeJSON(w, info)
				}
				printRepoInfo(w, info)
				return nil
			}
			all := []*mirror.RepoInfo{}
			err = mirror.List(c.Context, store, func(info *mirror.RepoInfo) error {
				if c.Bool("json") {
					all = append(all, info)
					return nil
				}
				printRepoInfo(w, info)
				return nil
			})
			if err != nil || !c.Bool("json") {
				return err
			}
			return writeJSON(w, all)
		},
	})
}

func printRepoInfo(w io.Writer, info *mirror.RepoInfo) {
	fmt.Fprintf(w, "%s (%s): %d commits, %d refs, %s\n", info.Repo, info.Type, len(info.Commits), len(info.Refs), formatBytes(info.Bytes))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  COMMIT\tMIRRORED\tFILES\tSIZE\tREFS\tSOURCE\n")
	for _, c := range info.Commits {
		src := c.Source.Kind
		if c.Source.Location != "" {
			src += " " + c.Source.Location
		}
		if v := c.Variant; v != nil {
			src = fmt.Sprintf("variant %s of %s, validation %s", v.Name, v.SourceCommit[:12], v.Verdict)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\n", c.Commit, c.Mirrored.UTC().Format(time.RFC3339), c.Files, formatBytes(c.Bytes), strings.Join(c.Refs, ","), src)
	}
	tw.Flush()
	for _, p := range info.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
}
