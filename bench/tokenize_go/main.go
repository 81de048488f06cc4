// Command tokenize_go is bench/tokenize.sh's Go side until `hubmirror
// tokenize --lines` exists: it loads a tokenizer.json and encodes every line
// of a text file (special tokens added), one goroutine, and prints the same
// figures as bench/tokenize.mjs.
//
//	go run ./bench/tokenize_go TOKENIZER.json TEXT
//	go run ./bench/tokenize_go -load TOKENIZER.json
package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/hubmirror/hubmirror/tokenizer"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tokenize_go:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 2 && args[0] == "-load" {
		t0 := time.Now()
		tok, err := tokenizer.LoadFile(args[1])
		if err != nil {
			return err
		}
		fmt.Printf("impl=hubmirror load_seconds=%.3f vocab=%d\n", time.Since(t0).Seconds(), tok.VocabSize())
		return nil
	}
	if len(args) != 2 {
		return fmt.Errorf("usage: tokenize_go TOKENIZER TEXT | tokenize_go -load TOKENIZER")
	}
	tok, err := tokenizer.LoadFile(args[0])
	if err != nil {
		return err
	}
	text, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	lines := bytes.Split(bytes.TrimSuffix(text, []byte("\n")), []byte("\n"))
	strs := make([]string, len(lines))
	nbytes := 0
	for i, l := range lines {
		strs[i] = string(l)
		nbytes += len(l)
	}
	h := uint64(0xcbf29ce484222325)
	tokens := 0
	var took time.Duration
	for _, s := range strs {
		t0 := time.Now()
		enc, err := tok.Encode(s, true)
		took += time.Since(t0)
		if err != nil {
			return err
		}
		tokens += len(enc.IDs)
		for _, id := range enc.IDs {
			h ^= uint64(id)
			h *= 1099511628211
		}
	}
	fmt.Printf("impl=hubmirror lines=%d bytes=%d tokens=%d seconds=%.3f MBps=%.2f ids_hash=%x\n",
		len(strs), nbytes, tokens, took.Seconds(), float64(nbytes)/1e6/took.Seconds(), h)
	return nil
}
