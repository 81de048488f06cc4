package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

func init() {
	register(&cli.Command{
		Name:      "quantize",
		Usage:     "quantize a model (int8, fp16, bf16), validate it against the original, publish it",
		ArgsUsage: "SRC DST",
		Description: `--scheme int8 quantizes the Linear weights of the model body to int8, weight-only and
symmetric, with one scale per output channel or, with --group-size G, per G inputs; the
result uses the compressed-tensors int-quantized layout (int8 weight, weight_scale in the
model dtype, quantization_config in config.json). Embeddings, norms, biases and heads
(lm_head, classifiers) stay in float; --keep GLOB keeps more, --include GLOB quantizes
more. --scheme fp16 / bf16 casts every float tensor. The forward pass then checks the
result against SRC with the scheme's thresholds; exit 3 when it fails (nothing written).`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "scheme", Usage: "int8, fp16 or bf16 (required)"},
			&cli.IntFlag{Name: "group-size", Usage: "int8: inputs per scale (0: one scale per output channel)"},
			&cli.StringSliceFlag{Name: "keep", Usage: "glob of tensor names to keep in float (repeatable)"},
			&cli.StringSliceFlag{Name: "include", Usage: "glob of 2-D weights to quantize although the rule keeps them (repeatable)"},
		}, passFlags()...),
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 2 {
				return usageErrorf("quantize takes SRC and DST, got %d arguments", len(args))
			}
			// --scheme is checked here, not with Required (see parseInterspersed).
			if c.String("scheme") == "" {
				return usageErrorf("quantize needs --scheme (int8, fp16 or bf16)")
			}
			scheme, err := quantize.ParseScheme(c.String("scheme"))
			if err != nil {
				return usageErrorf("--scheme: %v", err)
			}
			if c.Int("group-size") < 0 || (c.Int("group-size") > 0 && scheme != quantize.Int8) {
				return usageErrorf("--group-size %d: a positive size, with --scheme int8", c.Int("group-size"))
			}
			kind := map[quantize.Scheme]forward.Kind{quantize.Int8: forward.KindInt8, quantize.FP16: forward.KindF16, quantize.BF16: forward.KindBF16}[scheme]
			opts, err := buildOptions(c, kind)
			if err != nil {
				return err
			}
			qo := quantize.Options{Scheme: scheme, GroupSize: c.Int("group-size"), Keep: c.StringSlice("keep"), Include: c.StringSlice("include")}
			pass := func(g *weights.Graph, cfg *formats.Config) (*weights.Graph, any, error) {
				return quantize.Quantize(g, cfg, qo)
			}
			res, err := artifact.Build(c.Context, args[0], args[1], fmt.Sprintf("quantize %s", scheme), pass, opts)
			return reportBuild(c.App.Writer, c.Bool("json"), res, err)
		},
	})
}
