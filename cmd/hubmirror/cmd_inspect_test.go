package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
)

// runCLI runs the command line in-process and returns stdout, stderr and
// the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"hubmirror"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

const sharedReference = "../../../shared/reference"

// expectedParams computes transformers' num_parameters() for the three
// families from the config alone, as an oracle independent of the reader.
func expectedParams(t *testing.T, dir string) int64 {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := arch.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	lin := func(in, out int) int64 { return int64(in*out + out) }
	switch {
	case c.Bert() != nil:
		b := c.Bert()
		h := b.HiddenSize
		emb := int64((b.VocabSize+b.MaxPositionEmbeddings+b.TypeVocabSize)*h + 2*h)
		layer := 4*lin(h, h) + lin(h, b.IntermediateSize) + lin(b.IntermediateSize, h) + int64(4*h)
		return emb + int64(b.NumHiddenLayers)*layer + lin(h, h)
	case c.Roberta() != nil:
		r := c.Roberta()
		h := r.HiddenSize
		emb := int64((r.VocabSize+r.MaxPositionEmbeddings+r.TypeVocabSize)*h + 2*h)
		layer := 4*lin(h, h) + lin(h, r.IntermediateSize) + lin(r.IntermediateSize, h) + int64(4*h)
		n := emb + int64(r.NumHiddenLayers)*layer
		switch a := c.Architecture(); {
		case strings.HasSuffix(a, "ForMaskedLM"): // dense, layer_norm, the decoder's bias (its weight is tied)
			n += lin(h, h) + int64(2*h+r.VocabSize)
		case strings.HasSuffix(a, "ForSequenceClassification"):
			n += lin(h, h) + lin(h, r.NumLabels)
		default:
			n += lin(h, h) // pooler
		}
		return n
	case c.DistilBert() != nil:
		d := c.DistilBert()
		h := d.Dim
		emb := int64((d.VocabSize+d.MaxPositionEmbeddings)*h + 2*h)
		layer := 4*lin(h, h) + lin(h, d.HiddenDim) + lin(d.HiddenDim, h) + int64(4*h)
		n := emb + int64(d.NLayers)*layer
		switch a := c.Architecture(); a {
		case "DistilBertForMaskedLM": // vocab_transform, vocab_layer_norm, the projector's bias (its weight is tied)
			n += lin(h, h) + int64(2*h+d.VocabSize)
		case "DistilBertForSequenceClassification":
			n += lin(h, h) + lin(h, d.NumLabels)
		}
		return n
	case c.MPNet() != nil: // BERT's layers without token types, one relative position bias table
		m := c.MPNet()
		h := m.HiddenSize
		emb := int64((m.VocabSize+m.MaxPositionEmbeddings)*h + 2*h)
		layer := 4*lin(h, h) + lin(h, m.IntermediateSize) + lin(m.IntermediateSize, h) + int64(4*h)
		n := emb + int64(m.NumHiddenLayers)*layer + int64(m.RelativeAttentionNumBuckets*m.NumAttentionHeads)
		switch a := c.Architecture(); a {
		case "MPNetForMaskedLM": // dense, layer_norm, the decoder's bias (its weight is tied)
			n += lin(h, h) + int64(2*h+m.VocabSize)
		case "MPNetForSequenceClassification":
			n += lin(h, h) + lin(h, m.NumLabels)
		default:
			n += lin(h, h) // pooler
		}
		return n
	case c.ModernBert() != nil: // biases and norm biases by the flags; no attn_norm in layer 0
		m := c.ModernBert()
		h, in := m.HiddenSize, m.IntermediateSize
		linb := func(in, out int, bias bool) int64 {
			if bias {
				return lin(in, out)
			}
			return int64(in * out)
		}
		norm := linb(1, h, m.NormBias)
		layer := linb(h, 3*h, m.AttentionBias) + linb(h, h, m.AttentionBias) + linb(h, 2*in, m.MLPBias) + linb(in, h, m.MLPBias) + 2*norm
		// Embedding and its norm, the layers less layer 0's attn_norm, final_norm.
		n := int64(m.VocabSize*h) + norm + int64(m.NumHiddenLayers)*layer - norm + norm
		switch a := c.Architecture(); a {
		case "ModernBertForMaskedLM": // the prediction head, the decoder (its weight tied or not)
			n += linb(h, h, m.ClassifierBias) + norm + linb(h, m.VocabSize, m.DecoderBias)
			if m.TieWordEmbeddings {
				n -= int64(h * m.VocabSize)
			}
		case "ModernBertForSequenceClassification":
			n += linb(h, h, m.ClassifierBias) + norm + lin(h, m.NumLabels)
		}
		return n
	case c.GPT2() != nil:
		g := c.GPT2()
		h := g.NEmbd
		layer := lin(h, 3*h) + lin(h, h) + lin(h, g.NInner) + lin(g.NInner, h) + int64(4*h)
		return int64((g.VocabSize+g.NPositions)*h) + int64(g.NLayer)*layer + int64(2*h)
	case c.Llama() != nil:
		l := c.Llama()
		h, kv := l.HiddenSize, l.NumKeyValueHeads*l.HeadDim
		layer := int64(h*l.NumAttentionHeads*l.HeadDim*2+2*h*kv) + int64(3*h*l.IntermediateSize) + int64(2*h)
		if l.AttentionBias {
			layer += int64(l.NumAttentionHeads*l.HeadDim + 2*kv)
		}
		n := int64(l.VocabSize*h) + int64(l.NumHiddenLayers)*layer + int64(h)
		if !l.TieWordEmbeddings {
			n += int64(l.VocabSize * h)
		}
		return n
	case c.Gemma() != nil: // Llama's layers; Gemma 2 and 3 two more norms, Gemma 3 q_norm and k_norm
		g := c.Gemma()
		h, q, kv := g.HiddenSize, g.NumAttentionHeads*g.HeadDim, g.NumKeyValueHeads*g.HeadDim
		layer := int64(2*h*q+2*h*kv) + int64(3*h*g.IntermediateSize) + int64(2*h)
		if g.Generation > 1 {
			layer += int64(2 * h)
		}
		if g.Generation == 3 {
			layer += int64(2 * g.HeadDim)
		}
		n := int64(g.VocabSize*h) + int64(g.NumHiddenLayers)*layer + int64(h)
		if !g.TieWordEmbeddings {
			n += int64(g.VocabSize * h)
		}
		return n
	case c.Qwen3() != nil: // Llama's layers, q_norm and k_norm; attention_bias also on o_proj
		l := c.Qwen3()
		h, q, kv := l.HiddenSize, l.NumAttentionHeads*l.HeadDim, l.NumKeyValueHeads*l.HeadDim
		layer := int64(2*h*q+2*h*kv) + int64(3*h*l.IntermediateSize) + int64(2*h) + int64(2*l.HeadDim)
		if l.AttentionBias {
			layer += int64(q + 2*kv + h)
		}
		n := int64(l.VocabSize*h) + int64(l.NumHiddenLayers)*layer + int64(h)
		if !l.TieWordEmbeddings {
			n += int64(l.VocabSize * h)
		}
		return n
	case c.Phi3() != nil: // Llama's layers, q, k and v in one qkv_proj and gate and up in one gate_up_proj
		l := c.Phi3()
		h, q, kv := l.HiddenSize, l.NumAttentionHeads*l.HeadDim, l.NumKeyValueHeads*l.HeadDim
		layer := int64(h*(q+2*kv)+q*h) + int64(h*2*l.IntermediateSize+l.IntermediateSize*h) + int64(2*h)
		n := int64(l.VocabSize*h) + int64(l.NumHiddenLayers)*layer + int64(h)
		if !l.TieWordEmbeddings {
			n += int64(l.VocabSize * h)
		}
		return n
	}
	if p, ok := c.Params.(interface{ ParamCount() int64 }); ok { // the MoE families: every expert counted
		return p.ParamCount()
	}
	t.Fatalf("%s: no family", dir)
	return 0
}

