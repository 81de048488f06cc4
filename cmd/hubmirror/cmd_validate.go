package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/weights"
)

func init() {
	register(&cli.Command{
		Name:      "validate",
		Usage:     "run two models on the same inputs and compare their outputs; exit 3 when a threshold fails",
		ArgsUsage: "REFERENCE CANDIDATE",
		Description: `Runs REFERENCE and CANDIDATE on the same deterministic inputs (--sequences sequences,
lengths taken in turn from --lengths, ids drawn from the vocabulary by a generator seeded
with --seed) and reports for every output the max and mean absolute error and the cosine
similarity, and for logits the top-1 agreement and the KL divergence of the softmax.

When REFERENCE has a tokenizer (tokenizer.json, vocab.txt, or vocab.json + merges.txt),
both models also run on text: hubmirror's own text set (prose in several languages, code,
numbers) and --text-file, cut into windows within the models' positions (at most 512
tokens each, ` + fmt.Sprint(forward.MaxTextTokens) + ` tokens in all). For causal language models (GPT-2, the Llama
family) the report adds the perplexity of each model on that text, their ratio (checked
against --max-ppl-ratio), and the KL divergence and top-1 agreement of the next-token
distributions on it (checked against --max-text-kl and --min-text-top1).

The thresholds come from --kind: exact (a conversion that keeps the numbers), f16, bf16
or int8; without --kind it is inferred from the candidate's weights. The threshold flags
override single limits (0 disables one). Models of different architectures, vocabularies
or outputs are refused (exit 2), not compared. Exit 3 when a threshold fails.` + modelHelp,
		Flags: append(validationFlags(),
			&cli.StringFlag{Name: "kind", Usage: "thresholds for a comparison of kind exact, f16, bf16, int8, int4, fp8, kquant or pruned (default: inferred)"},
			forwardThreadsFlag,
			jsonFlag,
		),
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 2 {
				return usageErrorf("validate takes REFERENCE and CANDIDATE, got %d arguments", len(args))
			}
			vo, thresholds, err := validationSettings(c)
			if err != nil {
				return err
			}
			threads, err := threadsFlag(c)
			if err != nil {
				return err
			}
			opts := validateOptions{Reference: args[0], Candidate: args[1], Threads: threads, JSON: c.Bool("json"),
				Validate: vo, Thresholds: thresholds}
			if k := c.String("kind"); k != "" {
				if _, err := forward.DefaultThresholds(forward.Kind(k)); err != nil {
					return usageErrorf("--kind %q: want exact, f16, bf16, int8, int4, fp8, kquant or pruned", k)
				}
				opts.Validate.Kind = forward.Kind(k)
			}
			return runValidate(c.Context, opts, c.App.Writer)
		},
	})
}

type validateOptions struct {
	Reference, Candidate string
	Threads              int
	JSON                 bool
	Validate             forward.ValidateOptions
	// Thresholds gives the limits of a kind, with the flags' overrides.
	Thresholds thresholdsFunc
}

func runValidate(ctx context.Context, opts validateOptions, stdout io.Writer) error {
	ref, rg, err := loadForwardModel(ctx, opts.Reference, opts.Threads)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	defer rg.Close()
	cand, cg, err := loadForwardModel(ctx, opts.Candidate, opts.Threads)
	if err != nil {
		return fmt.Errorf("candidate: %w", err)
	}
	defer cg.Close()

	vo := opts.Validate
	// A GGUF file holds what llama.cpp runs: an encoder's masked-LM head or
	// DistilBERT's classifier are not in it, so only the outputs it has are
	// compared (and the rest listed), as quantize --format gguf does.
	if dir := cg.Files; len(dir) > 0 && strings.HasSuffix(strings.ToLower(dir[0]), ".gguf") {
		vo.PartialCandidate = true
	}
	var skipped string
	if !vo.NoText {
		vo.Tokenizer, skipped = artifact.LoadTokenizer(graphDir(rg))
	}
	if vo.Tokenizer == nil && len(vo.Texts) > 0 {
		why := skipped
		if why == "" {
			why = "it has no tokenizer.json, vocab.txt or vocab.json + merges.txt"
		}
		return usageErrorf("--text-file needs the reference model's tokenizer: %s", why)
	}
	if vo.Kind == "" {
		vo.Kind = forward.InferKind(ref.Info(), cand.Info())
	}
	th, err := opts.Thresholds(vo.Kind)
	if err != nil {
		return err
	}
	vo.Thresholds = &th

	rep, err := forward.Validate(ctx, ref, cand, vo)
	if err != nil {
		return err
	}
	rep.ReferenceName, rep.CandidateName = opts.Reference, opts.Candidate
	if skipped != "" {
		rep.TextSkipped = skipped
	}
	if opts.JSON {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		printValidation(stdout, opts, rep)
	}
	return rep.Err()
}

