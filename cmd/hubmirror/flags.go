package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/hubproto"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/source"
)

// The rules for flag values that several commands share, one each: sizes,
// lists of integers, thresholds, thread counts, the Hub's settings and
// whether progress is shown.

// parseSize reads the size given to --flag: a number of bytes ("1048576"),
// or a number with a unit ("16MiB", "64MB", "1.5GB", "16M"; case does not
// matter). Units with an i are powers of 2 (KiB, MiB, GiB, TiB; also Ki,
// Mi, ...), the others powers of 10 (KB = K = 1000, MB = M, GB = G, TB = T),
// as in transformers' --max-shard-size. The result is rounded down to a
// whole byte and must lie in [least, most]; the error names the flag and the
// value.
func parseSize(flagName, value string, least, most int64) (int64, error) {
	s := strings.TrimSpace(value)
	n, err := humanize.ParseBytes(s)
	// ParseBytes also takes "1,000" and a bare exponent unit ("1e" is an
	// exabyte): refuse what a size flag never means.
	if err != nil || s == "" || s[0] < '0' && s[0] != '.' || s[0] > '9' || strings.ContainsAny(s, ",eE") {
		return 0, usageErrorf("--%s %q: not a size (bytes, or a number with a unit: 16MiB, 64MB, 1.5GB)", flagName, value)
	}
	if n > math.MaxInt64 || int64(n) > most {
		return 0, usageErrorf("--%s %q: at most %s", flagName, value, sizeText(most))
	}
	if int64(n) < least {
		return 0, usageErrorf("--%s %q: at least %s", flagName, value, sizeText(least))
	}
	return int64(n), nil
}

// sizeText writes a bound of parseSize: exact, in the largest binary unit
// that divides it.
func sizeText(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// formatBytes writes a byte count for people: "512 B", "3.0 MiB", "1.2 GiB".
func formatBytes(n int64) string {
	if n < 0 {
		return "-" + humanize.IBytes(uint64(-n))
	}
	return humanize.IBytes(uint64(n))
}

// parseIntList parses the comma-separated list of non-negative integers
// given to --flag: every item must be one ("1,2," and "5,,6" are refused).
func parseIntList(flagName, value string) ([]int, error) {
	if strings.TrimSpace(value) == "" {
		return nil, usageErrorf("--%s is empty; give comma-separated numbers, e.g. 1,2,3", flagName)
	}
	items := strings.Split(value, ",")
	out := make([]int, 0, len(items))
	for i, f := range items {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, usageErrorf("--%s %q: item %d is empty", flagName, value, i+1)
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return nil, usageErrorf("--%s: %q is not a non-negative integer", flagName, f)
		}
		out = append(out, v)
	}
	return out, nil
}

