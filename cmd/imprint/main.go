// Command imprint is the Imprint server and its admin command line; see
// internal/cli.
package main

import (
	"context"
	"os"

	"github.com/imprint-osd/imprint/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
