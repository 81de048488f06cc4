package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/source"
	"github.com/hubmirror/hubmirror/tokenizer"
	"github.com/hubmirror/hubmirror/weights"
)

// forwardThreadsFlag is the --threads flag of the commands that run models.
var forwardThreadsFlag = &cli.IntFlag{Name: "threads", Usage: "goroutines the forward pass uses (0: one per CPU)"}

func init() {
	register(&cli.Command{
		Name:      "forward",
		Usage:     "run the native forward pass on token ids (batch 1)",
		ArgsUsage: "MODEL",
		Description: `Runs MODEL (BERT, RoBERTa/XLM-R, DistilBERT, GPT-2 or Llama family) on the ids given with --ids, with a full
attention mask and token type 0, and prints each output's shape, range and, for logits,
the top-1 id per position. --out writes a safetensors file with input_ids (I64 [1, n])
and the outputs (F32): last_hidden_state, pooler_output (BERT, RoBERTa with a pooler) and
logits (when the model has an LM, masked-LM or classification head), and sentence_embedding
for a sentence-transformers model (modules.json: CLS, max, mean, mean-sqrt-len,
weighted-mean or last-token pooling as 1_Pooling/config.json says, then its Dense
modules, L2-normalized when it has a Normalize module). MODEL may be a GGUF file (or a
directory holding one) of a decoder family quantize --format gguf writes: read with the
config.json beside it, else with one made from its metadata, its matrices kept in their
ggml blocks (the kernels decode them panel by panel).` + forwardTextHelp + modelHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ids", Usage: "comma-separated token ids, e.g. 1,2,3 (this or --text)"},
			&cli.StringFlag{Name: "text", Usage: "encode `TEXT` with the model's tokenizer and run on its ids"},
			&cli.StringFlag{Name: "out", Usage: "write input_ids and the outputs to this safetensors `FILE`"},
			forwardThreadsFlag,
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) != 1 {
				return usageErrorf("forward takes one MODEL, got %d arguments", len(args))
			}
			var ids []int
			var text string
			switch {
			case c.IsSet("ids") && c.IsSet("text"):
				return usageErrorf("give --ids or --text, not both")
			case c.IsSet("text"):
				text = c.String("text")
			case c.IsSet("ids"):
				var err error
				if ids, err = parseIntList("ids", c.String("ids")); err != nil {
					return err
				}
			default:
				return usageErrorf("forward needs --ids (e.g. --ids 1,2,3) or --text")
			}
			threads, err := threadsFlag(c)
			if err != nil {
				return err
			}
			opts := forwardOptions{Model: args[0], IDs: ids, Text: text, Out: c.String("out"), Threads: threads, JSON: c.Bool("json")}
			return runForward(c.Context, opts, c.App.Writer)
		},
	})
}

type forwardOptions struct {
	Model   string
	IDs     []int
	Text    string // --text, encoded into IDs
	Out     string
	Threads int
	JSON    bool
}

