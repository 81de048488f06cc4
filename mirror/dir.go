package mirror

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/gobwas/glob"
)

// LFSThreshold is the size from which the Hub requires a file to be stored
// with LFS.
const LFSThreshold = 10 << 20

// DefaultLFSPatterns are the patterns of the .gitattributes the Hub gives a
// new model repo: files matching them are LFS files.
var DefaultLFSPatterns = []string{
	"*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gguf", "*.gz", "*.h5", "*.joblib",
	"*.lfs.*", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet",
	"*.pb", "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*",
	"*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
}

// LFSRule decides whether a file of a directory is an LFS file.
type LFSRule func(path string, size int64) bool

// NewLFSRule returns the rule for files matching patterns (gitattributes
// syntax: a pattern without '/' matches the base name, one with '/' the
// whole path, "**" spans directories) or of at least LFSThreshold bytes.
func NewLFSRule(patterns []string) (LFSRule, error) {
	type matcher struct {
		g    glob.Glob
		base bool
	}
	var ms []matcher
	for _, p := range patterns {
		p = strings.TrimPrefix(p, "/")
		g, err := glob.Compile(p, '/')
		if err != nil {
			return nil, fmt.Errorf("mirror: LFS pattern %q: %w", p, err)
		}
		ms = append(ms, matcher{g: g, base: !strings.Contains(p, "/")})
	}
	return func(p string, size int64) bool {
		if size >= LFSThreshold {
			return true
		}
		for _, m := range ms {
			if m.base && m.g.Match(path.Base(p)) || !m.base && m.g.Match(p) {
				return true
			}
		}
		return false
	}, nil
}

// gitattributesLFS returns the patterns a .gitattributes file marks
// filter=lfs.
func gitattributesLFS(r io.Reader) []string {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		for _, a := range fields[1:] {
			if a == "filter=lfs" {
				out = append(out, fields[0])
				break
			}
		}
	}
	return out
}

// skipDirs are directories of a model directory that are not part of it: git
// metadata and huggingface_hub's download metadata of a --local-dir.
var skipDirs = map[string]bool{".git": true, ".cache/huggingface": true, ".hubmirror-tmp": true}

// DirFiles lists the files of a model directory (or a Hugging Face cache
// snapshot, whose files are symbolic links into the cache's blobs) for Push.
// Symbolic links to files are followed; .git and .cache/huggingface are
// skipped. rule decides which files are LFS; nil means the patterns of the
// directory's .gitattributes when it has one, else DefaultLFSPatterns, plus
// the size threshold.
func DirFiles(dir string, rule LFSRule) ([]PushFile, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("mirror: %s is not a directory: %w", dir, ErrInvalid)
	}
	if rule == nil {
		patterns := DefaultLFSPatterns
		if f, err := os.Open(filepath.Join(dir, ".gitattributes")); err == nil {
			patterns = gitattributesLFS(f)
			f.Close()
		}
		if rule, err = NewLFSRule(patterns); err != nil {
			return nil, err
		}
	}
	var files []PushFile
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			if skipDirs[rel] {
				return filepath.SkipDir
			}
			return nil
		}
		st, err := os.Stat(p) // follows symbolic links
		if err != nil {
			return err
		}
		if st.IsDir() {
			return fmt.Errorf("mirror: %s is a link to a directory, which a repo cannot hold: %w", p, ErrInvalid)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("mirror: %s is not a regular file: %w", p, ErrInvalid)
		}
		if err := ValidatePath(rel); err != nil {
			return err
		}
		abs := p
		files = append(files, PushFile{
			Path: rel,
			Size: st.Size(),
			LFS:  rule(rel, st.Size()),
			Open: func(context.Context) (io.ReadCloser, error) { return os.Open(abs) },
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mirror: listing %s: %w", dir, err)
	}
	return files, nil
}