func TestInspectReference(t *testing.T) {
	if _, err := os.Stat(sharedReference); err != nil {
		t.Skip("no ../shared/reference")
	}
	for _, c := range []struct {
		name string
		tied string
	}{
		{"bert-tiny", ""},
		{"gpt2-tiny", "transformer.wte.weight = lm_head.weight (shared storage)"},
		{"llama-tiny", "lm_head.weight = model.embed_tokens.weight (tie_word_embeddings; not in the file)"},
	} {
		dir := filepath.Join(sharedReference, c.name)
		out, stderr, code := runCLI(t, "inspect", "--json", dir)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.name, code, stderr)
		}
		var s formats.Summary
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("%s: %v\n%s", c.name, err, out)
		}
		if want := expectedParams(t, dir); s.Parameters != want {
			t.Errorf("%s: %d parameters, want %d", c.name, s.Parameters, want)
		}
		human, _, code := runCLI(t, "inspect", dir)
		if code != 0 {
			t.Fatalf("%s: human output exit %d", c.name, code)
		}
		if c.tied != "" && !strings.Contains(human, c.tied) {
			t.Errorf("%s: tied group %q not reported:\n%s", c.name, c.tied, human)
		}
		if c.tied == "" && !strings.Contains(human, "tied groups:  none") {
			t.Errorf("%s: tied groups reported:\n%s", c.name, human)
		}
	}
}

