package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/weights"
)

func init() {
	register(&cli.Command{
		Name:      "quantize",
		Usage:     "quantize a model (int8, w8a8, w4a16, fp8, fp16, bf16), validate it against the original, publish it",
		ArgsUsage: "SRC DST",
		Description: `--scheme int8 quantizes the Linear weights of the model body to int8, weight-only and
symmetric, with one scale per output channel or, with --group-size G, per G inputs; the
result uses the compressed-tensors int-quantized layout (int8 weight, weight_scale in the
model dtype, quantization_config in config.json). --scheme w8a8 writes the same per-channel
int8 weights with llm-compressor's W8A8 config (input activations quantized to int8 per
token at run time, as vLLM runs it); the forward pass runs them on int8 dot products
(AVX-512 VNNI, AVX-VNNI or AVX2). --scheme w4a16 quantizes them to int4 in
groups of --group-size inputs (default 128; the last group of a row may be shorter), round
to nearest, symmetric or with --asym a zero point per group, in the compressed-tensors
pack-quantized layout (weight_packed: eight codes to an int32, weight_scale,
weight_zero_point, weight_shape). --method gptq chooses the int4 codes with GPTQ instead
(column by column, each column's error compensated on the next ones with the inverse
Hessian of the layer's inputs; same layout): the calibration text, the project's text set
or --calibration-file F (plain text, one sample per paragraph, or per line when it has no
blank lines; at most --calibration-tokens tokens, default 8192), is encoded with SRC's
tokenizer and run through SRC in one batch, each Linear quantized when its inputs are
reached (later layers see the quantized earlier ones). --scheme fp8 stores them as F8_E4M3 with a scale per
output channel (compressed-tensors float-quantized, llm-compressor's FP8_DYNAMIC config:
activations quantized per token at run time by the server). Embeddings, norms, biases and heads
(lm_head, classifiers) stay in float; --keep GLOB keeps more, --include GLOB quantizes
more. --scheme fp16 / bf16 casts every float tensor. The forward pass then checks the
result against SRC with the scheme's thresholds; exit 3 when it fails (nothing written).
--threads sets the goroutines of the int8 pass as well as of the forward pass.

--format gguf writes one GGUF file for llama.cpp instead, for the decoder families llama,
mistral, qwen2, qwen3, gemma, gemma2, gemma3, phi3, mixtral, qwen2_moe and qwen3_moe (the
experts stacked as llama.cpp's ffn_*_exps): --scheme q8_0 (or int8), f16, bf16 or f32
for the matrices, or llama-quantize's q4_0, q4_k_m, q5_k_m or q6_k with its types per tensor
(Q6_K output and, for _m, Q6_K attn_v and ffn_down in some layers; rows that are not a
multiple of 256 fall back to Q5_0/Q5_1/Q8_0 as llama-quantize does), F32 norms and biases, llama.cpp's tensor names, hyperparameters and q/k
order, and the vocabulary converted from tokenizer.json (SentencePiece-style BPE as
tokenizer.ggml.model llama, byte-level BPE as gpt2 with the pre-tokenizer llama.cpp knows
by its regex; special tokens, add_bos/add_eos, the chat template). A model without a
tokenizer, or with one llama.cpp cannot reproduce, is refused; --no-vocab writes the file
without a vocabulary. The forward pass reads the GGUF back (its matrices kept in their ggml
blocks, decoded by the kernels panel by panel, with the config.json written beside it) and validates it against SRC with the
thresholds of exact (f32), f16, bf16, int8 (q8_0, q6_k) or kquant (q4_0, q4_k_m, q5_k_m).
The encoders bert, roberta, xlm-roberta, camembert and distilbert (llama.cpp's bert) and
modernbert (modern-bert) take --scheme q8_0, f16, bf16 or f32: the file holds the body, the
pooling of a sentence-transformers model and a sequence classification head llama.cpp computes
(cls); masked-LM heads and DistilBERT's classifier are left out, and validation compares the
outputs the file holds (last_hidden_state, and pooler_output and logits when written).` + modelHelp + dstHelp,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "scheme", Usage: "int8, w8a8, w4a16, fp8, fp16 or bf16 (required); with --format gguf: q8_0, f16, bf16, f32, q4_0, q4_k_m, q5_k_m or q6_k"},
			&cli.IntFlag{Name: "group-size", Usage: "int8, w4a16: inputs per scale (0: one scale per output channel; w4a16 default 128)"},
			&cli.BoolFlag{Name: "asym", Usage: "w4a16: a zero point per group as well as a scale"},
			&cli.StringFlag{Name: "method", Value: "rtn", Usage: "w4a16: rtn (round to nearest) or gptq (calibrated on text)"},
			&cli.StringFlag{Name: "calibration-file", Usage: "--method gptq: calibration text (default: the project's text set)"},
			&cli.IntFlag{Name: "calibration-tokens", Value: forward.MaxTextTokens, Usage: "--method gptq: most calibration tokens"},
			&cli.StringSliceFlag{Name: "keep", Usage: "glob of tensor names to keep in float (repeatable)"},
			&cli.StringSliceFlag{Name: "include", Usage: "glob of 2-D weights to quantize although the rule keeps them (repeatable)"},
			&cli.StringFlag{Name: "format", Value: "safetensors", Usage: "safetensors, or gguf (--scheme q8_0, f16, bf16, f32, q4_0, q4_k_m, q5_k_m or q6_k)"},
			&cli.BoolFlag{Name: "no-vocab", Usage: "--format gguf: write no vocabulary (tokenizer.ggml.model no_vocab)"},
			&cli.StringFlag{Name: "name", Usage: "--format gguf: the model's name (general.name, which llama.cpp and Ollama show)"},
		}, passFlags()...),
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 2 {
				return usageErrorf("quantize takes SRC and DST, got %d arguments", len(args))
			}
			// --scheme is checked here, not with Required (see parseInterspersed).
			if c.String("scheme") == "" {
				return usageErrorf("quantize needs --scheme (int8, w8a8, w4a16, fp8, fp16 or bf16)")
			}
			if c.String("format") == "gguf" {
				return quantizeGGUF(c, args)
			}
			if c.Bool("no-vocab") || c.IsSet("name") {
				return usageErrorf("--no-vocab and --name are for --format gguf")
			}
			scheme, err := quantize.ParseScheme(c.String("scheme"))
			if err != nil {
				return usageErrorf("--scheme: %v", err)
			}
			groupSize := c.Int("group-size")
			if scheme == quantize.W4A16 {
				if groupSize < 0 {
					return usageErrorf("--group-size %d: a positive size (0: one scale per output channel)", groupSize)
				}
				if !c.IsSet("group-size") {
					groupSize = quantize.DefaultInt4GroupSize
				}
			} else if err := checkGroupSize(groupSize, scheme); err != nil {
				return err
			}
			if c.Bool("asym") && scheme != quantize.W4A16 {
				return usageErrorf("--asym is for --scheme w4a16")
			}
			method, err := quantize.ParseMethod(c.String("method"))
			if err != nil {
				return usageErrorf("--method: %v", err)
			}
			calib, err := calibrationFlags(c, method, scheme)
			if err != nil {
				return err
			}
			kind := map[quantize.Scheme]forward.Kind{quantize.Int8: forward.KindInt8, quantize.W4A16: forward.KindInt4, quantize.FP8: forward.KindFP8,
				quantize.W8A8: forward.KindInt8, quantize.FP16: forward.KindF16, quantize.BF16: forward.KindBF16}[scheme]
			opts, err := buildOptions(c, kind)
			if err != nil {
				return err
			}
			qo := quantize.Options{Scheme: scheme, GroupSize: groupSize, Asym: c.Bool("asym"), Keep: c.StringSlice("keep"), Include: c.StringSlice("include"),
				Threads: c.Int("threads"), Method: method}
			if method == quantize.GPTQ {
				qo.GPTQ = quantize.GPTQOptions{Calibrate: calib.calibrator(c.Context, opts.Threads), Threads: opts.Threads}
			}
			pass := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
				return quantize.Quantize(g, cfg, qo)
			}
			if f := c.String("format"); f != "safetensors" {
				return usageErrorf("--format %q: want safetensors or gguf", f)
			}
			name := fmt.Sprintf("quantize %s", scheme)
			if method == quantize.GPTQ {
				name += " (gptq)"
			}
			res, err := buildArtifact(c.Context, args[0], args[1], name, pass, opts)
			return reportBuild(c.App.Writer, c.Bool("json"), res, err)
		},
	})
}

