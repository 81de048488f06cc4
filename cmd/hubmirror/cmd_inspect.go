package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/formats"
)

func init() {
	register(&cli.Command{
		Name:      "inspect",
		Usage:     "describe a model: architecture, parameters, tensors, tied groups, pickle globals, files",
		ArgsUsage: "MODEL",
		Description: `MODEL is a model directory (config.json plus weights), a single weight file
(safetensors, pytorch_model.bin, or a sharding index), or a repo id in the cache.
Nothing in a pickle is executed: globals outside the allowlist are refused and named.` + modelHelp,
		Flags: []cli.Flag{jsonFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf("inspect takes one MODEL, got %d arguments", c.NArg())
			}
			return runInspect(c, c.Args().First(), c.Bool("json"))
		},
	})
}

func runInspect(c *cli.Context, spec string, asJSON bool) error {
	g, cfg, err := openModel(c.Context, spec)
	if err != nil {
		return err
	}
	defer g.Close()
	s := formats.Summarize(g, cfg)
	if asJSON {
		return writeJSON(c.App.Writer, s)
	}
	printSummary(c.App.Writer, spec, s)
	return nil
}

func printSummary(w io.Writer, spec string, s *formats.Summary) {
	fmt.Fprintf(w, "model:        %s\n", spec)
	arch := s.Architecture
	if s.Family != "" {
		arch += " (" + s.Family + " family)"
	}
	fmt.Fprintf(w, "architecture: %s\n", arch)
	fmt.Fprintf(w, "parameters:   %d\n", s.Parameters)
	fmt.Fprintf(w, "bytes:        %d\n", s.Bytes)
	fmt.Fprintf(w, "files:        %s\n", strings.Join(s.Files, ", "))
	for _, q := range s.Quantization {
		fmt.Fprintf(w, "quantization: %s (%d modules)\n", q, q.Modules)
	}
	if len(s.Globals) > 0 {
		fmt.Fprintf(w, "pickle globals: %s\n", strings.Join(s.Globals, ", "))
	}
	if len(s.Tied) == 0 && len(s.ConfigTied) == 0 {
		fmt.Fprintf(w, "tied groups:  none\n")
	} else {
		fmt.Fprintf(w, "tied groups:\n")
		for _, grp := range s.Tied {
			fmt.Fprintf(w, "  %s (shared storage)\n", strings.Join(grp, " = "))
		}
		for _, t := range s.ConfigTied {
			fmt.Fprintf(w, "  %s (tie_word_embeddings; not in the file)\n", strings.ReplaceAll(t, "=", " = "))
		}
	}
	fmt.Fprintf(w, "tensors (%d):\n", len(s.Tensors))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, t := range s.Tensors {
		fmt.Fprintf(tw, "  %s\t%v\t%v\n", t.Name, t.DType, t.Shape)
	}
	tw.Flush()
}

// writeJSON prints v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
