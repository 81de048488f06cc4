package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/source"
	"github.com/hubmirror/hubmirror/tokenizer"
)

func init() {
	register(&cli.Command{
		Name:      "tokenize",
		Usage:     "encode text with a model's tokenizer, or decode ids",
		ArgsUsage: "MODEL",
		Description: `Encodes --text T, or the file --file F (- for stdin), with the tokenizer of MODEL exactly
as Hugging Face's tokenizers library does: tokenizer.json, else vocab.txt (BERT) or
vocab.json + merges.txt (GPT-2, RoBERTa) configured from tokenizer_config.json. MODEL may
also be a tokenizer.json file itself (gzipped when its name ends in .gz). The special
tokens of the post-processor are added unless --no-special; --pair T2 encodes a pair.

Without --lines the whole input is one text. With --lines each line is encoded on its
own, read one at a time (a file of any size streams): the line ending is not part of the
text, "\n" or "\r\n" (a lone "\r" inside a line stays); a last line without a newline
counts, an empty line gives only the special tokens. The input must be UTF-8.

Output: the ids (comma-separated, as --ids of forward takes them), the tokens and a table
of each token's id, text and byte offsets; with --lines one output line per input line:
the ids, a tab, the tokens. With --json one object
{"ids": [...], "tokens": [...], "offsets": [[start, end], ...]} (offsets in bytes of the
text, or of the line; with --pair each sequence's own, plus "type_ids"), one per line with
--lines.

--max-length N truncates each encoding to N tokens (the special tokens included), as the
library's truncation (longest_first, right) does; the tokens cut off follow as overflowing
pieces of N tokens, each overlapping the one before by --stride S tokens and with the
special tokens of its own: printed after the encoding, and in --json as "overflowing":
[{...}, ...] (with --lines and no --json only the first piece is printed). They replace
the truncation of the tokenizer file.

--decode 1,2,3 prints the text of those ids instead ({"text": ...} with --json);
--no-special then drops the special tokens.` + modelHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "text", Usage: "the `TEXT` to encode"},
			&cli.StringFlag{Name: "file", Usage: "encode the text of `FILE` (- for stdin)"},
			&cli.BoolFlag{Name: "lines", Usage: "encode each line on its own (streams)"},
			&cli.StringFlag{Name: "pair", Usage: "encode the pair (TEXT, `T2`)"},
			&cli.BoolFlag{Name: "no-special", Usage: "do not add special tokens (with --decode: drop them)"},
			&cli.StringFlag{Name: "decode", Usage: "decode comma-separated `IDS` into text"},
			&cli.IntFlag{Name: "max-length", Usage: "truncate to `N` tokens; the rest follows in overflowing pieces"},
			&cli.IntFlag{Name: "stride", Usage: "overflowing pieces overlap by `S` tokens (with --max-length)"},
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf("tokenize takes one MODEL, got %d arguments", c.NArg())
			}
			opts, err := tokenizeFlags(c)
			if err != nil {
				return err
			}
			opts.Model = c.Args().First()
			return runTokenize(c.Context, opts, c.App.Reader, c.App.Writer)
		},
	})
}

type tokenizeOptions struct {
	Model     string
	Text      *string // --text, or nil
	File      string  // --file
	Lines     bool
	Pair      *string
	NoSpecial bool
	Decode    []int // --decode, or nil
	JSON      bool
	MaxLength int // --max-length, 0: none
	Stride    int
}

