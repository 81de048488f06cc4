package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

type validateJSON struct {
	Passed     bool               `json:"passed"`
	Kind       string             `json:"kind"`
	Seed       uint64             `json:"seed"`
	Lengths    []int              `json:"lengths"`
	Thresholds map[string]float64 `json:"thresholds"`
	Outputs    []struct {
		Name          string  `json:"name"`
		MaxAbsError   float64 `json:"max_abs_error"`
		Cosine        float64 `json:"cosine_similarity"`
		Top1Agreement float64 `json:"top1_agreement"`
		KLDivergence  float64 `json:"kl_divergence"`
		Passed        bool    `json:"passed"`
	} `json:"outputs"`
	Failures []string `json:"failures"`
}

func runValidateJSON(t *testing.T, args ...string) (validateJSON, string, int) {
	t.Helper()
	stdout, stderr, code := runCLI(t, append(append([]string{"validate"}, args...), "--json")...)
	var rep validateJSON
	if code == 0 || code == 3 {
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("%v: stdout is not one JSON document: %v\n%s", args, err, stdout)
		}
	}
	return rep, stderr, code
}

func TestValidateCommand(t *testing.T) {
	ref := filepath.Join(forwardFixtures, "llama-tiny-st")
	f16 := filepath.Join(forwardFixtures, "llama-tiny-f16-st")
	bf16 := filepath.Join(forwardFixtures, "llama-tiny-bf16-st")

	rep, stderr, code := runValidateJSON(t, ref, f16)
	if code != 0 || !rep.Passed || rep.Kind != "f16" || len(rep.Outputs) != 2 || rep.Outputs[1].Name != "logits" {
		t.Fatalf("f16: exit %d %s %+v", code, stderr, rep)
	}
	if l := rep.Outputs[1]; l.MaxAbsError == 0 || l.Top1Agreement < 0.95 || l.KLDivergence == 0 || l.Cosine < 0.999 {
		t.Errorf("f16 logits metrics: %+v", l)
	}
	again, _, _ := runValidateJSON(t, ref, f16)
	if again.Outputs[1] != rep.Outputs[1] {
		t.Errorf("two runs with the same seed differ: %+v, %+v", rep.Outputs[1], again.Outputs[1])
	}
	other, _, _ := runValidateJSON(t, ref, f16, "--seed", "5", "--sequences", "2", "--lengths", "9")
	if other.Seed != 5 || len(other.Lengths) != 2 || other.Lengths[0] != 9 || other.Outputs[1] == rep.Outputs[1] {
		t.Errorf("--seed 5 --sequences 2 --lengths 9: %+v", other)
	}

	if rep, _, code := runValidateJSON(t, ref, bf16); code != 0 || rep.Kind != "bf16" || !rep.Passed {
		t.Errorf("bf16: exit %d %+v", code, rep)
	}
	if rep, _, code := runValidateJSON(t, ref, ref); code != 0 || rep.Kind != "exact" || rep.Outputs[0].MaxAbsError != 0 {
		t.Errorf("model against itself: exit %d %+v", code, rep)
	}

	// f16 judged as an exact conversion fails with exit 3, and still
	// prints its report.
	rep, stderr, code = runValidateJSON(t, ref, f16, "--kind", "exact")
	if code != 3 || rep.Passed || len(rep.Failures) == 0 || !strings.Contains(stderr, "validation failed") {
		t.Errorf("f16 as exact: exit %d, stderr %q, %+v", code, stderr, rep)
	}
	// Overrides loosen single limits of the kind.
	rep, stderr, code = runValidateJSON(t, ref, f16, "--kind", "exact", "--max-abs", "0.1", "--mean-abs", "0",
		"--max-kl", "1e-3", "--min-cosine", "0.999", "--min-top1", "0.9", "--max-text-kl", "1e-3", "--min-text-top1", "0.99")
	if code != 0 || rep.Thresholds["max_abs_error"] != 0.1 || rep.Thresholds["min_top1_agreement"] != 0.9 ||
		rep.Thresholds["max_text_kl_divergence"] != 1e-3 || rep.Thresholds["min_text_top1_agreement"] != 0.99 {
		t.Errorf("overrides: exit %d %s %+v", code, stderr, rep)
	}
	if _, present := rep.Thresholds["mean_abs_error"]; present {
		t.Errorf("--mean-abs 0 should disable the limit: %+v", rep.Thresholds)
	}
	// A tight override fails a kind's defaults.
	if _, _, code := runValidateJSON(t, ref, bf16, "--min-cosine", "0.9999999"); code != 3 {
		t.Errorf("tight cosine: exit %d", code)
	}

	// Human output.
	stdout, _, code := runCLI(t, "validate", ref, f16)
	if code != 0 || !strings.Contains(stdout, "PASSED") || !strings.Contains(stdout, "logits") {
		t.Errorf("text output: exit %d\n%s", code, stdout)
	}
}

func TestValidateCommandErrors(t *testing.T) {
	ref := filepath.Join(forwardFixtures, "llama-tiny-st")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{ref}, 2, "REFERENCE and CANDIDATE"},
		{[]string{ref, filepath.Join(forwardFixtures, "bert-bin")}, 2, "not comparable"},
		{[]string{ref, filepath.Join(forwardFixtures, "qwen2-bias-st")}, 2, "Qwen2ForCausalLM"},
		{[]string{filepath.Join(forwardFixtures, "bert-bin"), filepath.Join(forwardFixtures, "bert-cls-st")}, 2, "not comparable"},
		{[]string{ref, ref, "--kind", "fp4"}, 2, "fp4"},
		{[]string{ref, ref, "--lengths", "3,x"}, 2, "--lengths"},
		{[]string{ref, ref, "--lengths", "0"}, 2, "--lengths"},
		{[]string{ref, ref, "--sequences", "0"}, 2, "--sequences"},
		{[]string{ref, ref, "--max-kl", "-1"}, 2, "--max-kl"},
		{[]string{ref, filepath.Join(forwardFixtures, "nothing-here")}, 1, "candidate"},
		// Same architecture and vocabulary, different weights: compared,
		// and failed.
		{[]string{ref, filepath.Join(forwardFixtures, "llama-gqa-bin")}, 3, "validation failed"},
	} {
		_, stderr, code := runCLI(t, append([]string{"validate"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, stderr, c.code, c.want)
		}
	}
}
