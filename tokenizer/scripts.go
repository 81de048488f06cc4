package tokenizer

import (
	"sort"
	"unicode"

	"golang.org/x/text/unicode/rangetable"
)

// assigned9 holds the code points assigned in Unicode 9.0.0, the version of
// the library's script table: other code points have no script there.
var assigned9 = rangetable.Assigned("9.0.0")

// scriptRange is one range of code points of one script.
type scriptRange struct {
	lo, hi rune
	script int
}

const scriptAny = -1

var scriptNames, scriptRanges = buildScriptTable()

func buildScriptTable() ([]string, []scriptRange) {
	names := make([]string, 0, len(unicode.Scripts))
	for name := range unicode.Scripts {
		names = append(names, name)
	}
	sort.Strings(names)
	var rs []scriptRange
	for i, name := range names {
		t := unicode.Scripts[name]
		for _, r := range t.R16 {
			for lo := rune(r.Lo); lo <= rune(r.Hi); lo += rune(r.Stride) {
				hi := lo
				if r.Stride == 1 {
					hi = rune(r.Hi)
				}
				rs = append(rs, scriptRange{lo, hi, i})
				if r.Stride == 1 {
					break
				}
			}
		}
		for _, r := range t.R32 {
			for lo := rune(r.Lo); lo <= rune(r.Hi); lo += rune(r.Stride) {
				hi := lo
				if r.Stride == 1 {
					hi = rune(r.Hi)
				}
				rs = append(rs, scriptRange{lo, hi, i})
				if r.Stride == 1 {
					break
				}
			}
		}
	}
	sort.Slice(rs, func(a, b int) bool { return rs[a].lo < rs[b].lo })
	return names, rs
}

func scriptOf(r rune) int {
	i := sort.Search(len(scriptRanges), func(i int) bool { return scriptRanges[i].hi >= r })
	if i < len(scriptRanges) && scriptRanges[i].lo <= r {
		return scriptRanges[i].script
	}
	return scriptAny
}

var scriptHan = sort.SearchStrings(scriptNames, "Han")

// fixedScript is the library's script of a rune for UnicodeScripts: the
// space belongs to any script, Hiragana, Katakana and the prolonged sound
// mark count as Han.
func fixedScript(r rune) int {
	if r == 0x30FC {
		return scriptHan
	}
	if r == ' ' {
		return scriptAny
	}
	if assigned9 != nil && !unicode.Is(assigned9, r) {
		return scriptAny
	}
	s := scriptOf(r)
	if s >= 0 && (scriptNames[s] == "Hiragana" || scriptNames[s] == "Katakana") {
		return scriptHan
	}
	return s
}

type unicodeScriptsPre struct{}

func (unicodeScriptsPre) preTokenize(p *preTokenized) error {
	return p.splitEach(func(n *normString) ([]*normString, error) {
		var cuts []int
		last, haveLast := 0, false
		for i, r := range n.norm {
			s := fixedScript(r)
			if s != scriptAny && (!haveLast || (last != scriptAny && last != s)) {
				cuts = append(cuts, i)
			}
			if s != scriptAny {
				last, haveLast = s, true
			}
		}
		cuts = append(cuts, len(n.norm))
		out := make([]*normString, 0, len(cuts))
		for k := 0; k+1 < len(cuts); k++ {
			out = append(out, n.slice(cuts[k], cuts[k+1]))
		}
		return out, nil
	})
}
