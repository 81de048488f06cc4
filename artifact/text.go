package artifact

import (
	"os"
	"path/filepath"

	"github.com/hubmirror/hubmirror/tokenizer"
)

// LoadTokenizer loads the tokenizer of the model directory dir for
// validation on text. A directory without tokenizer files gives nil and
// "": the model validates on random ids only. A tokenizer that does not
// load gives nil and the reason, which the report records
// (forward.Report.TextSkipped): its weights are still validated.
func LoadTokenizer(dir string) (*tokenizer.Tokenizer, string) {
	if dir == "" || !hasTokenizer(dir) {
		return nil, ""
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, "the tokenizer does not load: " + err.Error()
	}
	return tok, ""
}

func hasTokenizer(dir string) bool {
	exists := func(name string) bool {
		fi, err := os.Stat(filepath.Join(dir, name))
		return err == nil && !fi.IsDir()
	}
	return exists("tokenizer.json") || exists("vocab.txt") || (exists("vocab.json") && exists("merges.txt"))
}
