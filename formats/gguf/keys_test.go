package gguf

import "testing"

// TestValidKey: llama.cpp's architecture names have hyphens
// (modern-bert, nomic-bert, jina-bert-v2), and so do their keys.
func TestValidKey(t *testing.T) {
	for k, want := range map[string]bool{
		"modern-bert.context_length":  true,
		"jina-bert-v2.block_count":    true,
		"general.architecture":        true,
		"-bert.context_length":        false,
		"modern-bert.-context_length": false,
		"Modern-bert.x":               false,
		"modern bert.x":               false,
		"modern-bert.":                false,
	} {
		if got := validKey(k); got != want {
			t.Errorf("validKey(%q) = %v, want %v", k, got, want)
		}
	}
}
