package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// randomMerges builds a BPE merge table over ids 0..alphabet-1 with merges
// in random rank order, including the odd ones a hand-written merges list
// may have: a merge whose result has a lower-ranked merge with a neighbour,
// and a merge (x, y) -> y, whose result pairs again with x at the same rank.
func randomMerges(rng *rand.Rand, alphabet, n int) map[uint64]bpeMerge {
	merges := map[uint64]bpeMerge{}
	next := alphabet
	ranks := rng.Perm(n)
	for i := 0; i < n; i++ {
		a, c := rng.IntN(next), rng.IntN(next)
		if _, ok := merges[pairKey(a, c)]; ok {
			continue
		}
		id := next
		if rng.IntN(8) == 0 {
			id = c // (x, y) -> y
		} else {
			next++
		}
		merges[pairKey(a, c)] = bpeMerge{rank: ranks[i], newID: id}
	}
	return merges
}

func symbolsOf(ids []int) []symbol {
	syms := make([]symbol, len(ids))
	for i, id := range ids {
		syms[i] = symbol{id: int32(id), prev: int32(i - 1), next: int32(i + 1), start: int32(i), end: int32(i + 1)}
	}
	syms[len(syms)-1].next = -1
	return syms
}

// TestMergeBucketsMatchHeap: the bucket queue of long words merges exactly
// as the one heap (the library's order) does, on random words over random
// merge tables, odd ones included.
func TestMergeBucketsMatchHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 300; trial++ {
		alphabet := 1 + rng.IntN(4)
		b := &bpe{merges: randomMerges(rng, alphabet, 1+rng.IntN(60))}
		ids := make([]int, 2+rng.IntN(3000))
		run := 1 + rng.IntN(50) // runs of one id, as adversarial input has
		for i := range ids {
			if i%run == 0 || rng.IntN(4) == 0 {
				ids[i] = rng.IntN(alphabet)
			} else {
				ids[i] = ids[i-1]
			}
		}
		want, got := symbolsOf(ids), symbolsOf(ids)
		b.mergeAllHeap(want)
		b.mergeAllBuckets(got)
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("trial %d (%d symbols): symbol %d: buckets %+v, heap %+v", trial, len(ids), i, got[i], want[i])
			}
		}
	}
}

// TestEncodeWorkLinear encodes a long run of one character, of spaces and
// of one emoji at two lengths 8x apart with a tokenizer of every kind, and
// checks that the bytes allocated per input byte do not grow with the
// length (a piece copied per split or a slice re-grown by a quarter at a
// time shows here) and that BPE's merge loop takes at most three
// candidates per symbol (n initial pairs, two new pairs per merge). Not
// timed: the benchmark BenchmarkAdversarial gives the times.
func TestEncodeWorkLinear(t *testing.T) {
	m := loadReferenceManifest(t)
	want := map[string]bool{"llama3": true, "gpt2": true, "llama2": true, "bert-uncased": true, "unigram-precompiled": true}
	seen := 0
	for _, e := range m.Files {
		if !want[e.Name] {
			continue
		}
		seen++
		tok := loadReferenceTokenizer(t, e)
		for _, unit := range []string{"a", " ", "\U0001F600"} {
			perByte := func(size int) (float64, int64) {
				text := strings.Repeat(unit, size/len(unit))
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				steps := mergeSteps.Load()
				if _, err := tok.Encode(text, true); err != nil {
					t.Fatal(err)
				}
				steps = mergeSteps.Load() - steps
				runtime.ReadMemStats(&after)
				if runes := int64(len(text) / len(unit)); steps > 3*runes*int64(len(unit)) {
					t.Errorf("%s %q x %d: %d merge steps for %d symbols at most", e.Name, unit, runes, steps, runes*int64(len(unit)))
				}
				return float64(after.TotalAlloc-before.TotalAlloc) / float64(len(text)), steps
			}
			small, _ := perByte(8 << 10)
			large, _ := perByte(64 << 10)
			name := fmt.Sprintf("%s %q", e.Name, unit)
			t.Logf("%s: %.1f bytes allocated per input byte at 8 KiB, %.1f at 64 KiB", name, small, large)
			// the pipeline allocated 300 to 800 bytes per input byte on
			// these inputs when every piece copied its alignments and
			// slices grew by a quarter; 256 leaves room for the worst
			// (llama2's spaces, about 200)
			if large > 256 {
				t.Errorf("%s: %.1f bytes allocated per input byte", name, large)
			}
			if large > 1.3*small+1 {
				t.Errorf("%s: %.1f bytes allocated per input byte at 64 KiB, %.1f at 8 KiB: more than linear", name, large, small)
			}
		}
	}
	if seen != len(want) {
		t.Fatalf("%d of the %d tokenizers in the manifest", seen, len(want))
	}
}
