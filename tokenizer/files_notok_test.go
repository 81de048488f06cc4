package tokenizer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestLoadDirNoTokenizerFirst: a directory without tokenizer files is
// ErrNoTokenizer even when its tokenizer_config.json is malformed (callers
// such as validation treat ErrNoTokenizer as "validate on ids only").
func TestLoadDirNoTokenizerFirst(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(dir); !errors.Is(err, ErrNoTokenizer) {
		t.Errorf("LoadDir: %v, want ErrNoTokenizer", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte("[PAD]\n[UNK]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(dir); err == nil || errors.Is(err, ErrNoTokenizer) {
		t.Errorf("LoadDir with vocab.txt and a malformed config: %v, want the config's error", err)
	}
}
