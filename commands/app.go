// Package commands turns command lines into running roles. It is the only
// package that reads argv, the environment and signals, and that decides
// exit codes: each role's action loads its configuration, builds a logger
// and calls the role's Run.
package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/logging"
)

// Version is the scaler release; the Scaler API level it is compatible with
// is 1.12.5.
var Version = "0.1.0"

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the role failed while running
	exitUsage   = 2 // the command line or the configuration is wrong
)

// Main runs the program named by argv[0] (a scaler_* link) or by its first
// argument (scaler <role> ...) and returns the exit status.
func Main(argv []string, stdout, stderr io.Writer) int {
	name := filepath.Base(argv[0])
	if r := roleByName(name); r != nil && strings.HasPrefix(name, "scaler_") {
		return runRole(r, argv[1:], stdout, stderr)
	}
	return runTop(argv, stdout, stderr)
}

// runTop is the plain "scaler" program: it lists the roles and dispatches to
// them as subcommands.
func runTop(argv []string, stdout, stderr io.Writer) int {
	status := exitOK
	app := &cli.App{
		Name:            "scaler",
		Usage:           "OpenGRIS Scaler's distributed computation engine in one binary",
		UsageText:       "scaler ROLE [options] [ADDRESS]   (or call a scaler_ROLE link)",
		Version:         Version + " (compatible with Scaler 1.12.5)",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
		// Its only flags are urfave's -h and -v: no docs, rendered as the
		// roles render theirs.
		CustomAppHelpTemplate: topHelpTemplate,
		Metadata:              map[string]any{flagDocsKey: flagDocs{}},
		// Bad input is one line and status 2, as for the roles: not urfave's
		// "Incorrect Usage" followed by the whole help.
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%s (see scaler --help)", topUsageProblem(err, argv[1:]))
		},
		// Reached only when the first argument is not a command.
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) == 0 || (len(args) == 1 && args[0] == "help") {
				return cli.ShowAppHelp(c)
			}
			if len(args) == 2 && args[0] == "help" { // "scaler help ROLE" is "scaler ROLE -h"
				if r := roleByName(args[1]); r != nil {
					status = runRole(r, []string{"-h"}, stdout, stderr)
					return nil
				}
				if args[1] == upSubcommand {
					return cli.ShowCommandHelp(c, upSubcommand)
				}
				return fmt.Errorf("unknown role %q (see scaler --help)", args[1])
			}
			return fmt.Errorf("unknown role or command %q (see scaler --help)", args[0])
		},
	}
	for _, r := range roles {
		r := r
		app.Commands = append(app.Commands, &cli.Command{
			Name:            r.sub,
			Usage:           r.usage + " (same as " + r.Program() + ")",
			SkipFlagParsing: true,
			HideHelp:        true,
			Action: func(c *cli.Context) error {
				status = runRole(r, c.Args().Slice(), stdout, stderr)
				return nil
			},
		})
	}
	app.Commands = append(app.Commands, upCommand(&status, stdout, stderr), linksCommand(&status), workerCommand(&status, os.Stdin, stderr),
		comboCommand(&status, stdout, stderr))
	if err := app.Run(argv); err != nil {
		fmt.Fprintf(stderr, "scaler: error: %v\n", err)
		return exitUsage
	}
	return status
}

// topUsageProblem rewords urfave's "flag provided but not defined: -versio"
// as the roles say it, with the option as it was typed.
func topUsageProblem(err error, args []string) string {
	const undefined = "flag provided but not defined: -"
	msg := err.Error()
	if !strings.HasPrefix(msg, undefined) {
		return msg
	}
	name := strings.TrimPrefix(msg, undefined)
	for _, a := range args {
		if strings.HasPrefix(a, "-") && strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-") == name {
			return "unrecognized option " + strings.SplitN(a, "=", 2)[0]
		}
	}
	return "unrecognized option -" + name
}

// runRole parses a role's command line and configuration, then runs it.
func runRole(r *role, args []string, stdout, stderr io.Writer) int {
	cfg, status := parseRole(r, args, stdout, stderr)
	if cfg == nil {
		return status
	}
	return start(r, cfg, stderr)
}

// parseRole parses a role's command line and configuration. It returns the
// configuration to run, or nil and the exit status when there is nothing to
// run: the help or the configuration dump was printed (exitOK), or the
// input is wrong (exitUsage, said on stderr).
func parseRole(r *role, args []string, stdout, stderr io.Writer) (config.Section, int) {
	prog := r.Program()
	fail := func(code int, err error) (config.Section, int) {
		fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
		return nil, code
	}
	fields := config.Fields(r.newSection())
	normalized, err := newOptionSet(fields).normalize(args)
	if err != nil {
		return fail(exitUsage, fmt.Errorf("%w (see %s -h)", err, prog))
	}
	var cfg config.Section
	var dump bool
	app := roleApp(r, fields, stdout, stderr, func(c *cli.Context) error {
		cfg, err = buildConfig(r, fields, c)
		dump = c.Bool("dump-config")
		return err
	})
	if err := app.Run(append([]string{prog}, normalized...)); err != nil {
		return fail(exitUsage, err) // the command line or the configuration is wrong
	}
	if cfg == nil { // -h was shown
		return nil, exitOK
	}
	if dump {
		fmt.Fprint(stdout, config.Dump(cfg))
		return nil, exitOK
	}
	return cfg, exitOK
}

