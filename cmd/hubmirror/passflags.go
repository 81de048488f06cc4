package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/forward"
)

// validationFlags are the flags of every command that validates: the
// inputs of the comparison and overrides of single thresholds.
func validationFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Uint64Flag{Name: "seed", Usage: "seed of the validation input ids"},
		&cli.IntFlag{Name: "sequences", Value: forward.DefaultSequences, Usage: fmt.Sprintf("number of validation sequences (at most %d)", forward.MaxSequences)},
		&cli.StringFlag{Name: "lengths", Value: joinIntList(forward.DefaultLengths), Usage: fmt.Sprintf("comma-separated sequence lengths, used in turn (at most %d; cut to the models' positions)", forward.MaxLength)},
		&cli.Float64Flag{Name: "max-abs", Usage: "override: largest allowed absolute error (0 disables the check)"},
		&cli.Float64Flag{Name: "mean-abs", Usage: "override: largest allowed mean absolute error"},
		&cli.Float64Flag{Name: "min-cosine", Usage: "override: smallest allowed cosine similarity of a position's vector"},
		&cli.Float64Flag{Name: "min-top1", Usage: "override: smallest allowed fraction of positions whose top-1 logit agrees"},
		&cli.Float64Flag{Name: "max-kl", Usage: "override: largest allowed mean KL divergence of the logits' softmax"},
		&cli.Float64Flag{Name: "max-ppl-ratio", Usage: "override: largest allowed ratio of the candidate's perplexity on the text to the reference's (causal LMs; at least 1, 0 disables)"},
		&cli.Float64Flag{Name: "max-text-kl", Usage: "override: largest allowed mean KL divergence of the next-token distributions on the text (causal LMs)"},
		&cli.Float64Flag{Name: "min-text-top1", Usage: "override: smallest allowed fraction of the text's positions whose most likely next token agrees (causal LMs)"},
		&cli.BoolFlag{Name: "no-text", Usage: "validate on random ids only, not on text, even when the reference has a tokenizer"},
		&cli.StringFlag{Name: "text-file", Usage: "also validate on this UTF-8 text (encoded with the reference model's tokenizer; the first " + fmt.Sprint(forward.MaxTextTokens) + " tokens of it and the built-in set)"},
	}
}

// maxTextFile bounds what --text-file reads: validation uses at most
// forward.MaxTextTokens tokens, which no tokenizer makes of more bytes.
const maxTextFile = 4 << 20

// readTextFile reads --text-file: UTF-8 text, of which the first
// maxTextFile bytes are kept (cut at a character boundary).
func readTextFile(path string) (forward.Text, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return forward.Text{}, usageErrorf("--text-file %s: no such file", path)
		}
		return forward.Text{}, fmt.Errorf("--text-file: %w", err)
	}
	defer f.Close()
	buf := make([]byte, maxTextFile)
	n, err := readFull(f, buf)
	if err != nil {
		return forward.Text{}, fmt.Errorf("--text-file %s: %w", path, err)
	}
	data := buf[:n]
	if n == maxTextFile { // cut: drop a character split at the end
		for i := 0; i < utf8.UTFMax && len(data) > 0 && !utf8.Valid(data); i++ {
			data = data[:len(data)-1]
		}
	}
	switch {
	case !utf8.Valid(data):
		return forward.Text{}, usageErrorf("--text-file %s: not UTF-8 text", path)
	case strings.TrimSpace(string(data)) == "":
		return forward.Text{}, usageErrorf("--text-file %s: empty", path)
	}
	return forward.Text{Name: path, Text: string(data)}, nil
}

