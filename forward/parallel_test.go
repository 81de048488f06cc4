package forward

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// parallelRows covers every row exactly once, in ranges of consecutive
// rows, on at most threads goroutines.
func TestParallelRows(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 64, 65} {
		for _, threads := range []int{1, 2, 3, 8} {
			var mu sync.Mutex
			seen := make([]int, n)
			calls := 0
			parallelRows(n, minParallel, threads, func(lo, hi int) {
				mu.Lock()
				defer mu.Unlock()
				calls++
				for r := lo; r < hi; r++ {
					seen[r]++
				}
			})
			for r, c := range seen {
				if c != 1 {
					t.Fatalf("n=%d threads=%d: row %d done %d times", n, threads, r, c)
				}
			}
			if calls > threads || calls < 1 {
				t.Errorf("n=%d threads=%d: %d ranges", n, threads, calls)
			}
		}
	}
}

// The decoder fixtures with every element-wise step split over 2 and 3
// goroutines (their layers are too small to split otherwise) still match
// PyTorch within 1e-4.
func TestFixturesSplitSteps(t *testing.T) {
	defer func(v int) { minParallel = v }(minParallel)
	minParallel = 1
	for _, fx := range []string{"llama-gqa-bin", "mistral-bin", "qwen3-st", "gemma2-st", "gemma3-st", "phi3-st", "phi3-bf16-st"} {
		for _, threads := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s/threads=%d", fx, threads), func(t *testing.T) {
				checkCase(t, filepath.Join(fixtures, fx), threads, 1e-4)
			})
		}
	}
}