// joinIntList writes a list the way parseIntList reads it.
func joinIntList(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// threadsFlag reads --threads of the commands that run models: 0 (one
// goroutine per CPU) or more.
func threadsFlag(c *cli.Context) (int, error) {
	n := c.Int("threads")
	if n < 0 {
		return 0, usageErrorf("--threads %d: want 0 (one per CPU) or more", n)
	}
	return n, nil
}

// hubSettings is how a command reaches the Hub and the Hugging Face cache.
type hubSettings struct {
	// Client holds the endpoint and the token.
	Client hubclient.Options
	// CacheDir is the Hugging Face cache.
	CacheDir string
	// Offline: resolve from the cache alone.
	Offline bool
}

// hubSettingsFrom reads the Hub's settings of every command that talks to
// the Hub or reads its cache: each of the flags --endpoint, --token,
// --cache-dir and --offline the command has, else the environment as
// huggingface_hub reads it (HF_ENDPOINT, HF_TOKEN or $HF_HOME/token,
// HF_HUB_CACHE or $HF_HOME/hub, HF_HUB_OFFLINE). A nil c reads the
// environment alone.
func hubSettingsFrom(c *cli.Context) hubSettings {
	var s hubSettings
	if c != nil {
		s = hubSettings{
			Client:   hubclient.Options{Endpoint: c.String("endpoint"), Token: c.String("token")},
			CacheDir: c.String("cache-dir"),
			Offline:  c.Bool("offline"),
		}
	}
	s.Offline = s.Offline || hubclient.OfflineFromEnv()
	if s.Client.Endpoint == "" {
		s.Client.Endpoint = hubclient.EndpointFromEnv()
	}
	if s.Client.Token == "" {
		s.Client.Token = hubclient.TokenFromEnv()
	}
	if s.CacheDir == "" {
		s.CacheDir = hubclient.CacheDirFromEnv()
	}
	return s
}

// newHubClient returns a client for s; a bad endpoint is a usage error
// that names where it came from.
func (s hubSettings) newHubClient() (*hubclient.Client, error) {
	client, err := hubclient.New(s.Client)
	if err != nil {
		return nil, usageErrorf("--endpoint or HF_ENDPOINT: %v", err)
	}
	return client, nil
}

// showProgress is the one rule for progress bars and progress lines: only
// when stderr, where they go, is a terminal, HF_HUB_DISABLE_PROGRESS_BARS is
// not set, and the command does not print --json.
func showProgress(c *cli.Context) bool {
	return !c.Bool("json") && isTerminal(c.App.ErrWriter) &&
		!hubclient.EnvTrue(os.Getenv("HF_HUB_DISABLE_PROGRESS_BARS"))
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// speedLimitFlag and speedTimeFlag bound how slow a transfer from the Hub
// may be (pull, mirror); speedLimit reads them into hubclient Options (a
// negative SpeedLimit switches the limit off).
var (
	speedLimitFlag = &cli.StringFlag{Name: "speed-limit", Value: "1KiB", Usage: "a transfer slower than this many bytes per second for --speed-time fails its attempt (retried); 0: no limit"}
	speedTimeFlag  = &cli.DurationFlag{Name: "speed-time", Value: 30 * time.Second, Usage: "how long a transfer may stay below --speed-limit"}
)

func speedLimit(c *cli.Context) (int64, time.Duration, error) {
	limit, dur := c.String("speed-limit"), c.Duration("speed-time")
	if dur <= 0 {
		return 0, 0, usageErrorf("--speed-time must be positive, got %s", dur)
	}
	if strings.TrimSpace(limit) == "0" {
		return -1, dur, nil
	}
	n, err := parseSize("speed-limit", limit, 1, 1<<40)
	if err != nil {
		return 0, 0, err
	}
	return n, dur, nil
}

// repoTypeFlag is --repo-type of the commands that take a repo id.
var repoTypeFlag = &cli.StringFlag{Name: "repo-type", Usage: "`TYPE` of the repo: model (default), dataset or space (datasets/ORG/NAME and spaces/ORG/NAME name one too, as the Hub's URLs write them)"}

// qualifyRepo applies --repo-type to the repo id id given as what (an
// argument or a flag) and returns its qualified id ("datasets/org/name",
// hubproto.QualifyRepo); a type that contradicts the id's is a usage error.
func qualifyRepo(c *cli.Context, what, id string) (string, error) {
	q, err := hubproto.QualifyRepo(c.String("repo-type"), id)
	if err != nil {
		return "", usageErrorf("%s: %v", what, err)
	}
	return q, nil
}

// qualifySpec applies --repo-type to a SRC or MODEL argument when it is a
// repo id (REPO[@REV]) or a mirror revision (STORE#REPO[@REV]); paths are
// returned as they are.
func qualifySpec(c *cli.Context, spec string) (string, error) {
	if u, ok, err := mirror.ParseModelURL(spec); ok && err == nil {
		if u.Repo, err = qualifyRepo(c, spec, u.Repo); err != nil {
			return "", err
		}
		return u.String(), nil
	}
	repo, rev, ok := source.RepoSpec(spec)
	if !ok {
		if _, err := hubproto.ParseRepoType(c.String("repo-type")); err != nil {
			return "", usageErrorf("--repo-type: %v", err)
		}
		return spec, nil
	}
	q, err := qualifyRepo(c, spec, repo)
	if err != nil || !strings.Contains(spec, "@") {
		return q, err
	}
	return q + "@" + rev, nil
}