// start builds the role's logger and runs it until SIGINT or SIGTERM.
func start(r *role, cfg config.Section, stderr io.Writer) int {
	prog := r.Program()
	logCfg := loggingOf(cfg)
	log, closer, err := logging.Open(r.sub, logCfg.LoggingPaths, logCfg.LoggingLevel)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
		return exitUsage
	}
	defer closer.Close()
	for _, n := range notApplied(cfg) {
		log.Warn().Str(n.key, n.value).Msg(n.why)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := r.run(ctx, cfg, log); err != nil {
		log.Error().Err(err).Msg("stopped with an error")
		fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
		return exitFailure
	}
	return exitOK
}

// ignoredOption is an option a role accepts for compatibility and does not
// apply, as given in one configuration.
type ignoredOption struct {
	key, value string // TOML key and the value given
	why        string // the start-up warning
}

// notApplied lists the options of cfg that are set but have no effect, so
// that start-up can say so once each. An option is named only when its
// value differs from what runs anyway.
func notApplied(cfg config.Section) []ignoredOption {
	options := []struct{ key, inEffect, why string }{
		{"logging_config_file", "", "--logging-config-file is not applied: it is a Python logging configuration in upstream Scaler; logging goes to --logging-paths at --logging-level"},
		{"event_loop", "builtin", "--event-loop is not applied: the Go runtime has one scheduler for everything"},
	}
	var out []ignoredOption
	for _, o := range options {
		for _, f := range config.Fields(cfg) {
			if v := fmt.Sprint(f.Get(cfg)); f.Key == o.key && v != o.inEffect {
				out = append(out, ignoredOption{o.key, v, o.why})
			}
		}
	}
	return out
}

// loggingOf returns the section's logging settings, or defaults for the
// roles that have none in upstream: console at INFO (ui), nothing (top).
func loggingOf(cfg config.Section) config.Logging {
	if c, ok := cfg.(interface{ LoggingSettings() config.Logging }); ok {
		return c.LoggingSettings()
	}
	if _, ok := cfg.(*config.Top); ok {
		// The screen is the console: a log line there would tear it.
		return config.Logging{LoggingLevel: "INFO"}
	}
	return config.Logging{LoggingPaths: []string{"/dev/stdout"}, LoggingLevel: "INFO"}
}

// buildConfig merges defaults, the TOML section and the flags given, in
// that order, then validates the result.
func buildConfig(r *role, fields []config.Field, c *cli.Context) (config.Section, error) {
	cfg := r.newSection()
	path := c.String("config")
	var fromFile []string
	if path != "" {
		var err error
		if fromFile, err = config.LoadFile(path, cfg); err != nil {
			return nil, err
		}
	}
	fromFlags := map[string]string{} // key -> how it was spelled on the command line
	for _, f := range fields {
		if f.Positional {
			if c.NArg() > 0 {
				if err := f.SetString(cfg, c.Args().First()); err != nil {
					return nil, usageErrorf("%s: %v", f.Key, err)
				}
				fromFlags[f.Key] = f.Key
			}
			continue
		}
		if !c.IsSet(f.Long) {
			continue
		}
		fromFlags[f.Key] = "--" + f.Long
		if f.Kind.String() == "slice" {
			var items []string
			for _, it := range c.StringSlice(f.Long) {
				if it != "" {
					items = append(items, it)
				}
			}
			f.SetList(cfg, items)
			continue
		}
		var text string
		if f.Kind.String() == "bool" {
			text = fmt.Sprint(c.Bool(f.Long))
		} else {
			text = c.String(f.Long)
		}
		if err := f.SetString(cfg, text); err != nil {
			return nil, usageErrorf("--%s: %v", f.Long, err)
		}
	}
	if c.NArg() > 1 {
		return nil, usageErrorf("unexpected arguments %s: only one address is taken", strings.Join(c.Args().Slice()[1:], " "))
	}
	if s, ok := cfg.(interface{ FromStack(path string) }); ok && path != "" {
		s.FromStack(path) // what the role's own section left out, from the stack's others
	}
	if err := cfg.Validate(); err != nil {
		return nil, explain(err, path, cfg.SectionName(), fromFile, fromFlags)
	}
	return cfg, nil
}

// explain says where a bad value came from: the file (with its line), the
// command line, or nowhere (a required value that is missing).
func explain(err error, path, section string, fromFile []string, fromFlags map[string]string) error {
	var fe *config.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	if spelled, ok := fromFlags[fe.Key]; ok {
		return usageErrorf("%s: %v", spelled, fe.Err)
	}
	for _, k := range fromFile {
		if k == fe.Key {
			return &config.FileError{Path: path, Section: section, Key: fe.Key, Line: config.KeyLine(path, section, fe.Key), Err: fe.Err}
		}
	}
	where := "on the command line"
	if path != "" {
		where += " or in [" + section + "] of " + path
	} else {
		where += " or in the [" + section + "] section of a --config file"
	}
	return usageErrorf("%s: %v (not given %s)", fe.Key, fe.Err, where)
}

// Exit runs Main with the process's own arguments and exits.
func Exit() {
	stopProfile := startProfile(os.Args)
	code := Main(os.Args, os.Stdout, os.Stderr)
	stopProfile()
	os.Exit(code)
}
