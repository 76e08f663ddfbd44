package bench

import (
	"fmt"
	"io"
)

func compareMain(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "bench compare: not yet")
	return ExitUsage
}
