// Command scaler is OpenGRIS Scaler's engine in one binary. Called as a
// scaler_* link it runs that role; called as "scaler ROLE" it runs ROLE.
package main

import "github.com/opengris/scaler/commands"

func main() { commands.Exit() }
