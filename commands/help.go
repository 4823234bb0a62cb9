package commands

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/opengris/scaler/config"
)

// roleHelpTemplate lays out a role's -h like argparse did: usage, purpose,
// the positional address, then every option with its short forms.
const roleHelpTemplate = `usage: {{.UsageText}}

{{.Usage}}

{{.Description}}
options:
{{range .VisibleFlags}}{{.}}
{{end}}`

func init() {
	cli.FlagStringer = renderFlag
}

// renderFlag prints "  -mt, --max-number-of-tasks-waiting N   help (default: -1)".
// Short forms come first with one dash, as upstream spells them.
func renderFlag(f cli.Flag) string {
	d, ok := flagDocs[f]
	if !ok { // urfave's own flags (help)
		names := f.Names()
		d = flagDoc{long: names[0], shorts: names[1:]}
	}
	var spell []string
	for _, s := range d.shorts {
		spell = append(spell, "-"+s)
	}
	spell = append(spell, "--"+d.long)
	for _, l := range d.longs {
		spell = append(spell, "--"+l)
	}
	left := strings.Join(spell, ", ")
	if d.arg != "" {
		left += " " + d.arg
	}
	usage := ""
	if u, ok := f.(cli.DocGenerationFlag); ok {
		usage = u.GetUsage()
	}
	if len(left) < 44 {
		return fmt.Sprintf("  %-44s %s", left, usage)
	}
	return fmt.Sprintf("  %s\n  %-44s %s", left, "", usage)
}

// flagDoc is how a flag is spelled in help.
type flagDoc struct {
	long   string
	shorts []string
	longs  []string // long aliases
	arg    string   // value placeholder; empty for booleans
}

// flagDocs is filled as roles build their flags.
var flagDocs = map[cli.Flag]flagDoc{}

// roleApp builds the urfave/cli application of one role. The same function
// serves "scaler_scheduler ..." and "scaler scheduler ...", so both print
// identical help.
func roleApp(r *role, fields []config.Field, stdout, stderr io.Writer, action cli.ActionFunc) *cli.App {
	defaults := r.newSection()
	app := &cli.App{
		Name:                      r.Program(),
		Usage:                     r.usage,
		UsageText:                 r.Program() + " [options] [" + positionalArg(fields) + "]",
		Description:               positionalHelp(fields),
		CustomAppHelpTemplate:     roleHelpTemplate,
		HideHelpCommand:           true,
		DisableSliceFlagSeparator: true,
		Writer:                    stdout,
		ErrWriter:                 stderr,
		ExitErrHandler:            func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &usageError{err.Error()}
		},
		Action: action,
	}
	configFlag := &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "read this command's section of a TOML configuration file; flags override it"}
	flagDocs[configFlag] = flagDoc{long: "config", shorts: []string{"c"}, arg: "FILE"}
	app.Flags = append(app.Flags, configFlag)
	for _, f := range fields {
		if f.Positional {
			continue
		}
		names := append(append([]string(nil), f.Shorts...), longAliases(f)...)
		usage := f.Help + defaultNote(f, defaults)
		var flag cli.Flag
		switch f.Kind.String() {
		case "bool":
			flag = &cli.BoolFlag{Name: f.Long, Aliases: names, Usage: usage}
		case "slice":
			flag = &cli.StringSliceFlag{Name: f.Long, Aliases: names, Usage: usage}
		default:
			flag = &cli.StringFlag{Name: f.Long, Aliases: names, Usage: usage}
		}
		flagDocs[flag] = flagDoc{long: f.Long, shorts: f.Shorts, longs: longAliases(f), arg: f.Arg}
		app.Flags = append(app.Flags, flag)
	}
	app.Flags = append(app.Flags, &cli.BoolFlag{Name: "dump-config", Usage: "print the effective configuration as a TOML section and exit"})
	return app
}

func defaultNote(f config.Field, defaults config.Section) string {
	if strings.Contains(f.Help, "(default: ") || strings.Contains(f.Help, "(required)") {
		// The help says it in words ("cores - 1, at least 1"); the computed
		// value (this machine's, or the zero of a required key) would
		// contradict it.
		if len(f.Choices) > 0 {
			return fmt.Sprintf(" {%s}", strings.Join(f.Choices, ","))
		}
		return ""
	}
	v := f.Get(defaults)
	var text string
	switch x := v.(type) {
	case string:
		if x == "" {
			return ""
		}
		text = x
	case []string:
		text = strings.Join(x, " ")
	default:
		text = fmt.Sprint(x)
	}
	if len(f.Choices) > 0 {
		return fmt.Sprintf(" {%s} (default: %s)", strings.Join(f.Choices, ","), text)
	}
	return fmt.Sprintf(" (default: %s)", text)
}

func positionalArg(fields []config.Field) string {
	for _, f := range fields {
		if f.Positional {
			return f.Arg
		}
	}
	return ""
}

func positionalHelp(fields []config.Field) string {
	for _, f := range fields {
		if f.Positional {
			return fmt.Sprintf("positional arguments:\n  %-44s %s (TOML key %s)\n", f.Arg, f.Help, f.Key)
		}
	}
	return ""
}