// readFull reads until buf is full or the reader ends.
func readFull(r io.Reader, buf []byte) (int, error) {
	n, err := io.ReadFull(r, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return n, err
}

// thresholdsFunc returns the limits of a kind of validation.
type thresholdsFunc func(forward.Kind) (forward.Thresholds, error)

// validationSettings reads validationFlags: the inputs, and the thresholds
// of any kind with the flags' overrides applied.
func validationSettings(c *cli.Context) (forward.ValidateOptions, thresholdsFunc, error) {
	var vo forward.ValidateOptions
	lengths, err := parseIntList("lengths", c.String("lengths"))
	if err != nil {
		return vo, nil, err
	}
	for _, n := range lengths {
		if n == 0 {
			return vo, nil, usageErrorf("--lengths: a sequence length must be positive")
		}
		if n > forward.MaxLength {
			return vo, nil, usageErrorf("--lengths: %d is longer than %d", n, forward.MaxLength)
		}
	}
	if n := c.Int("sequences"); n < 1 || n > forward.MaxSequences {
		return vo, nil, usageErrorf("--sequences must be 1 to %d, got %d", forward.MaxSequences, n)
	}
	overrides, err := thresholdOverrides(c)
	if err != nil {
		return vo, nil, err
	}
	thresholds := func(kind forward.Kind) (forward.Thresholds, error) {
		th, err := forward.DefaultThresholds(kind)
		if err != nil {
			return th, err
		}
		for name, p := range map[string]*float64{"max-abs": &th.MaxAbsError, "mean-abs": &th.MeanAbsError,
			"min-cosine": &th.MinCosine, "min-top1": &th.MinTop1, "max-kl": &th.MaxKL, "max-ppl-ratio": &th.MaxPerplexityRatio,
			"max-text-kl": &th.MaxTextKL, "min-text-top1": &th.MinTextTop1} {
			if v, ok := overrides[name]; ok {
				*p = v
			}
		}
		return th, nil
	}
	vo = forward.ValidateOptions{Seed: c.Uint64("seed"), Sequences: c.Int("sequences"), Lengths: lengths}
	vo.NoText = c.Bool("no-text")
	if p := c.String("text-file"); p != "" {
		if vo.NoText {
			return vo, nil, usageErrorf("--text-file and --no-text: give one")
		}
		tx, err := readTextFile(p)
		if err != nil {
			return vo, nil, err
		}
		vo.Texts = []forward.Text{tx}
	}
	return vo, thresholds, nil
}

// thresholdOverrides reads the threshold flags that are set. Every one is
// a finite number of at least 0 (0 disables its check); a cosine or a
// top-1 agreement is at most 1, a perplexity ratio at least 1 (or 0). NaN is refused: it would fail no
// comparison, and so switch the check off.
func thresholdOverrides(c *cli.Context) (map[string]float64, error) {
	overrides := map[string]float64{}
	for _, name := range []string{"max-abs", "mean-abs", "min-cosine", "min-top1", "max-kl", "max-ppl-ratio", "max-text-kl", "min-text-top1"} {
		if !c.IsSet(name) {
			continue
		}
		v := c.Float64(name)
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			return nil, usageErrorf("--%s %v: want a finite number", name, v)
		case v < 0:
			return nil, usageErrorf("--%s %v is negative", name, v)
		case (name == "min-cosine" || name == "min-top1" || name == "min-text-top1") && v > 1:
			return nil, usageErrorf("--%s %v: want at most 1 (a cosine or agreement above 1 fails every model)", name, v)
		case name == "max-ppl-ratio" && v != 0 && v < 1:
			return nil, usageErrorf("--%s %v: want at least 1 (0 disables the check; below 1 it fails a model compared with itself)", name, v)
		}
		overrides[name] = v
	}
	return overrides, nil
}

// passFlags are the flags that convert, quantize, prune and mirror share:
// how the artifact is written and how it is validated.
func passFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "shard-size", Value: "5GB", Usage: "largest safetensors shard (5GB = 5*10^9 bytes; also MB, GiB, ...); 0 for one file"},
		&cli.BoolFlag{Name: "force", Usage: "publish even when validation fails, with validation.json marked failed (exit code stays 3)"},
	}
	return append(append(flags, validationFlags()...), forwardThreadsFlag, jsonFlag)
}

// buildOptions reads the shared flags; kind sets the default thresholds.
func buildOptions(c *cli.Context, kind forward.Kind) (artifact.Options, error) {
	opts, thresholds, err := buildSettings(c)
	if err != nil {
		return opts, err
	}
	th, err := thresholds(kind)
	if err != nil {
		return opts, err
	}
	opts.Validate.Kind, opts.Validate.Thresholds = kind, &th
	return opts, nil
}

// buildSettings reads passFlags into artifact options without a kind, and
// the thresholds for any kind.
func buildSettings(c *cli.Context) (artifact.Options, thresholdsFunc, error) {
	var opts artifact.Options
	size, err := parseSize("shard-size", c.String("shard-size"), 0, math.MaxInt64)
	if err != nil {
		return opts, nil, err
	}
	threads, err := threadsFlag(c)
	if err != nil {
		return opts, nil, err
	}
	vo, thresholds, err := validationSettings(c)
	if err != nil {
		return opts, nil, err
	}
	opts = artifact.Options{ShardSize: size, Force: c.Bool("force"), Threads: threads, Validate: vo}
	if showProgress(c) {
		w := c.App.ErrWriter
		opts.Progress = func(stage string) { fmt.Fprintf(w, "%s...\n", stage) }
	}
	return opts, thresholds, nil
}

// reportBuild prints what an artifact build did.
func reportBuild(w io.Writer, asJSON bool, res *artifact.Result, err error) error {
	if res != nil {
		if asJSON {
			if jerr := writeJSON(w, struct {
				Dir       string `json:"dir"`
				Published bool   `json:"published"`
				*artifact.Document
			}{res.Dir, res.Published, res.Document}); jerr != nil {
				return jerr
			}
		} else {
			printBuild(w, res)
		}
	}
	return err
}

func printBuild(w io.Writer, res *artifact.Result) {
	d := res.Document
	fmt.Fprintf(w, "%s: %s -> %s\n", d.Pass, d.Source, res.Dir)
	fmt.Fprintf(w, "files: %s\n", strings.Join(d.Files, ", "))
	if d.Validation != nil {
		printValidation(w, validateOptions{Reference: d.Source, Candidate: res.Dir}, d.Validation)
	} else if d.Error != "" {
		fmt.Fprintf(w, "validation could not run: %s\n", d.Error)
	} else if d.Unvalidated != "" {
		fmt.Fprintf(w, "not validated by the forward pass: %s\n", d.Unvalidated)
	}
	switch {
	case res.Published && d.Unvalidated != "":
		fmt.Fprintf(w, "published %s (not validated by the forward pass; %s says why)\n", res.Dir, artifact.ReportFile)
	case res.Published && d.Passed:
		fmt.Fprintf(w, "published %s (validation passed; report in %s)\n", res.Dir, artifact.ReportFile)
	case res.Published:
		fmt.Fprintf(w, "published %s with a FAILED report (--force)\n", res.Dir)
	default:
		fmt.Fprintf(w, "validation FAILED: nothing written at %s\n", res.Dir)
	}
}
