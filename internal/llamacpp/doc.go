// Package llamacpp holds the cross-check of the GGUF output with llama.cpp
// itself (its test; the package has no code). For a fixture of every
// decoder family the GGUF writer supports and each output type, the test
// writes the GGUF file as `quantize --format gguf` does, vocabulary
// included, has llama.cpp (the npm package node-llama-cpp, pinned to
// 3.21.1, which ships prebuilt CPU binaries) load it, tokenize a text and
// compute the logits of every position, and compares them with the
// tokenizer package and the forward pass on the same weights. For the
// encoder families llama.cpp runs (bert: BERT, RoBERTa, XLM-RoBERTa,
// CamemBERT, DistilBERT; modern-bert: ModernBERT) it compares llama.cpp's
// embeddings (the last token's hidden state, the mean, the first token's)
// and classifier scores with the forward pass's (encoders_test.go).
//
// The test runs when node and node-llama-cpp are installed: in the
// directory HUBMIRROR_LLAMACPP_MODULES names (a node_modules directory),
// else in $HOME/.cache/hubmirror/node-llama-cpp-3.21.1/node_modules, where
// .ci/run installs it. It is skipped, with the reason, otherwise, unless
// HUBMIRROR_LLAMACPP_MODULES is set, when a missing installation fails it.
package llamacpp
