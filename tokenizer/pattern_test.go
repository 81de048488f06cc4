package tokenizer

import (
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// patternCorpus is a varied set of texts for the hand-written matchers.
var patternCorpus = []string{
	"", " ", "  ", "a", "Hello world", "  leading and trailing  ", "tabs\tand\nnewlines\r\n\r\nend\n",
	"I'm sure they're coming; we'll see if you've got it, he's done and she'd know.",
	"DON'T SHOUT, I'M HERE. IT'S 'QUOTED' and ''double'' 's 'S 'Re 'rE",
	"numbers 1 12 123 1234 12345 3.14159 1,000,000 ٣٤٥ ①② Ⅻ",
	"héllo wörld naïve café Ω Å ǅ İ ß", "日本語のテキストです。中文，标点！",
	"emoji 😀😃 👍🏽 👩\u200d💻 🇫🇷 ❤️", "code: func f(x int) { return x*2 } // ok\n\tif a != b {",
	"nbsp\u00a0\u00a0run ideographic\u3000space thin\u2009space nel\u0085x",
	"   \n   \n\n  x", "x   ", "!!!???...", "a!b?c.d", " ' ", "'", "''", "'s", " 's", "\r\r\n\n",
	"e\u0301\u0302 o\u0308 \u1100\u1161\u11a8", "mixed123abc456", "    indented\n        more", "a\n\nb", "?\n", " ?\n\n",
	"\u200b\u200d\ufeff", "HelloWorld XMLHttpRequest McDONALD'S iPhone", "ǅungla ǈ ABCdef'S a\u0301B\u0301c",
	"ʰʱ 々〆 ゝ ー ﾟ x\u0300\u0301Y\u0302 \u0301\u0302", "/path/to/file\n//comment\r\n", "Ab'll AB'LL ab'Ve", "ab  \t  cd", "x\u0085y", "1\n2\r\n3", "  'll 've 'd 'm 't",
}

func checkFinderAgainstRegexp2(t *testing.T, f finder, pattern, s string) {
	t.Helper()
	re := regexp2.MustCompile(pattern, regexp2.None)
	want, err := findMatches(&regexFinder{re: re}, s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := findMatches(f, s)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pattern %q on %q:\n got  %v\n want %v", pattern, s, pieces(s, got), pieces(s, want))
	}
}

func pieces(s string, ms []match) []string {
	var out []string
	for _, m := range ms {
		if m.isMatch {
			out = append(out, s[m.start:m.end])
		}
	}
	return out
}

func TestFastFindersMatchRegexp2(t *testing.T) {
	for _, pat := range []string{gpt2Pattern, cl100kPattern, qwen2Pattern, o200kPattern} {
		f := fastFinderFor(pat)
		if f == nil {
			t.Fatalf("no fast finder for %q", pat)
		}
		for _, s := range patternCorpus {
			checkFinderAgainstRegexp2(t, f, pat, s)
		}
		// every pair of corpus lines joined: more boundaries
		for i := range patternCorpus {
			checkFinderAgainstRegexp2(t, f, pat, patternCorpus[i]+patternCorpus[(i+7)%len(patternCorpus)])
		}
	}
}

func TestGPT2SplitExamples(t *testing.T) {
	ms, _ := findMatches(gpt2Finder{}, "Hello  world's 12 !!\n")
	got := pieces("Hello  world's 12 !!\n", ms)
	want := []string{"Hello", " ", " world", "'s", " 12", " !!", "\n"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	ms, _ = findMatches(cl100kFinder{maxDigits: 3}, "x 12345 'RE\n\n  y")
	got = pieces("x 12345 'RE\n\n  y", ms)
	want = []string{"x", " ", "123", "45", " '", "RE", "\n\n", " ", " y"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func FuzzFastFinders(f *testing.F) {
	for _, s := range patternCorpus {
		f.Add(s)
	}
	res := map[string]*regexp2.Regexp{}
	for _, p := range []string{gpt2Pattern, cl100kPattern, qwen2Pattern, o200kPattern} {
		res[p] = regexp2.MustCompile(p, regexp2.None)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // the library only sees valid UTF-8
		}
		for p, re := range res {
			want, _ := findMatches(&regexFinder{re: re}, s)
			got, _ := findMatches(fastFinderFor(p), s)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("pattern %q on %q:\n got  %q\n want %q", p, s, pieces(s, got), pieces(s, want))
			}
		}
	})
}
