package forward

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/weights"
)

// headless returns the model of the fixture dir without the tensors under
// head, its config.json naming class: a masked-LM model read back from a
// file that holds its body only.
func headless(t *testing.T, dir, head, class string) *Model {
	t.Helper()
	g := openGraph(t, dir)
	out := weights.NewGraph()
	for _, x := range g.Tensors() {
		if !strings.HasPrefix(x.Name, head) {
			if err := out.Add(x); err != nil {
				t.Fatal(err)
			}
		}
	}
	out.Config = []byte(strings.Replace(string(g.Config), `"RobertaForMaskedLM"`, `"`+class+`"`, 1))
	m, err := Load(out, nil, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestValidatePartialCandidate: with PartialCandidate, a candidate that
// is the reference's body without its head (another class of its family)
// is compared on the outputs it has, the others listed as not compared,
// and without it, it is refused. A partial candidate of another family,
// without last_hidden_state, with an output the reference lacks or logits
// of another head is refused.
func TestValidatePartialCandidate(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(fixtures, "roberta-mlm-st")
	ref := loadModel(t, dir, 1)
	body := headless(t, dir, "lm_head.", "RobertaModel")
	if _, err := Validate(ctx, ref, body, ValidateOptions{NoText: true}); !errors.Is(err, ErrIncompatible) {
		t.Errorf("without PartialCandidate: %v", err)
	}
	rep, err := Validate(ctx, ref, body, ValidateOptions{NoText: true, Kind: KindExact, PartialCandidate: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || !slices.Equal(rep.NotCompared, []string{OutputLogits}) || len(rep.Outputs) != 1 || rep.Outputs[0].Name != OutputLastHiddenState {
		t.Errorf("partial: passed %v, not compared %v, outputs %+v", rep.Passed, rep.NotCompared, rep.Outputs)
	}
	// A classifier's logits are not a masked-LM head's.
	cls := loadModel(t, filepath.Join(fixtures, "roberta-cls-bin"), 1)
	if _, err := Validate(ctx, ref, cls, ValidateOptions{NoText: true, PartialCandidate: true}); !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "labels") {
		t.Errorf("classifier against masked LM: %v", err)
	}

	ri := ref.Info()
	for _, c := range []struct {
		name string
		ci   func(i Info) Info
		want string
	}{
		{"family", func(i Info) Info { i.Family = "bert"; return i }, "candidate is"},
		{"no hidden states", func(i Info) Info { i.Outputs = []string{OutputLogits}; return i }, "no last_hidden_state"},
		{"extra output", func(i Info) Info { i.Outputs = []string{OutputLastHiddenState, OutputPooler}; return i }, "pooler_output is not the reference's"},
	} {
		_, err := Validate(ctx, ref, fakeRunner{info: c.ci(ri)}, ValidateOptions{NoText: true, PartialCandidate: true})
		if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
