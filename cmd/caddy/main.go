// Command caddy is Caddy with the clearinghouse plugin, for `go run` and
// the tests. Production builds use ./xcaddy.sh, which does the same.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/clearinghouse-dev/caddy-clearinghouse"
)

func main() {
	caddycmd.Main()
}
