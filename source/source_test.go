package source

import (
	"strings"
	"testing"

	"github.com/hubmirror/hubmirror/mirror"
)

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"llama-tiny":                   "llama-tiny",
		"My Model (v2)":                "My-Model-v2",
		"a--b":                         "a-b",
		"a----b":                       "a-b",
		"a---b":                        "a-b",
		".hidden":                      "hidden",
		"x.":                           "x",
		"a..b":                         "a.b",
		"a...b":                        "a.b",
		"My Model - v2":                "My-Model-v2",
		"v1.-.x":                       "v1.-.x",
		"---":                          "model",
		"":                             "model",
		"модель":                       "model",
		"Qwen2.5-0.5B":                 "Qwen2.5-0.5B",
		"a. .b":                        "a.-.b",
		"snake_case_dir":               "snake_case_dir",
		strings.Repeat("ab", 60):       strings.Repeat("ab", 45),
		strings.Repeat("a", 89) + "-b": strings.Repeat("a", 89),
	} {
		got := Sanitize(in)
		if got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
		if err := mirror.ValidateRepoID("local/" + got); err != nil {
			t.Errorf("Sanitize(%q) = %q: %v", in, got, err)
		}
	}
}
