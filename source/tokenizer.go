package source

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hubmirror/hubmirror/tokenizer"
)

// OpenTokenizer resolves spec (any MODEL form: a model directory, a
// tokenizer.json file — gzipped when its name ends in .gz —, a weight file,
// a repo id in the cache, a mirror revision) and loads its tokenizer: the
// file itself when spec names a .json or .json.gz file, else the
// tokenizer files of the model's directory (tokenizer.LoadDir). Only the
// tokenizer files (tokenizer.FileNames) of a mirror revision are copied,
// and of a repo fetched from the Hub (opts.Hub) only those are downloaded
// unless opts.Download.Include says otherwise: never the weights. A model
// without one returns an error wrapping tokenizer.ErrNoTokenizer.
func OpenTokenizer(ctx context.Context, spec string, opts Options) (*tokenizer.Tokenizer, error) {
	if opts.Hub != nil && len(opts.Download.Include) == 0 {
		opts.Download.Include = tokenizer.FileNames()
	}
	src, err := Resolve(ctx, spec, opts)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	path, err := src.local(ctx, isTokenizerFile)
	if err != nil {
		return nil, err
	}
	t, err := LoadTokenizer(path, src.Kind == KindFile)
	return t, src.named(err)
}

// LoadTokenizer loads the tokenizer of a local model: path is a model
// directory, or a file when isFile (a tokenizer.json file, or a weight file
// whose directory holds the tokenizer).
func LoadTokenizer(path string, isFile bool) (*tokenizer.Tokenizer, error) {
	if !isFile {
		return tokenizer.LoadDir(path)
	}
	if name := strings.ToLower(filepath.Base(path)); strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".json.gz") {
		if name == "config.json" || name == "tokenizer_config.json" {
			return nil, fmt.Errorf("%s: not a tokenizer.json file; give the model directory", path)
		}
		return tokenizer.LoadFile(path)
	}
	return tokenizer.LoadDir(filepath.Dir(path))
}

// isTokenizerFile selects the files of a model's tokenizer (at the top of
// the repo, where tokenizer.LoadDir reads them).
func isTokenizerFile(path string) bool {
	return slices.Contains(tokenizer.FileNames(), path)
}