// graphDir is the directory a model's weights were read from, where its
// tokenizer files are; "" when it was read from no file.
func graphDir(g *weights.Graph) string {
	if len(g.Files) == 0 {
		return ""
	}
	return filepath.Dir(g.Files[0])
}

func printValidation(w io.Writer, opts validateOptions, r *forward.Report) {
	fmt.Fprintf(w, "reference: %s (%s, %v weights)\n", opts.Reference, r.Reference.Architecture, r.Reference.WeightDType)
	fmt.Fprintf(w, "candidate: %s (%s, %v weights)\n", opts.Candidate, r.Candidate.Architecture, r.Candidate.WeightDType)
	padded := ""
	if r.PaddedInputs > 0 && r.Reference.PadTokenID != nil {
		padded = fmt.Sprintf(", and %d copies right-padded with pad_token_id %d", r.PaddedInputs, *r.Reference.PadTokenID)
	}
	fmt.Fprintf(w, "inputs:    %d sequences of lengths %s, seed %d%s\n", len(r.Lengths), joinIntList(r.Lengths), r.Seed, padded)
	t := r.Thresholds
	if r.Text != nil {
		var parts []string
		for _, in := range r.Text.Inputs {
			cut := ""
			if in.Cut {
				cut = ", cut"
			}
			parts = append(parts, fmt.Sprintf("%s (%d tokens, %d windows%s)", in.Name, in.Tokens, in.Windows, cut))
		}
		fmt.Fprintf(w, "text:      %s; windows of at most %d\n", strings.Join(parts, ", "), r.Text.Window)
	} else if r.TextSkipped != "" {
		fmt.Fprintf(w, "text:      not used: %s\n", r.TextSkipped)
	}
	fmt.Fprintf(w, "kind:      %s (max abs %s, mean abs %s, cosine >= %s, top-1 >= %s, KL <= %s, perplexity ratio <= %s, text KL <= %s, text top-1 >= %s)\n", r.Kind,
		thresholdText(t.MaxAbsError), thresholdText(t.MeanAbsError), thresholdText(t.MinCosine), thresholdText(t.MinTop1), thresholdText(t.MaxKL),
		thresholdText(t.MaxPerplexityRatio), thresholdText(t.MaxTextKL), thresholdText(t.MinTextTop1))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "output\tmax abs\tmean abs\tcosine\ttop-1\tKL\tresult")
	for _, o := range r.Outputs {
		top1, kl := "-", "-"
		if o.Logits {
			top1, kl = fmt.Sprintf("%.4f", o.Top1Agreement), fmt.Sprintf("%.3g", o.KLDivergence)
		}
		result := "ok"
		if !o.Passed {
			result = "FAIL: " + strings.Join(o.Failures, "; ")
		}
		fmt.Fprintf(tw, "%s\t%.3g\t%.3g\t%.7f\t%s\t%s\t%s\n", o.Name, o.MaxAbsError, o.MeanAbsError, o.Cosine, top1, kl, result)
	}
	tw.Flush()
	if len(r.NotCompared) > 0 {
		fmt.Fprintf(w, "not compared: %s (not in the candidate)\n", strings.Join(r.NotCompared, ", "))
	}
	if r.Text != nil && r.Text.Perplexity != nil {
		p := r.Text.Perplexity
		result := "ok"
		if f := t.CheckPerplexity(p); len(f) > 0 {
			result = "FAIL: " + strings.Join(f, "; ")
		}
		fmt.Fprintf(w, "perplexity on the text (%d predictions): reference %.6g, candidate %.6g, ratio %.6f; KL %.3g (max %.3g), top-1 %.4f: %s\n",
			p.Predictions, p.Reference, p.Candidate, p.Ratio, p.KLDivergence, p.MaxKLDivergence, p.Top1Agreement, result)
	}
	if r.Passed {
		fmt.Fprintln(w, "PASSED")
	} else {
		fmt.Fprintln(w, "FAILED")
	}
}

func thresholdText(v float64) string {
	if v == 0 {
		return "unchecked"
	}
	return fmt.Sprintf("%g", v)
}