func tokenizeFlags(c *cli.Context) (tokenizeOptions, error) {
	o := tokenizeOptions{File: c.String("file"), Lines: c.Bool("lines"), NoSpecial: c.Bool("no-special"), JSON: c.Bool("json")}
	if c.IsSet("text") {
		s := c.String("text")
		o.Text = &s
	}
	if c.IsSet("pair") {
		s := c.String("pair")
		o.Pair = &s
	}
	if c.IsSet("max-length") {
		if o.MaxLength = c.Int("max-length"); o.MaxLength <= 0 {
			return o, usageErrorf("--max-length %d: want a number of tokens above 0", o.MaxLength)
		}
	}
	if c.IsSet("stride") {
		if !c.IsSet("max-length") {
			return o, usageErrorf("--stride goes with --max-length")
		}
		if o.Stride = c.Int("stride"); o.Stride < 0 || o.Stride >= o.MaxLength {
			return o, usageErrorf("--stride %d: want 0 up to --max-length - 1 (%d)", o.Stride, o.MaxLength-1)
		}
	}
	if c.IsSet("decode") {
		if o.Text != nil || o.File != "" || o.Pair != nil || o.Lines || o.MaxLength > 0 {
			return o, usageErrorf("--decode takes no --text, --file, --pair, --lines or --max-length")
		}
		ids, err := parseIntList("decode", c.String("decode"))
		if err != nil {
			return o, err
		}
		o.Decode = ids
		return o, nil
	}
	switch {
	case o.Text != nil && o.File != "":
		return o, usageErrorf("give --text or --file, not both")
	case o.Text == nil && o.File == "":
		return o, usageErrorf("tokenize needs --text, --file (- for stdin) or --decode")
	case o.Pair != nil && o.Lines:
		return o, usageErrorf("--pair encodes one pair; it does not go with --lines")
	}
	return o, nil
}

// openTokenizer loads the tokenizer of MODEL (source.OpenTokenizer).
func openTokenizer(ctx context.Context, spec string) (*tokenizer.Tokenizer, error) {
	return source.OpenTokenizer(ctx, spec, sourceOptions())
}

