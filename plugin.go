// Package clearinghouse is the Caddy plugin: importing it (as xcaddy's
// `--with github.com/clearinghouse-dev/caddy-clearinghouse` does) registers
// the enroll app, the enroll and osp handlers, the enroll trust pool, the
// admin API and the `caddy enroll` commands. See caddyenroll.
package clearinghouse

import (
	_ "github.com/clearinghouse-dev/caddy-clearinghouse/caddyenroll"
)
