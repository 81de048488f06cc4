// Package tokenizer loads Hugging Face tokenizer.json files and encodes and
// decodes text exactly as the tokenizers library does.
package tokenizer