func runTokenize(ctx context.Context, o tokenizeOptions, stdin io.Reader, stdout io.Writer) error {
	tok, err := openTokenizer(ctx, o.Model)
	if err != nil {
		return err
	}
	if o.Decode != nil {
		return runDecode(tok, o, stdout)
	}
	if o.MaxLength > 0 {
		if tok, err = tok.WithTruncation(tokenizer.Truncation{MaxLength: o.MaxLength, Stride: o.Stride}); err != nil {
			return err
		}
	}
	var in io.Reader
	name := "--text"
	switch {
	case o.Text != nil:
		in = strings.NewReader(*o.Text)
	case o.File == "-":
		in, name = stdin, "stdin"
	default:
		f, err := os.Open(o.File)
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, o.File
	}
	if o.Lines {
		return tokenizeLines(tok, o, in, name, stdout)
	}
	data, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	text := string(data)
	if !utf8.ValidString(text) {
		return fmt.Errorf("%s: not valid UTF-8 (at byte %d)", name, invalidUTF8At(text))
	}
	var enc *tokenizer.Encoding
	if o.Pair != nil {
		if !utf8.ValidString(*o.Pair) {
			return fmt.Errorf("--pair: not valid UTF-8 (at byte %d)", invalidUTF8At(*o.Pair))
		}
		enc, err = tok.EncodePair(text, *o.Pair, !o.NoSpecial)
	} else {
		enc, err = tok.Encode(text, !o.NoSpecial)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if o.JSON {
		b := appendEncodingJSON(nil, enc, o.Pair != nil)
		_, err := stdout.Write(append(b, '\n'))
		return err
	}
	printEncoding(stdout, enc, o.Pair != nil)
	for i, ov := range enc.Overflowing {
		fmt.Fprintf(stdout, "\noverflowing %d of %d:\n", i+1, len(enc.Overflowing))
		printEncoding(stdout, ov, o.Pair != nil)
	}
	return nil
}

// tokenizeLines encodes in line by line, writing as it goes.
func tokenizeLines(tok *tokenizer.Tokenizer, o tokenizeOptions, in io.Reader, name string, stdout io.Writer) error {
	if err := streamOutput(stdout); err != nil {
		return err
	}
	r := bufio.NewReaderSize(in, 1<<20)
	w := bufio.NewWriterSize(stdout, 1<<16)
	var buf []byte
	for n := 1; ; n++ {
		line, err := r.ReadString('\n')
		if err != nil && err != io.EOF {
			w.Flush()
			return fmt.Errorf("%s: %w", name, err)
		}
		if line == "" && err == io.EOF {
			break
		}
		line = strings.TrimSuffix(line, "\n")
		line = strings.TrimSuffix(line, "\r")
		if !utf8.ValidString(line) {
			w.Flush()
			return fmt.Errorf("%s line %d: not valid UTF-8 (at byte %d of the line)", name, n, invalidUTF8At(line))
		}
		enc, eerr := tok.Encode(line, !o.NoSpecial)
		if eerr != nil {
			w.Flush()
			return fmt.Errorf("%s line %d: %w", name, n, eerr)
		}
		if o.JSON {
			buf = appendEncodingJSON(buf[:0], enc, false)
		} else {
			buf = appendIDs(buf[:0], enc.IDs)
			buf = append(buf, '\t')
			buf = appendQuotedTokens(buf, enc.Tokens)
		}
		buf = append(buf, '\n')
		if _, werr := w.Write(buf); werr != nil {
			return werr
		}
		if err == io.EOF {
			break
		}
	}
	return w.Flush()
}

func invalidUTF8At(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}

func runDecode(tok *tokenizer.Tokenizer, o tokenizeOptions, stdout io.Writer) error {
	for _, id := range o.Decode {
		if _, ok := tok.IDToToken(id); !ok {
			return fmt.Errorf("--decode: id %d is not in the vocabulary of %s (%d tokens)", id, o.Model, tok.VocabSize())
		}
	}
	text, err := tok.Decode(o.Decode, o.NoSpecial)
	if err != nil {
		return fmt.Errorf("--decode: %w", err)
	}
	if o.JSON {
		return writeJSON(stdout, struct {
			Text string `json:"text"`
		}{text})
	}
	_, err = fmt.Fprintln(stdout, text)
	return err
}

func printEncoding(w io.Writer, enc *tokenizer.Encoding, pair bool) {
	fmt.Fprintf(w, "ids:    %s\n", appendIDs(nil, enc.IDs))
	fmt.Fprintf(w, "tokens: %s\n", appendQuotedTokens(nil, enc.Tokens))
	fmt.Fprintf(w, "count:  %d\n", len(enc.IDs))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "#\tid\ttoken\toffsets")
	if pair {
		fmt.Fprintf(tw, "\ttype")
	}
	fmt.Fprintln(tw)
	for i, id := range enc.IDs {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d-%d", i, id, strconv.Quote(enc.Tokens[i]), enc.Offsets[i][0], enc.Offsets[i][1])
		if pair {
			fmt.Fprintf(tw, "\t%d", enc.TypeIDs[i])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// appendIDs writes ids comma-separated, as parseIntList reads them.
func appendIDs(b []byte, ids []int) []byte {
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(id), 10)
	}
	return b
}

func appendQuotedTokens(b []byte, toks []string) []byte {
	for i, t := range toks {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendQuote(b, t)
	}
	return b
}

// appendEncodingJSON writes {"ids": [...], "tokens": [...], "offsets":
// [[s,e],...]} (and "type_ids" for a pair) on one line.
func appendEncodingJSON(b []byte, enc *tokenizer.Encoding, pair bool) []byte {
	b = append(b, `{"ids":[`...)
	b = appendIDs(b, enc.IDs)
	b = append(b, `],"tokens":[`...)
	for i, t := range enc.Tokens {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t)
	}
	b = append(b, `],"offsets":[`...)
	for i, off := range enc.Offsets {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(off[0]), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(off[1]), 10)
		b = append(b, ']')
	}
	b = append(b, ']')
	if pair {
		b = append(b, `,"type_ids":[`...)
		b = appendIDs(b, enc.TypeIDs)
		b = append(b, ']')
	}
	if len(enc.Overflowing) > 0 {
		b = append(b, `,"overflowing":[`...)
		for i, ov := range enc.Overflowing {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendEncodingJSON(b, ov, pair)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendJSONString writes s as a JSON string: quotes, backslashes and
// control characters escaped, other text as it is (invalid UTF-8 the way
// encoding/json writes it).
func appendJSONString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		q, _ := json.Marshal(s)
		return append(b, q...)
	}
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
