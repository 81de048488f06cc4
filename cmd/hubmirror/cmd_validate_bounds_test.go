package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestValidateInputBounds: --sequences and --lengths above the limits are
// usage errors (exit 2) for validate and for the commands that build, before
// anything runs.
func TestValidateInputBounds(t *testing.T) {
	ref := filepath.Join(forwardFixtures, "llama-tiny-st")
	dst := filepath.Join(t.TempDir(), "out")
	for _, args := range [][]string{
		{"validate", ref, ref, "--sequences", "1000000"},
		{"validate", ref, ref, "--sequences", "1025"},
		{"validate", ref, ref, "--lengths", "7,4097"},
		{"quantize", ref, dst, "--scheme", "int8", "--sequences", "1000000"},
		{"convert", ref, dst, "--lengths", "100000"},
	} {
		_, stderr, code := runCLI(t, args...)
		flag := args[len(args)-2]
		if code != exitUsage || !strings.Contains(stderr, flag) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d naming %s", args, code, stderr, exitUsage, flag)
		}
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("a refused build wrote %s: %v", dst, err)
	}
	// Lengths beyond a Llama model's positions are cut, not refused.
	rep, stderr, code := runValidateJSON(t, ref, ref, "--sequences", "2", "--lengths", "5,4096")
	if code != 0 || !slices.Equal(rep.Lengths, []int{5, 64}) {
		t.Errorf("exit %d, lengths %v, want [5 64]: %s", code, rep.Lengths, stderr)
	}
}
