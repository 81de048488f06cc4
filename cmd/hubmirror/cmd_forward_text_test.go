package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/formats/safetensors"
)

// tokenizerIDs reads testdata/expected/tokenizer_ids.json: per fixture with
// a tokenizer, sentences and the ids the tokenizers library encodes them to
// (testdata/gen_tokenizers.mjs).
func tokenizerIDs(t *testing.T) map[string][]struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
} {
	t.Helper()
	var doc struct {
		Cases map[string][]struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids"`
		} `json:"cases"`
	}
	b, err := os.ReadFile(filepath.Join(forwardFixtures, "..", "expected", "tokenizer_ids.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) < 2 {
		t.Fatalf("tokenizer_ids.json: %d cases", len(doc.Cases))
	}
	return doc.Cases
}

// TestForwardText: forward --text S runs on the ids the tokenizers library
// gives S, and its outputs are bit-identical to forward --ids <those ids>.
func TestForwardText(t *testing.T) {
	for name, sentences := range tokenizerIDs(t) {
		model := filepath.Join(forwardFixtures, name)
		for i, s := range sentences {
			dir := t.TempDir()
			byText, byIDs := filepath.Join(dir, "text.safetensors"), filepath.Join(dir, "ids.safetensors")
			stdout, stderr, code := runCLI(t, "forward", model, "--text", s.Text, "--out", byText, "--json")
			if code != 0 {
				t.Fatalf("%s sentence %d: exit %d: %s", name, i, code, stderr)
			}
			var rep forwardReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rep.InputIDs, s.IDs) || rep.Text != s.Text {
				t.Errorf("%s %q: input_ids %v (text %q), want the library's %v", name, s.Text, rep.InputIDs, rep.Text, s.IDs)
			}
			if _, stderr, code := runCLI(t, "forward", model, "--ids", joinIntList(s.IDs), "--out", byIDs); code != 0 {
				t.Fatalf("%s: --ids: exit %d: %s", name, code, stderr)
			}
			sameOutputs(t, byText, byIDs)
		}
	}
}

// sameOutputs checks that two forward --out files hold the same tensors,
// bit for bit.
func sameOutputs(t *testing.T, a, b string) {
	t.Helper()
	ga, err := safetensors.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ga.Close()
	gb, err := safetensors.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer gb.Close()
	if len(ga.Tensors()) != len(gb.Tensors()) || len(ga.Tensors()) < 2 {
		t.Fatalf("%d and %d tensors", len(ga.Tensors()), len(gb.Tensors()))
	}
	for _, ta := range ga.Tensors() {
		tb, ok := gb.Tensor(ta.Name)
		if !ok || !slices.Equal(ta.Shape, tb.Shape) {
			t.Fatalf("%s: missing or shape differs", ta.Name)
		}
		va, _ := ta.Float32s()
		vb, _ := tb.Float32s()
		for i := range va {
			if math.Float32bits(va[i]) != math.Float32bits(vb[i]) {
				t.Fatalf("%s[%d]: %v with --text, %v with --ids", ta.Name, i, va[i], vb[i])
			}
		}
	}
}

func TestForwardTextErrors(t *testing.T) {
	model := filepath.Join(forwardFixtures, "llama-tiny-st")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"forward", model, "--text", "hi", "--ids", "1,2"}, 2, "not both"},
		{[]string{"forward", model}, 2, "--ids (e.g. --ids 1,2,3) or --text"},
		{[]string{"forward", filepath.Join(forwardFixtures, "bert-bin"), "--text", "hi"}, 1, "no tokenizer"},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: exit %d, %q; want exit %d saying %q", tc.args[2:], code, stderr, tc.code, tc.msg)
		}
	}
}
