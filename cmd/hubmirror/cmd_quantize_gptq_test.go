package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/forward"
)

// gptqRun is what the GPTQ tests read of quantize --json.
type gptqRun struct {
	Pass    string `json:"pass"`
	Changes struct {
		Method string `json:"method"`
		GPTQ   *struct {
			Calibrated int `json:"calibrated"`
			Rows       int `json:"rows"`
			Hessians   int `json:"hessians"`
		} `json:"gptq"`
	} `json:"changes"`
	Validation struct {
		Text struct {
			Perplexity struct {
				Ratio float64 `json:"ratio"`
			} `json:"perplexity"`
		} `json:"text"`
	} `json:"validation"`
}

// quantizeJSON runs quantize on llama-gptq-st; wantCode -1 takes a
// failed validation (exit 3) as well as a passed one.
func quantizeJSON(t *testing.T, wantCode int, args ...string) gptqRun {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "out")
	out, stderr, code := runCLI(t, append([]string{"quantize", filepath.Join(fixtureModels, "llama-gptq-st"), dst, "--json"}, args...)...)
	if code != wantCode && !(wantCode == -1 && (code == 0 || code == 3)) {
		t.Fatalf("%v: exit %d, want %d: %s\n%s", args, code, wantCode, out, stderr)
	}
	var r gptqRun
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
	return r
}

// On llama-gptq-st (trained on the text set, with activation-outlier
// channels), w4a16 with --method gptq, calibrated on the text set, has a
// lower perplexity ratio on the text than round to nearest.
func TestQuantizeGPTQBeatsRTN(t *testing.T) {
	rtn := quantizeJSON(t, 0, "--scheme", "w4a16", "--method", "rtn")
	gptq := quantizeJSON(t, 0, "--scheme", "w4a16", "--method", "gptq")
	rr, gr := rtn.Validation.Text.Perplexity.Ratio, gptq.Validation.Text.Perplexity.Ratio
	t.Logf("perplexity ratio: rtn %.4f, gptq %.4f", rr, gr)
	if !(rr > 1 && gr >= 1 && gr < rr) {
		t.Errorf("perplexity ratio: gptq %v, rtn %v: want gptq lower", gr, rr)
	}
	if gptq.Pass != "quantize w4a16 (gptq)" || gptq.Changes.Method != "gptq" || gptq.Changes.GPTQ == nil || gptq.Changes.GPTQ.Calibrated != 14 {
		t.Errorf("gptq report: %+v %+v", gptq, gptq.Changes.GPTQ)
	}
	if rtn.Changes.Method != "rtn" || rtn.Changes.GPTQ != nil {
		t.Errorf("rtn report: %+v", rtn.Changes)
	}
}

// --calibration-file F calibrates on F's samples (its paragraphs), at most
// --calibration-tokens tokens. (So little calibration text can fail the
// validation on random ids: the exit code is not the point here.)
func TestQuantizeGPTQCalibrationFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "calib.txt")
	line := strings.Repeat("mirror ", 5) + "mirrors"
	if err := os.WriteFile(f, []byte(line+"\n"+line+"\n\n"+line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The paragraphs of a file with blank lines: "line\nline" (85 bytes:
	// windows of <s> + 63 and <s> + 22) and "line" (<s> + 42).
	r := quantizeJSON(t, -1, "--scheme", "w4a16", "--method", "gptq", "--calibration-file", f, "--no-text")
	if want := 3*len(line) + 1 + 3; r.Changes.GPTQ == nil || r.Changes.GPTQ.Rows != want {
		t.Errorf("report %+v, want %d rows", r.Changes.GPTQ, want)
	}
	r = quantizeJSON(t, -1, "--scheme", "w4a16", "--method", "gptq", "--calibration-file", f, "--calibration-tokens", "50", "--no-text")
	if r.Changes.GPTQ == nil || r.Changes.GPTQ.Rows != 50+1 { // <s> + 50
		t.Errorf("report %+v, want %d rows", r.Changes.GPTQ, 50+1)
	}
}

// The usage errors of --method gptq (exit 2), each naming its flag.
func TestQuantizeGPTQUsageErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, []byte(" \n\n\t\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gptqSrc := filepath.Join(fixtureModels, "llama-gptq-st")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{gptqSrc, "--scheme", "int8", "--method", "gptq"}, "--method gptq is for --scheme w4a16"},
		{[]string{gptqSrc, "--scheme", "fp8", "--method", "gptq"}, "--method gptq is for --scheme w4a16"},
		{[]string{gptqSrc, "--scheme", "w4a16", "--method", "awq"}, "--method"},
		{[]string{gptqSrc, "--scheme", "w4a16", "--method", "gptq", "--calibration-file", empty}, "--calibration-file " + empty + " holds no text"},
		{[]string{gptqSrc, "--scheme", "w4a16", "--method", "gptq", "--calibration-file", filepath.Join(dir, "absent.txt")}, "--calibration-file"},
		{[]string{gptqSrc, "--scheme", "w4a16", "--calibration-file", empty}, "--calibration-file is for --method gptq"},
		{[]string{gptqSrc, "--scheme", "w4a16", "--method", "gptq", "--calibration-tokens", "0"}, "--calibration-tokens 0"},
		// llama-gqa-bin has no tokenizer files.
		{[]string{filepath.Join(fixtureModels, "llama-gqa-bin"), "--scheme", "w4a16", "--method", "gptq"}, "--method gptq encodes its calibration text with SRC's tokenizer"},
	} {
		dst := filepath.Join(dir, "out")
		out, stderr, code := runCLI(t, append([]string{"quantize", c.args[0], dst}, c.args[1:]...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q: %s\n%s", c.args, code, c.want, out, stderr)
		}
		if _, err := os.Stat(dst); err == nil {
			t.Errorf("%v: wrote %s", c.args, dst)
		}
	}
}

// A calibration file's samples are its paragraphs, or its lines when it
// has no blank line.
func TestCalibrationSamples(t *testing.T) {
	texts := func(ts []forward.Text) []string {
		var out []string
		for _, x := range ts {
			out = append(out, x.Text)
		}
		return out
	}
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"a b\nc\n\n\nd\r\n\r\ne\n", []string{"a b\nc", "d", "e"}},
		{"one\ntwo\r\n\nthree\n", []string{"one\ntwo", "three"}},
		{"one\ntwo\n  three  \n", []string{"one", "two", "three"}},
		{"\n\n  \n", nil},
	} {
		got := calibrationSamples("f", c.in)
		if !slices.Equal(texts(got), c.want) {
			t.Errorf("%q: %q, want %q", c.in, texts(got), c.want)
		}
		if len(got) > 0 && got[0].Name != "f#1" {
			t.Errorf("%q: name %q", c.in, got[0].Name)
		}
	}
}