// checkGroupSize is the rule of --group-size for quantize and mirror: not
// negative, and only with the int8 scheme, which it configures.
func checkGroupSize(size int, schemes ...quantize.Scheme) error {
	if size < 0 {
		return usageErrorf("--group-size %d: a positive size (0: one scale per output channel)", size)
	}
	if size > 0 && !slices.Contains(schemes, quantize.Int8) {
		return usageErrorf("--group-size %d: a group size is for the int8 scheme only", size)
	}
	return nil
}

// quantizeGGUF is quantize --format gguf: the pass only plans (and refuses
// what GGUF cannot hold); the writer converts, with the vocabulary of the
// source directory, and completes the report.
func quantizeGGUF(c *cli.Context, args []string) error {
	typ, err := quantize.ParseGGUFType(c.String("scheme"))
	if err != nil {
		return usageErrorf("--scheme: %v", err)
	}
	if c.Int("group-size") != 0 || len(c.StringSlice("keep")) > 0 || len(c.StringSlice("include")) > 0 {
		return usageErrorf("--format gguf takes --scheme q8_0, f16, bf16, f32, q4_0, q4_k_m, q5_k_m or q6_k, without --group-size, --keep or --include")
	}
	opts, err := buildOptions(c, forward.Kind(quantize.GGUFValidationKind(typ)))
	if err != nil {
		return err
	}
	// An encoder's file holds its body and the heads llama.cpp computes
	// (quantize.OpenGGUF reads a masked-LM model back as its base class):
	// the outputs it has are compared, the others listed as not compared.
	opts.Validate.PartialCandidate = true
	gopts := quantize.GGUFOptions{Type: typ, NoVocab: c.Bool("no-vocab"), Name: c.String("name"), Threads: c.Int("threads")}
	var rep *quantize.GGUFReport
	pass := func(g *weights.Graph, cfg *arch.Config) (*weights.Graph, any, error) {
		plan := gopts
		plan.NoVocab = true // the vocabulary is read by the writer, from the source directory
		m, err := quantize.GGUF(g, cfg, plan)
		if err != nil {
			return nil, nil, err
		}
		rep = m.Report
		return g, rep, nil
	}
	opts.Write = artifact.GGUFWriter(gopts, func(r *quantize.GGUFReport) {
		if rep != nil {
			*rep = *r
		}
	})
	res, err := buildArtifact(c.Context, args[0], args[1], fmt.Sprintf("quantize %s (gguf)", typ), pass, opts)
	return reportBuild(c.App.Writer, c.Bool("json"), res, err)
}

