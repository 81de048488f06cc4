// Command passes_gguf_vocab writes the Q8_0 GGUF of a Llama model, as
// `hubmirror quantize --format gguf` does, plus a dummy SentencePiece
// vocabulary (<unk>, <s>, </s>, byte tokens, t<id>): node-llama-cpp needs a
// tokenizer to load a model, and the GGUF output has none. Used only by
// bench/passes_gguf_llamacpp.sh, which compares llama.cpp's logits on the file
// with the native forward pass on the source.
//
// Usage: passes_gguf_vocab MODEL_DIR OUT.gguf
package main

import (
	"fmt"
	"os"

	"github.com/hubmirror/hubmirror/arch"
	"github.com/hubmirror/hubmirror/formats"
	"github.com/hubmirror/hubmirror/formats/gguf"
	"github.com/hubmirror/hubmirror/quantize"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "passes_gguf_vocab:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: passes_gguf_vocab MODEL_DIR OUT.gguf")
		os.Exit(2)
	}
	g, err := formats.Open(os.Args[1])
	if err != nil {
		fail(err)
	}
	defer g.Close()
	cfg, err := arch.ParseConfig(g.Config)
	if err != nil {
		fail(err)
	}
	m, err := quantize.LlamaGGUF(g, cfg, quantize.GGUFOptions{})
	if err != nil {
		fail(err)
	}
	n := cfg.Llama().VocabSize
	toks, scores, types := make([]string, n), make([]float32, n), make([]int32, n)
	for i := range toks {
		toks[i], types[i] = fmt.Sprintf("t%d", i), 1 // normal
	}
	toks[0], types[0] = "<unk>", 2 // unknown
	toks[1], types[1] = "<s>", 3   // control
	toks[2], types[2] = "</s>", 3
	for b := 0; b < 256 && 3+b < n; b++ { // SPM needs <0x0A> at least
		toks[3+b], types[3+b] = fmt.Sprintf("<0x%02X>", b), 6 // byte
	}
	for i, kv := range m.Metadata {
		if kv.Key == "tokenizer.ggml.model" {
			m.Metadata[i].Value = "llama"
		}
	}
	m.Metadata = append(m.Metadata, gguf.KV{Key: "tokenizer.ggml.tokens", Value: toks},
		gguf.KV{Key: "tokenizer.ggml.scores", Value: scores}, gguf.KV{Key: "tokenizer.ggml.token_type", Value: types})
	if err := gguf.WriteFile(os.Args[2], m.Metadata, m.Tensors); err != nil {
		fail(err)
	}
}
