package commands

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

// linksCommand is "scaler install-links DIR": it creates a scaler_* symlink
// to this executable for every role in DIR, replacing stale links.
func linksCommand(status *int) *cli.Command {
	return &cli.Command{
		Name:      "install-links",
		Usage:     "create the scaler_* command links to this binary in DIR",
		ArgsUsage: "DIR",
		// Its only flag is urfave's -h, spelled as the roles spell theirs.
		CustomHelpTemplate: `NAME:
   {{template "helpNameTemplate" .}}

USAGE:
   {{template "usageTemplate" .}}

OPTIONS:
   ` + flagDocs{}.Render(cli.HelpFlag) + "\n",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				*status = exitUsage
				return fmt.Errorf("install-links takes exactly one directory")
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if self, err = filepath.EvalSymlinks(self); err != nil {
				return err
			}
			dir := c.Args().First()
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			for _, r := range roles {
				link := filepath.Join(dir, r.Program())
				if fi, err := os.Lstat(link); err == nil {
					if fi.Mode()&os.ModeSymlink == 0 {
						return fmt.Errorf("%s exists and is not a symlink; not replacing it", link)
					}
					if err := os.Remove(link); err != nil {
						return err
					}
				}
				if err := os.Symlink(self, link); err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, link, "->", self)
			}
			return nil
		},
	}
}