// calibration is what --method gptq calibrates on.
type calibration struct {
	texts  []forward.Text
	tokens int
}

// calibrationFlags checks --method against the scheme and reads
// --calibration-file and --calibration-tokens.
func calibrationFlags(c *cli.Context, method quantize.Method, scheme quantize.Scheme) (*calibration, error) {
	if method != quantize.GPTQ {
		for _, f := range []string{"calibration-file", "calibration-tokens"} {
			if c.IsSet(f) {
				return nil, usageErrorf("--%s is for --method gptq", f)
			}
		}
		return nil, nil
	}
	if scheme != quantize.W4A16 {
		return nil, usageErrorf("--method gptq is for --scheme w4a16, not %s", scheme)
	}
	cal := &calibration{texts: forward.BuiltinTexts(), tokens: c.Int("calibration-tokens")}
	if cal.tokens <= 0 {
		return nil, usageErrorf("--calibration-tokens %d: want a positive number", cal.tokens)
	}
	if f := c.String("calibration-file"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, usageErrorf("--calibration-file: %v", err)
		}
		cal.texts = calibrationSamples(f, string(data))
		if len(cal.texts) == 0 {
			return nil, usageErrorf("--calibration-file %s holds no text", f)
		}
	}
	return cal, nil
}

// calibrationSamples splits a calibration file into samples: its
// paragraphs (separated by blank lines), or its lines when it has no blank
// line.
func calibrationSamples(name, text string) []forward.Text {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	sep := "\n"
	if strings.Contains(strings.TrimSpace(text), "\n\n") {
		sep = "\n\n"
	}
	var out []forward.Text
	for _, p := range strings.Split(text, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, forward.Text{Name: fmt.Sprintf("%s#%d", name, len(out)+1), Text: p})
		}
	}
	return out
}

// calibrator returns the calibration of quantize.GPTQOptions: the texts
// encoded with SRC's tokenizer, run through SRC in one batch with the hook.
func (cal *calibration) calibrator(ctx context.Context, threads int) quantize.Calibrator {
	return func(g *weights.Graph, cfg *arch.Config, hook quantize.LinearHook) error {
		tok, why := artifact.LoadTokenizer(graphDir(g))
		if tok == nil {
			if why == "" {
				why = "it has no tokenizer.json, vocab.txt or vocab.json + merges.txt"
			}
			return usageErrorf("--method gptq encodes its calibration text with SRC's tokenizer: %s", why)
		}
		m, err := forward.Load(g, cfg, forward.Options{Threads: threads})
		if err != nil {
			return err
		}
		inputs, err := m.TextInputs(tok, cal.texts, cal.tokens)
		if err != nil {
			return err
		}
		if len(inputs) == 0 {
			return usageErrorf("--method gptq: the calibration text gives no tokens")
		}
		_, err = m.RunCapture(ctx, inputs, hook)
		return err
	}
}
