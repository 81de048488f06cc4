package hubclient

import (
	"os"
	"path/filepath"
	"strings"
)

// The Hugging Face environment variables, read the way huggingface_hub
// (constants.py, utils/_auth.py) reads them.

// EnvTrue reports whether an environment value means true ("1", "ON",
// "YES", "TRUE", any case).
func EnvTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// HFHome is $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
func HFHome() string {
	if v := os.Getenv("HF_HOME"); v != "" {
		return expandHome(v)
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(expandHome(x), "huggingface")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	return filepath.Join(home, ".cache", "huggingface")
}

// CacheDirFromEnv is the hub cache: $HF_HUB_CACHE, else the legacy
// $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub.
func CacheDirFromEnv() string {
	if v := os.Getenv("HF_HUB_CACHE"); v != "" {
		return expandHome(v)
	}
	if v := os.Getenv("HUGGINGFACE_HUB_CACHE"); v != "" {
		return expandHome(v)
	}
	return filepath.Join(HFHome(), "hub")
}

// EndpointFromEnv is $HF_ENDPOINT without a trailing slash, else DefaultEndpoint.
func EndpointFromEnv() string {
	if v := strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/"); v != "" {
		return v
	}
	return DefaultEndpoint
}

// TokenFromEnv is $HF_TOKEN (or the legacy $HUGGING_FACE_HUB_TOKEN), else
// the content of $HF_TOKEN_PATH or $HF_HOME/token, with line breaks and
// surrounding spaces removed; "" when none is set.
func TokenFromEnv() string {
	clean := func(s string) string {
		return strings.TrimSpace(strings.NewReplacer("\r", "", "\n", "").Replace(s))
	}
	if t := clean(os.Getenv("HF_TOKEN")); t != "" {
		return t
	}
	if t := clean(os.Getenv("HUGGING_FACE_HUB_TOKEN")); t != "" {
		return t
	}
	path := os.Getenv("HF_TOKEN_PATH")
	if path == "" {
		path = filepath.Join(HFHome(), "token")
	}
	data, err := os.ReadFile(expandHome(path))
	if err != nil || len(data) > 64<<10 {
		return ""
	}
	return clean(string(data))
}

// OfflineFromEnv reports HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE).
func OfflineFromEnv() bool {
	v := os.Getenv("HF_HUB_OFFLINE")
	if v == "" {
		v = os.Getenv("TRANSFORMERS_OFFLINE")
	}
	return EnvTrue(v)
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return os.ExpandEnv(p)
}