func TestInspectErrors(t *testing.T) {
	if _, _, code := runCLI(t, "inspect"); code != exitUsage {
		t.Errorf("no argument: exit %d, want %d", code, exitUsage)
	}
	if _, _, code := runCLI(t, "inspect", "--no-such-flag", "x"); code != exitUsage {
		t.Errorf("bad flag: exit %d, want %d", code, exitUsage)
	}
	_, stderr, code := runCLI(t, "inspect", filepath.Join(t.TempDir(), "missing"))
	if code != exitError || !strings.Contains(stderr, "missing") {
		t.Errorf("missing model: exit %d: %s", code, stderr)
	}
	empty := t.TempDir()
	_, stderr, code = runCLI(t, "inspect", empty)
	if code != exitError || !strings.Contains(stderr, "no weight files") {
		t.Errorf("empty dir: exit %d: %s", code, stderr)
	}
}

// A hostile pickle is refused with exit 1 and an error naming the global,
// and its payload does not run.
func TestInspectHostilePickle(t *testing.T) {
	for file, global := range map[string]string{
		"os_system.pkl":                "os.system",
		"builtins_eval.pkl":            "builtins.eval",
		"zip_hidden_in_state_dict.bin": "",
	} {
		path := filepath.Join("../../formats/torch/testdata/hostile", file)
		_, stderr, code := runCLI(t, "inspect", path)
		if code != exitError {
			t.Errorf("%s: exit %d, want %d", file, code, exitError)
		}
		if !strings.Contains(stderr, "forbidden pickle global "+global) || !strings.Contains(stderr, file) {
			t.Errorf("%s: error does not name the global and the file: %s", file, stderr)
		}
	}
}

