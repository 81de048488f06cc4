package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// textLM is a tiny Llama trained on the built-in text set, with its byte
// tokenizer (testdata/train_textlm.py).
const textLM = "../../testdata/textlm/llama-text-st"

type textJSON struct {
	Passed     bool               `json:"passed"`
	Thresholds map[string]float64 `json:"thresholds"`
	Text       *struct {
		Inputs []struct {
			Name   string `json:"name"`
			Tokens int    `json:"tokens"`
		} `json:"inputs"`
		Perplexity *struct {
			Reference float64 `json:"reference"`
			Candidate float64 `json:"candidate"`
			Ratio     float64 `json:"ratio"`
		} `json:"perplexity"`
	} `json:"text"`
	Failures []string `json:"failures"`
}

func TestValidateText(t *testing.T) {
	sample := filepath.Join(t.TempDir(), "sample.txt")
	os.WriteFile(sample, []byte("A sample of my own: 1, 2, 3.\n"), 0o644)
	stdout, stderr, code := runCLI(t, "validate", textLM, textLM, "--text-file", sample, "--json")
	var rep textJSON
	if err := json.Unmarshal([]byte(stdout), &rep); code != 0 || err != nil {
		t.Fatalf("exit %d %v %s", code, err, stderr)
	}
	if rep.Text == nil || rep.Text.Perplexity == nil || rep.Text.Perplexity.Ratio != 1 || rep.Thresholds["max_perplexity_ratio"] != 1.0001 {
		t.Fatalf("report %+v", rep)
	}
	last := rep.Text.Inputs[len(rep.Text.Inputs)-1]
	if last.Name != sample || last.Tokens != 29 {
		t.Errorf("text inputs %+v", rep.Text.Inputs)
	}
	// The human report has the text and the perplexity.
	stdout, _, code = runCLI(t, "validate", textLM, textLM)
	if code != 0 || !strings.Contains(stdout, "text:      hubmirror-textset/code (") || !strings.Contains(stdout, "perplexity on the text") ||
		!strings.Contains(stdout, "perplexity ratio <= 1.0001") {
		t.Errorf("exit %d:\n%s", code, stdout)
	}
	// --no-text: as a model without tokenizer.
	stdout, _, code = runCLI(t, "validate", textLM, textLM, "--no-text")
	if code != 0 || strings.Contains(stdout, "text:") || strings.Contains(stdout, "perplexity on") {
		t.Errorf("--no-text: exit %d:\n%s", code, stdout)
	}
	if _, stderr, code := runCLI(t, "validate", textLM, textLM, "--no-text", "--text-file", sample); code != exitUsage {
		t.Errorf("--no-text --text-file: exit %d %s", code, stderr)
	}
	// A model without tokenizer: no text, as before.
	llama := t.TempDir()
	for _, name := range []string{"config.json", "model.safetensors"} {
		data, err := os.ReadFile(filepath.Join(forwardFixtures, "llama-tiny-st", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(llama, name), data, 0o644)
	}
	stdout, _, code = runCLI(t, "validate", llama, llama)
	if code != 0 || strings.Contains(stdout, "text:") || strings.Contains(stdout, "perplexity on") {
		t.Errorf("no tokenizer: exit %d:\n%s", code, stdout)
	}
	if _, stderr, code := runCLI(t, "validate", llama, llama, "--text-file", sample); code != exitUsage || !strings.Contains(stderr, "tokenizer") {
		t.Errorf("--text-file without tokenizer: exit %d %s", code, stderr)
	}
	for _, bad := range []string{filepath.Join(t.TempDir(), "missing.txt"), writeFile(t, "\xff\xfe bad"), writeFile(t, " \n ")} {
		if _, stderr, code := runCLI(t, "validate", textLM, textLM, "--text-file", bad); code != exitUsage || !strings.Contains(stderr, "--text-file") {
			t.Errorf("--text-file %q: exit %d %s", bad, code, stderr)
		}
	}
}

func writeFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMaxPplRatioFlag(t *testing.T) {
	for _, v := range []string{"nan", "inf", "-1", "0.5", "0.9999"} {
		if _, stderr, code := runCLI(t, "validate", textLM, textLM, "--max-ppl-ratio", v); code != exitUsage || !strings.Contains(stderr, "--max-ppl-ratio") {
			t.Errorf("--max-ppl-ratio %s: exit %d %s", v, code, stderr)
		}
	}
	// int8 moves the trained model's perplexity by 0.15%: a limit of
	// 1.0001 fails it (exit 3, nothing written), 0 switches the check off.
	dst := filepath.Join(t.TempDir(), "q8")
	stdout, _, code := runCLI(t, "quantize", textLM, dst, "--scheme", "int8", "--max-ppl-ratio", "1.0001")
	if code != exitValidation || !strings.Contains(stdout, "perplexity ratio 1.00") {
		t.Errorf("quantize --max-ppl-ratio 1.0001: exit %d\n%s", code, stdout)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("DST written: %v", err)
	}
	stdout, _, code = runCLI(t, "quantize", textLM, dst, "--scheme", "int8", "--max-ppl-ratio", "0", "--json")
	var doc struct {
		Validation textJSON `json:"validation"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); code != 0 || err != nil || doc.Validation.Text.Perplexity.Ratio <= 1 {
		t.Errorf("quantize --max-ppl-ratio 0: exit %d %v\n%s", code, err, stdout)
	}
}

// --max-text-kl and --min-text-top1 override the text limits: int8 moves
// the trained model's next-token distributions by KL 7e-4 and top-1
// 0.993, so a tighter limit fails it (exit 3) with the text's failure;
// invalid values are usage errors.
func TestTextKLTop1Flags(t *testing.T) {
	for _, c := range [][]string{{"--max-text-kl", "nan"}, {"--max-text-kl", "-1"}, {"--min-text-top1", "1.5"}, {"--min-text-top1", "inf"}} {
		if _, stderr, code := runCLI(t, "validate", textLM, textLM, c[0], c[1]); code != exitUsage || !strings.Contains(stderr, c[0]) {
			t.Errorf("%v: exit %d %s", c, code, stderr)
		}
	}
	for _, c := range []struct{ flag, value, want string }{
		{"--max-text-kl", "1e-5", "FAIL: KL divergence"},
		{"--min-text-top1", "0.999", "FAIL: top-1 agreement"},
	} {
		stdout, _, code := runCLI(t, "quantize", textLM, filepath.Join(t.TempDir(), "q8"), "--scheme", "int8", "--max-ppl-ratio", "0", c.flag, c.value)
		_, line, _ := strings.Cut(stdout, "perplexity on the text")
		line, _, _ = strings.Cut(line, "\n")
		if code != exitValidation || !strings.Contains(line, c.want) {
			t.Errorf("quantize %s %s: exit %d\n%s", c.flag, c.value, code, stdout)
		}
	}
	stdout, _, code := runCLI(t, "validate", textLM, textLM, "--kind", "int8")
	if code != 0 || !strings.Contains(stdout, "text KL <= 0.005, text top-1 >= 0.95") {
		t.Errorf("validate --kind int8: exit %d\n%s", code, stdout)
	}
}

// A decoder sequence classifier is validated on right-padded copies of
// its inputs too, and the report says so.
func TestValidateSeqClassifier(t *testing.T) {
	dir := filepath.Join(forwardFixtures, "qwen3-cls-bin")
	stdout, stderr, code := runCLI(t, "validate", dir, dir)
	if code != 0 || !strings.Contains(stdout, "and 4 copies right-padded with pad_token_id 7") || strings.Contains(stdout, "perplexity on") {
		t.Errorf("exit %d %s\n%s", code, stderr, stdout)
	}
}
