package tokenizer

import "fmt"

func parsePrecompiled(s *string) (normalizer, error) {
	return nil, fmt.Errorf("Precompiled normalizer not implemented")
}