// loadForwardModel opens MODEL (see openModel) and builds its forward pass.
// The caller closes the returned Graph after the last use of the Model.
func loadForwardModel(ctx context.Context, spec string, threads int) (*forward.Model, *weights.Graph, error) {
	g, cfg, err := openModel(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	m, err := forward.Load(g, cfg, forward.Options{Threads: threads})
	if err != nil {
		g.Close()
		return nil, nil, fmt.Errorf("%s: %w", spec, err)
	}
	return m, g, nil
}

// forwardTextHelp is the forward command's help on --text.
const forwardTextHelp = `

--text T runs instead on T encoded by the model's own tokenizer (tokenizer.json, else
vocab.txt or vocab.json + merges.txt), special tokens added as hubmirror tokenize adds them.`

// textIDs encodes --text with the tokenizer of MODEL, special tokens added.
func textIDs(g *weights.Graph, spec, text string) ([]int, error) {
	if len(g.Files) == 0 {
		return nil, fmt.Errorf("%s: %w: the model has no files", spec, tokenizer.ErrNoTokenizer)
	}
	// The tokenizer beside the weights just read: a model in a mirror is
	// resolved (and copied) once.
	tok, err := source.LoadTokenizer(filepath.Dir(g.Files[0]), false)
	if errors.Is(err, tokenizer.ErrNoTokenizer) {
		return nil, fmt.Errorf("%s: %w (no tokenizer.json, vocab.txt or vocab.json + merges.txt)", spec, tokenizer.ErrNoTokenizer)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	enc, err := tok.Encode(text, true)
	if err != nil {
		return nil, fmt.Errorf("--text: %w", err)
	}
	if len(enc.IDs) == 0 {
		return nil, fmt.Errorf("--text: the tokenizer of %s encodes %q to no tokens", spec, text)
	}
	return enc.IDs, nil
}

// outputSummary describes one output in the forward command's report.
type outputSummary struct {
	Name  string    `json:"name"`
	Shape []int     `json:"shape"`
	Min   float32   `json:"min"`
	Max   float32   `json:"max"`
	Mean  float64   `json:"mean"`
	First []float32 `json:"first"`
	// Top1 is the id of the largest logit at each position (logits only).
	Top1 []int `json:"top1,omitempty"`
}

type forwardReport struct {
	Model     string          `json:"model"`
	Info      forward.Info    `json:"info"`
	Text      string          `json:"text,omitempty"`
	InputIDs  []int           `json:"input_ids"`
	Outputs   []outputSummary `json:"outputs"`
	Threads   int             `json:"threads"`
	ElapsedMS float64         `json:"elapsed_ms"`
	Out       string          `json:"out,omitempty"`
}

func runForward(ctx context.Context, opts forwardOptions, stdout io.Writer) error {
	m, g, err := loadForwardModel(ctx, opts.Model, opts.Threads)
	if err != nil {
		return err
	}
	defer g.Close()
	if err := m.LoadPooling(g); err != nil {
		return fmt.Errorf("%s: %w", opts.Model, err)
	}
	if opts.Text != "" && opts.IDs == nil {
		if opts.IDs, err = textIDs(g, opts.Model, opts.Text); err != nil {
			return err
		}
	}
	start := time.Now()
	out, err := m.Run(ctx, opts.IDs)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Model, err)
	}
	elapsed := time.Since(start)
	rep := forwardReport{Model: opts.Model, Info: m.Info(), Text: opts.Text, InputIDs: out.InputIDs, Threads: m.Threads(),
		ElapsedMS: float64(elapsed.Microseconds()) / 1000}
	for i := range out.Tensors {
		rep.Outputs = append(rep.Outputs, summarizeOutput(&out.Tensors[i]))
	}
	if opts.Out != "" {
		if err := forward.WriteOutputs(opts.Out, out, m.Info()); err != nil {
			return err
		}
		rep.Out = opts.Out
	}
	if opts.JSON {
		return writeJSON(stdout, rep)
	}
	printForward(stdout, &rep)
	return nil
}

func summarizeOutput(o *forward.Output) outputSummary {
	s := outputSummary{Name: o.Name, Shape: o.Shape, Min: float32(math.Inf(1)), Max: float32(math.Inf(-1))}
	var sum float64
	for _, v := range o.Data {
		s.Min = min(s.Min, v)
		s.Max = max(s.Max, v)
		sum += float64(v)
	}
	if len(o.Data) > 0 {
		s.Mean = sum / float64(len(o.Data))
	}
	s.First = o.Data[:min(8, len(o.Data))]
	if o.Name == forward.OutputLogits {
		row := o.Shape[len(o.Shape)-1]
		for r := 0; r+row <= len(o.Data); r += row {
			best := r
			for j := r; j < r+row; j++ {
				if o.Data[j] > o.Data[best] {
					best = j
				}
			}
			s.Top1 = append(s.Top1, best-r)
		}
	}
	return s
}

func printForward(w io.Writer, r *forwardReport) {
	i := r.Info
	fmt.Fprintf(w, "model:        %s\n", r.Model)
	fmt.Fprintf(w, "architecture: %s (%s family, %d layers, hidden %d, vocab %d, %v weights)\n",
		i.Architecture, i.Family, i.Layers, i.HiddenSize, i.VocabSize, i.WeightDType)
	if r.Text != "" {
		fmt.Fprintf(w, "text:         %q\n", r.Text)
	}
	fmt.Fprintf(w, "input_ids:    %v\n", r.InputIDs)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, o := range r.Outputs {
		fmt.Fprintf(tw, "%s\t%v\tmin %.6g\tmax %.6g\tmean %.6g", o.Name, o.Shape, o.Min, o.Max, o.Mean)
		if o.Top1 != nil {
			fmt.Fprintf(tw, "\ttop-1 %v", o.Top1)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintf(w, "time:         %.3f ms on %d threads\n", r.ElapsedMS, r.Threads)
	if r.Out != "" {
		fmt.Fprintf(w, "wrote %s\n", r.Out)
	}
}
