package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/prune"
	"github.com/hubmirror/hubmirror/weights"
)

func init() {
	register(&cli.Command{
		Name:      "prune",
		Usage:     "prune a model (magnitude, N:M, heads, FFN neurons), validate it, publish it",
		ArgsUsage: "SRC DST",
		Description: `Exactly one method:
  --sparsity F     zero the fraction F of smallest weights of each Linear weight
                   (--global: under one threshold across the model)
  --pattern N:M    keep the N largest of every M consecutive inputs (2:4)
  --heads SPEC     remove attention heads: "LAYER:H,H;LAYER:H" or a number K (the K
                   least important per layer); BERT, RoBERTa, DistilBERT and GPT-2
                   record pruned_heads in config.json, Llama-family models lose the
                   same heads count per layer; refused for MPNet and ModernBERT, whose
                   configs cannot describe fewer heads
  --ffn-keep F     keep the fraction F of FFN neurons of every layer (shrinks tensors
                   and intermediate_size, DistilBERT's hidden_dim)
The report lists the sparsity reached per tensor. Pruning changes outputs, so validation
uses the "pruned" thresholds, which only catch a broken result (cosine >= 0.8); set the
limits your use needs with --min-cosine, --min-top1, --max-kl.` + modelHelp + dstHelp,
		Flags: append([]cli.Flag{
			&cli.Float64Flag{Name: "sparsity", Usage: "fraction of weights to zero by magnitude"},
			&cli.BoolFlag{Name: "global", Usage: "with --sparsity: one threshold across all Linear weights"},
			&cli.StringFlag{Name: "pattern", Usage: "N:M semi-structured sparsity, e.g. 2:4"},
			&cli.StringFlag{Name: "heads", Usage: `attention heads to remove: "0:1,3;2:0" or a count per layer`},
			&cli.Float64Flag{Name: "ffn-keep", Usage: "fraction of FFN neurons to keep"},
		}, passFlags()...),
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 2 {
				return usageErrorf("prune takes SRC and DST, got %d arguments", len(args))
			}
			var methods []string
			for _, m := range []string{"sparsity", "pattern", "heads", "ffn-keep"} {
				if c.IsSet(m) {
					methods = append(methods, "--"+m)
				}
			}
			if len(methods) != 1 {
				return usageErrorf("prune takes exactly one of --sparsity, --pattern, --heads, --ffn-keep (got %d)", len(methods))
			}
			var pass artifact.Pass
			switch methods[0] {
			case "--sparsity":
				s, global := c.Float64("sparsity"), c.Bool("global")
				if !(s >= 0 && s < 1) {
					return usageErrorf("--sparsity %g: want a fraction in [0, 1)", s)
				}
				pass = func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
					return prune.Magnitude(g, cfg, s, global)
				}
			case "--pattern":
				ns, ms, ok := strings.Cut(c.String("pattern"), ":")
				n, err1 := strconv.Atoi(ns)
				m, err2 := strconv.Atoi(ms)
				if !ok || err1 != nil || err2 != nil || n <= 0 || n >= m {
					return usageErrorf("--pattern %q: want N:M with 0 < N < M, e.g. 2:4", c.String("pattern"))
				}
				pass = func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
					return prune.NM(g, cfg, n, m)
				}
			case "--heads":
				explicit, k, err := prune.ParseHeads(c.String("heads"))
				if err != nil {
					return err
				}
				pass = func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
					return prune.Heads(g, cfg, explicit, k)
				}
			case "--ffn-keep":
				keep := c.Float64("ffn-keep")
				if !(keep > 0 && keep <= 1) {
					return usageErrorf("--ffn-keep %g: want a fraction in (0, 1]", keep)
				}
				pass = func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
					return prune.FFN(g, cfg, keep)
				}
			}
			opts, err := buildOptions(c, forward.KindPruned)
			if err != nil {
				return err
			}
			res, err := buildArtifact(c.Context, args[0], args[1], fmt.Sprintf("prune %s", strings.TrimPrefix(methods[0], "--")), pass, opts)
			return reportBuild(c.App.Writer, c.Bool("json"), res, err)
		},
	})
}
