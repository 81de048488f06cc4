package tokenizer

import "fmt"

type unicodeScriptsPre struct{}

func (unicodeScriptsPre) preTokenize(p *preTokenized) error {
	return fmt.Errorf("UnicodeScripts pre-tokenizer not implemented")
}

func parsePrecompiled(s *string) (normalizer, error) {
	return nil, fmt.Errorf("Precompiled normalizer not implemented")
}
