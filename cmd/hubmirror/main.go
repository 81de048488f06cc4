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
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/hubmirror/hubmirror/artifact"
	"github.com/hubmirror/hubmirror/forward"
	"github.com/hubmirror/hubmirror/hubclient"
	"github.com/hubmirror/hubmirror/mirror"
	"github.com/hubmirror/hubmirror/prune"
	"github.com/hubmirror/hubmirror/quantize"
	"github.com/hubmirror/hubmirror/source"
	"github.com/hubmirror/hubmirror/storage"
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
var errUsage = errors.New("usage error")

// usageError is an error in how the command was called: its message is
// the text alone, and it matches errUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

// usageErrorf returns an error that exits with the usage code.
func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// usageErrors are the errors of the library packages that say the caller
// asked for something impossible (exit code 2). Everything else a library
// returns is an error (exit code 1), except a failed validation (3).
var usageErrors = []error{
	errUsage,
	forward.ErrInput,              // token ids, lengths or options the model cannot take
	forward.ErrIncompatible,       // models that cannot be compared
	hubclient.ErrInvalidRepoID,    // a repo id or revision the Hub would never accept
	storage.ErrInvalidArgument,    // a malformed storage URL or S3 setting
	artifact.ErrExists,            // a DST that holds something else: not overwritten
	quantize.ErrNothingToQuantize, // a quantization that would change nothing
	prune.ErrSpec,                 // a pruning the model cannot take
	source.ErrSpec,                // a malformed SRC, MODEL or DST
	source.ErrRefused,             // a push or publish that would store something wrong
	mirror.ErrInvalid,             // a malformed repo id, revision or path
}

// exitCode maps an error from a command to the exit code of the contract.
// It is the one place that does: commands return the libraries' errors
// (or usageErrorf for flags they check themselves) and never choose a code.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, forward.ErrValidationFailed):
		return exitValidation
	}
	for _, target := range usageErrors {
		if errors.Is(err, target) {
			return exitUsage
		}
	}
	return exitError
}

// jsonFlag is the --json flag every command takes.
var jsonFlag = &cli.BoolFlag{Name: "json", Usage: "print one machine-readable JSON document on stdout instead of human text (on failure too: {\"error\": ..., \"code\": ...})"}

// session is the state of one run of the app.
type session struct {
	out *output
	// notFound is the command name that matched no command.
	notFound string
}

func newApp(s *session, stderr io.Writer) *cli.App {
	// Copies of the registered commands, so that wrapping their actions
	// here leaves the registered ones as they are for the next run.
	cmds := make([]*cli.Command, len(commands))
	for i, c := range commands {
		cc := *c
		cmds[i] = &cc
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	for _, c := range cmds {
		c.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
			return usageErrorf("%v", err)
		}
		if action := c.Action; action != nil {
			c.Action = func(ctx *cli.Context) error {
				nc, _, err := parseInterspersed(ctx)
				if err != nil {
					return err
				}
				if hasFlag(nc.Command, jsonFlag.Name) {
					s.out.setJSON(nc.Bool(jsonFlag.Name))
				}
				if err := checkEmptyValues(nc); err != nil {
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

Flags may come before the command, between the arguments or after them.
Environment: HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE,
HF_HUB_DISABLE_PROGRESS_BARS; AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
AWS_ENDPOINT_URL.

Exit codes: 0 success, 1 error, 2 usage error, 3 validation failed.`,
		Commands:       cmds,
		Writer:         s.out,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {}, // run maps errors to exit codes
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageErrorf("%v", err)
		},
		CommandNotFound: func(_ *cli.Context, name string) { s.notFound = name },
	}
}

// hasFlag reports whether cmd takes the flag name.
func hasFlag(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

// checkEmptyValues refuses a string flag given an empty value (--out ""):
// no flag takes one, and an empty path or name is a mistake that would
// otherwise pass silently.
func checkEmptyValues(c *cli.Context) error {
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if !c.IsSet(name) {
			continue
		}
		switch f.(type) {
		case *cli.StringFlag:
			if strings.TrimSpace(c.String(name)) == "" {
				return usageErrorf("--%s: empty value", name)
			}
		case *cli.StringSliceFlag:
			if slices.ContainsFunc(c.StringSlice(name), func(v string) bool { return strings.TrimSpace(v) == "" }) {
				return usageErrorf("--%s: empty value", name)
			}
		}
	}
	return nil
}

// run runs the app with args and returns the exit code; main and the tests
// both call it. It is the one error path: it maps the command's error to
// the exit code, prints it on stderr, and with --json makes stdout one
// JSON document that carries it too.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	args = hoistFlags(args, commands)
	s := &session{out: newOutput(stdout, wantsJSON(args))}
	app := newApp(s, stderr)
	var err error
	if len(args) < 2 {
		_ = app.RunContext(ctx, append(args, "--help"))
		err = usageErrorf("no command given")
	} else {
		err = app.RunContext(ctx, args)
		if err == nil && s.notFound != "" {
			err = usageErrorf("no command %q; see hubmirror --help", s.notFound)
		}
	}
	code := exitCode(err)
	if err != nil {
		fmt.Fprintf(stderr, "hubmirror: %v\n", err)
	}
	if ferr := s.out.finish(err, code); ferr != nil && code == exitOK {
		fmt.Fprintf(stderr, "hubmirror: writing the output: %v\n", ferr)
		code = exitError
	}
	return code
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// hoistFlags moves flags written before the command behind its name, so
// that "hubmirror --json inspect M" runs as "hubmirror inspect --json M".
// The command is the first argument that names one and before which every
// argument parses as flags of that command (so "--threads 4 forward" finds
// forward, not 4). Anything else is left as it is, for the app to refuse.
func hoistFlags(args []string, cmds []*cli.Command) []string {
	if len(args) < 3 || !strings.HasPrefix(args[1], "-") {
		return args
	}
	for i := 2; i < len(args); i++ {
		if args[i-1] == "--" {
			break
		}
		var cmd *cli.Command
		for _, c := range cmds {
			if slices.Contains(c.Names(), args[i]) {
				cmd = c
			}
		}
		if cmd == nil {
			continue
		}
		set := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
		set.SetOutput(io.Discard)
		for _, f := range cmd.Flags {
			if err := f.Apply(set); err != nil {
				return args
			}
		}
		set.Bool("help", false, "") // every command takes -h, --help
		set.Bool("h", false, "")
		if set.Parse(args[1:i]) != nil || set.NArg() != 0 {
			continue
		}
		out := append([]string{args[0], args[i]}, args[1:i]...)
		return append(out, args[i+1:]...)
	}
	return args
}

// wantsJSON reports whether the command line asks for --json, before the
// command's flags are parsed (a usage error is then reported as JSON too).
func wantsJSON(args []string) bool {
	for _, a := range args[min(len(args), 1):] {
		switch a {
		case "--":
			return false
		case "--json", "-json", "--json=true", "-json=true", "--json=1", "-json=1":
			return true
		}
	}
	return false
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
