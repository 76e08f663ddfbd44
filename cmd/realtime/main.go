// Command realtime is the chat backend's node binary: `realtime serve` runs a
// node, `realtime token` mints a development JWT, `realtime version` prints
// the version. See README.md, or `realtime help serve` for every flag.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(newApp().Run(context.Background(), os.Args[1:]))
}