func TestInspectProjectFixtures(t *testing.T) {
	dirs, _ := filepath.Glob("../../testdata/models/*")
	n := 0
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
			continue
		}
		n++
		out, stderr, code := runCLI(t, "inspect", "--json", dir)
		if code != 0 {
			t.Errorf("%s: exit %d: %s", dir, code, stderr)
			continue
		}
		var s formats.Summary
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatal(err)
		}
		want := expectedParams(t, dir)
		for _, x := range s.Tensors { // heads that the config's architecture does not use (BertForPreTraining's cls.*)
			if strings.HasPrefix(x.Name, "cls.") {
				n := int64(1)
				for _, d := range x.Shape {
					n *= d
				}
				want += n
			}
		}
		if strings.HasPrefix(filepath.Base(dir), "bert-cls") { // BertForSequenceClassification: classifier.weight and .bias
			c, _ := arch.ParseConfig(mustRead(t, filepath.Join(dir, "config.json")))
			want += int64(c.Bert().NumLabels * (c.Bert().HiddenSize + 1))
		}
		want += decoderClassifierParams(t, dir)
		if s.Parameters != want {
			t.Errorf("%s: %d parameters, want %d", dir, s.Parameters, want)
		}
		// The masked-LM decoders the files leave out, tied to the embedding.
		wantTied := map[string]string{
			"roberta-mlm-st":    "lm_head.decoder.weight=roberta.embeddings.word_embeddings.weight",
			"distilbert-mlm-st": "vocab_projector.weight=distilbert.embeddings.word_embeddings.weight",
			"mpnet-mlm-st":      "lm_head.decoder.weight=mpnet.embeddings.word_embeddings.weight",
			"modernbert-mlm-st": "decoder.weight=model.embeddings.tok_embeddings.weight",
		}[filepath.Base(dir)]
		if wantTied != "" && (len(s.ConfigTied) != 1 || s.ConfigTied[0] != wantTied) {
			t.Errorf("%s: config-tied %v, want %s", dir, s.ConfigTied, wantTied)
		}
	}
	if n < 10 {
		t.Fatalf("only %d fixture models", n)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Flags before and after the positional arguments, repeatable ones
// included, all count.
func TestInterspersedFlags(t *testing.T) {
	var got []string
	register(&cli.Command{
		Name:  "test-interspersed",
		Flags: []cli.Flag{&cli.StringSliceFlag{Name: "p"}, &cli.BoolFlag{Name: "b"}, &cli.IntFlag{Name: "n"}},
		Action: func(c *cli.Context) error {
			got = append(append(c.StringSlice("p"), c.Args().Slice()...), fmt.Sprint(c.Bool("b"), c.Int("n")))
			return nil
		},
	})
	defer func() { commands = commands[:len(commands)-1] }()
	_, stderr, code := runCLI(t, "test-interspersed", "--p", "*.json", "--p", "a b", "ARG1", "--n", "3", "ARG2", "--b", "--p", "c")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := `[*.json a b c ARG1 ARG2 true 3]`; fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
	if _, _, code := runCLI(t, "test-interspersed", "ARG", "--nope"); code != exitUsage {
		t.Errorf("unknown flag after an argument: exit %d", code)
	}
}

// A mirror directory written without file:// gets a hint (defect 15).
func TestInspectMirrorHint(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := runCLI(t, "inspect", dir+"#org/name@main")
	if code != exitError || !strings.Contains(stderr, "file://"+filepath.ToSlash(dir)+"#org/name@main") {
		t.Errorf("exit %d, %q; want a hint at file://", code, stderr)
	}
}

// TestInspectQuantizedParams: an int8 model has the parameters of its
// original: the int8 weights count as the weights they replace, their
// scales do not count.
func TestInspectQuantizedParams(t *testing.T) {
	params := func(dir string) int64 {
		t.Helper()
		out, stderr, code := runCLI(t, "inspect", "--json", dir)
		if code != 0 {
			t.Fatalf("inspect %s: exit %d: %s", dir, code, stderr)
		}
		var s formats.Summary
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatal(err)
		}
		return s.Parameters
	}
	for _, c := range []struct{ model, group string }{
		{"llama-tiny-st", "0"}, {"llama-tiny-st", "16"}, {"gpt2-lm-bin", "0"}, {"bert-cls-st", "8"},
	} {
		src := filepath.Join(fixtureModels, c.model)
		dst := filepath.Join(t.TempDir(), "int8")
		if _, stderr, code := runCLI(t, "quantize", src, dst, "--scheme", "int8", "--group-size", c.group, "--force"); code != 0 {
			t.Fatalf("quantize %s: exit %d: %s", c.model, code, stderr)
		}
		if got, want := params(dst), params(src); got != want {
			t.Errorf("%s (group %s): int8 model has %d parameters, the original %d", c.model, c.group, got, want)
		}
	}
}
