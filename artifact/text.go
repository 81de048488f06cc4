package artifact

import (
	"errors"

	"github.com/hubmirror/hubmirror/tokenizer"
)

// LoadTokenizer loads the tokenizer of the model directory dir for
// validation on text. A directory without tokenizer files
// (tokenizer.ErrNoTokenizer) gives nil and "": the model validates on
// random ids only. A tokenizer that does not load gives nil and the
// reason, which the report records (forward.Report.TextSkipped): its
// weights are still validated.
func LoadTokenizer(dir string) (*tokenizer.Tokenizer, string) {
	if dir == "" {
		return nil, ""
	}
	tok, err := tokenizer.LoadDir(dir)
	if errors.Is(err, tokenizer.ErrNoTokenizer) {
		return nil, ""
	}
	if err != nil {
		return nil, "the tokenizer does not load: " + err.Error()
	}
	return tok, ""
}
