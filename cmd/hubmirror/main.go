// Command hubmirror pulls model repositories from the Hugging Face Hub, reads,
// converts, quantizes and prunes their weights, proves with a native forward
// pass that converted models compute what the originals did, and mirrors them
// into S3-compatible storage that ordinary Hugging Face clients can read.
//
// Each command lives in its own cmd_<name>.go file and registers itself with
// register; this file wires them into one app and maps errors to exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Exit codes of the command-line contract (DESIGN.md).
const (
	exitOK         = 0
	exitError      = 1
	exitUsage      = 2
	exitValidation = 3
)

var commands []*cli.Command

// register adds a command to the app; cmd_*.go files call it from init.
func register(c *cli.Command) { commands = append(commands, c) }

// errUsage marks errors in how the command was called (exit code 2).
var errUsage = errors.New("usage")

// usageErrorf returns an error that exits with the usage code.
func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// errValidationFailed marks a failed validation (exit code 3). Commands wrap
// the library's validation error with it, or return it directly.
var errValidationFailed = errors.New("validation failed")

// jsonFlag is the --json flag every command takes.
var jsonFlag = &cli.BoolFlag{Name: "json", Usage: "print one machine-readable JSON document on stdout instead of human text"}

func newApp(stdout, stderr io.Writer) *cli.App {
	cmds := append([]*cli.Command(nil), commands...)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	for _, c := range cmds {
		c.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if action := c.Action; action != nil {
			c.Action = func(ctx *cli.Context) error {
				nc, _, err := parseInterspersed(ctx)
				if err != nil {
					return err
				}
				return action(nc)
			}
		}
	}
	return &cli.App{
		Name:  "hubmirror",
		Usage: "pull, verify, convert, quantize and mirror Hugging Face models",
		Description: `MODEL and SRC are a local model directory, a weight file, a repo id org/name[@rev]
resolved through the Hugging Face cache, or a storage URL (s3://bucket/prefix, file:///path).

Environment: HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE,
HF_HUB_DISABLE_PROGRESS_BARS; AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
AWS_ENDPOINT_URL.

Exit codes: 0 success, 1 error, 2 usage error, 3 validation failed.`,
		Commands:       cmds,
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {}, // main maps errors to exit codes
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%w: %v", errUsage, err)
		},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(c.App.ErrWriter, "hubmirror: no command %q; see hubmirror --help\n", name)
		},
	}
}

// exitCode maps an error from a command to the exit code of the contract.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errValidationFailed):
		return exitValidation
	case errors.Is(err, errUsage):
		return exitUsage
	}
	return exitError
}

// run runs the app with args and returns the exit code; main and the tests
// both call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	if len(args) < 2 {
		_ = app.RunContext(ctx, append(args, "--help"))
		return exitUsage
	}
	err := app.RunContext(ctx, args)
	code := exitCode(err)
	if err != nil {
		fmt.Fprintf(stderr, "hubmirror: %v\n", err)
	}
	return code
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// parseInterspersed returns the command's positional arguments and a
// context in which the flags that follow them are parsed too, and whose
// Args are the positional arguments alone. urfave/cli v2 stops parsing
// flags at the first positional argument, while the command-line contract
// writes them after MODEL ("forward MODEL --ids 1,2"); newApp applies this
// to every command. Flags already parsed keep their values; an unknown flag
// is a usage error. Required flags cannot be declared Required (urfave/cli
// checks them before this runs): commands check them themselves.
func parseInterspersed(c *cli.Context) (*cli.Context, []string, error) {
	rest := c.Args().Slice()
	if !slices.ContainsFunc(rest, func(a string) bool { return len(a) > 1 && a[0] == '-' }) {
		return c, rest, nil
	}
	set := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range c.Command.Flags {
		if err := f.Apply(set); err != nil {
			return nil, nil, err
		}
	}
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if !c.IsSet(name) {
			continue
		}
		values := []string{fmt.Sprint(c.Value(name))}
		if _, ok := f.(*cli.StringSliceFlag); ok { // repeatable: set each value again
			values = c.StringSlice(name)
		}
		for _, v := range values {
			if err := set.Set(name, v); err != nil {
				return nil, nil, usageErrorf("--%s: %v", name, err)
			}
		}
	}
	var args []string
	for {
		if err := set.Parse(rest); err != nil {
			return nil, nil, usageErrorf("%s: %v", c.Command.Name, err)
		}
		rest = set.Args()
		if len(rest) == 0 {
			break
		}
		args = append(args, rest[0])
		rest = rest[1:]
	}
	// Leave exactly the positional arguments in the new context's Args.
	if err := set.Parse(append([]string{"--"}, args...)); err != nil {
		return nil, nil, err
	}
	nc := cli.NewContext(c.App, set, c)
	nc.Command = c.Command
	return nc, args, nil
}
