package main

import (
	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/convert"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/weights"
)

func init() {
	register(&cli.Command{
		Name:      "convert",
		Usage:     "write a model as validated safetensors (from pickles, or to another float dtype)",
		ArgsUsage: "SRC DST",
		Description: `Reads SRC (safetensors or PyTorch pickles, single or sharded) and writes DST as
safetensors the way the Hub's own conversion does: tensors that share a storage are kept
once under the canonical name (the dropped names are recorded in the metadata), data is
contiguous, shards of at most --shard-size with model.safetensors.index.json; config,
tokenizer and other files are copied. --dtype casts float tensors (values out of the
target's range are reported per tensor). Then the native forward pass runs SRC and DST on
the same inputs; DST is published only when they agree (validation.json beside the files).
Exit 3 when validation fails (nothing is written at DST unless --force).` + modelHelp + dstHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "dtype", Usage: "cast float tensors to f32, f16 or bf16 (default: keep)"},
		}, passFlags()...),
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 2 {
				return usageErrorf("convert takes SRC and DST, got %d arguments", len(args))
			}
			kind := forward.KindExact
			var to weights.DType
			switch c.String("dtype") {
			case "":
			case "f32":
				to = weights.F32
			case "f16":
				to, kind = weights.F16, forward.KindF16
			case "bf16":
				to, kind = weights.BF16, forward.KindBF16
			default:
				return usageErrorf("--dtype %q: want f32, f16 or bf16", c.String("dtype"))
			}
			opts, err := buildOptions(c, kind)
			if err != nil {
				return err
			}
			pass := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
				out, shared, err := convert.DedupeShared(g, cfg)
				if err != nil || to == 0 {
					return out, shared, err
				}
				cast, rep, err := convert.Cast(out, to, func(t *weights.Tensor) bool { return arch.IsBuffer(t.Name) })
				if err != nil {
					return nil, nil, err
				}
				if cast.Config != nil {
					name := map[weights.DType]string{weights.F32: "float32", weights.F16: "float16", weights.BF16: "bfloat16"}[to]
					if cast.Config, err = arch.UpdateConfig(cast.Config, map[string]any{"torch_dtype": name}); err != nil {
						return nil, nil, err
					}
				}
				return cast, map[string]any{"shared": shared, "cast": rep}, nil
			}
			res, err := buildArtifact(c.Context, args[0], args[1], "convert", pass, opts)
			return reportBuild(c.App.Writer, c.Bool("json"), res, err)
		},
	})
}
