package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/formats/gguf"
)

// quantize --format gguf writes the encoders (llama.cpp's bert and
// modern-bert) and validates the file read back by the forward pass: the
// outputs it holds are compared, the heads it leaves out (masked-LM heads)
// are listed as not compared. MPNet, which llama.cpp has no architecture
// for, is refused before anything is written.
func TestQuantizeGGUFEncoders(t *testing.T) {
	for _, c := range []struct {
		fixture, scheme, arch string
		compared, notCompared []string
		args                  []string
	}{
		// With its WordPiece vocabulary.
		{"bert-cls-st", "f16", "bert", []string{"last_hidden_state", "pooler_output", "logits"}, nil, nil},
		{"roberta-mlm-st", "q8_0", "bert", []string{"last_hidden_state"}, []string{"logits"}, []string{"--no-vocab"}},
		{"xlmr-model-st", "f16", "bert", []string{"last_hidden_state"}, []string{"pooler_output"}, []string{"--no-vocab"}},
		{"distilbert-model-st", "q8_0", "bert", []string{"last_hidden_state"}, nil, []string{"--no-vocab"}},
		{"modernbert-mlm-st", "q8_0", "modern-bert", []string{"last_hidden_state"}, []string{"logits"}, []string{"--no-vocab"}},
		{"modernbert-cls-st", "f16", "modern-bert", []string{"last_hidden_state", "logits"}, nil, []string{"--no-vocab"}},
		// The sentence-transformers modules are copied beside the file.
		{"st-bert-mean", "f16", "bert", []string{"last_hidden_state", "sentence_embedding"}, []string{"pooler_output"}, []string{"--no-vocab"}},
	} {
		dst := filepath.Join(t.TempDir(), "x")
		args := append([]string{"quantize", filepath.Join(fixtureModels, c.fixture), dst, "--scheme", c.scheme, "--format", "gguf", "--json"}, c.args...)
		out, stderr, code := runCLI(t, args...)
		if code != 0 {
			t.Errorf("%s %s: exit %d: %s", c.fixture, c.scheme, code, stderr)
			continue
		}
		var doc struct {
			Published, Passed bool
			Validation        struct {
				Kind        string
				Passed      bool
				NotCompared []string `json:"not_compared"`
				Outputs     []struct{ Name string }
			}
			Changes struct{ Architecture string }
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%s: %v\n%s", c.fixture, err, out)
		}
		var compared []string
		for _, o := range doc.Validation.Outputs {
			compared = append(compared, o.Name)
		}
		wantKind := map[string]string{"f16": "f16", "q8_0": "int8"}[c.scheme]
		if !doc.Published || !doc.Passed || !doc.Validation.Passed || doc.Validation.Kind != wantKind || doc.Changes.Architecture != c.arch ||
			!slices.Equal(doc.Validation.NotCompared, c.notCompared) || !slices.Equal(compared, c.compared) {
			t.Errorf("%s %s: %s", c.fixture, c.scheme, out)
		}
		if _, err := os.Stat(filepath.Join(dst, artifact.GGUFFileName(c.scheme))); err != nil {
			t.Errorf("%s: %v", c.fixture, err)
		}
	}

	dst := filepath.Join(t.TempDir(), "x")
	_, stderr, code := runCLI(t, "quantize", filepath.Join(fixtureModels, "mpnet-model-f16-st"), dst, "--scheme", "f16", "--format", "gguf")
	if code != exitError || !strings.Contains(stderr, "no MPNet architecture") {
		t.Errorf("mpnet: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("mpnet: DST written: %v", err)
	}
}

// validate reads an encoder's GGUF file back (config.json beside it) and
// judges it by its weights: the file quantize wrote passes, the same file
// with layer 0's query and key matrices in each other's place fails
// (exit 3).
func TestValidateGGUFEncoderBroken(t *testing.T) {
	src := filepath.Join(fixtureModels, "bert-cls-st")
	dst := filepath.Join(t.TempDir(), "x")
	if _, stderr, code := runCLI(t, "quantize", src, dst, "--scheme", "f16", "--format", "gguf"); code != 0 {
		t.Fatalf("quantize: exit %d: %s", code, stderr)
	}
	file := filepath.Join(dst, artifact.GGUFFileName("f16"))
	if _, stderr, code := runCLI(t, "validate", src, file, "--kind", "f16"); code != 0 {
		t.Fatalf("validate the file as written: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	at := map[string][]byte{}
	for _, rt := range f.Tensors {
		at[rt.Name] = rt.Data
	}
	q, k := at["blk.0.attn_q.weight"], at["blk.0.attn_k.weight"]
	if len(q) == 0 || len(q) != len(k) {
		t.Fatalf("attn_q %d bytes, attn_k %d", len(q), len(k))
	}
	offset := func(b []byte) int { return int(uintptr(unsafe.Pointer(&b[0])) - uintptr(unsafe.Pointer(&data[0]))) }
	qo, ko := offset(q), offset(k)
	broken := append([]byte(nil), data...)
	copy(broken[qo:qo+len(q)], data[ko:ko+len(k)])
	copy(broken[ko:ko+len(k)], data[qo:qo+len(q)])
	if err := os.WriteFile(file, broken, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "validate", src, file, "--kind", "f16")
	if code != exitValidation || !strings.Contains(out+stderr, "FAILED") {
		t.Errorf("validate q and k swapped: exit %d: %s%s", code, out, stderr)
	}
}

// TestValidateGGUFMaskedLM: validate of a masked-LM encoder's GGUF (which
// holds no decoder head) compares what the file holds and names the rest,
// as quantize --format gguf does.
func TestValidateGGUFMaskedLM(t *testing.T) {
	src := filepath.Join(fixtureModels, "roberta-mlm-st")
	dst := filepath.Join(t.TempDir(), "x")
	if _, stderr, code := runCLI(t, "quantize", src, dst, "--scheme", "f16", "--format", "gguf", "--no-vocab"); code != 0 {
		t.Fatalf("quantize: exit %d: %s", code, stderr)
	}
	out, stderr, code := runCLI(t, "validate", src, filepath.Join(dst, artifact.GGUFFileName("f16")), "--kind", "f16")
	if code != 0 || !strings.Contains(out, "not compared: logits") || !strings.Contains(out, "PASSED") {
		t.Errorf("validate: exit %d:\n%s%s", code, out, stderr)
	}
}
