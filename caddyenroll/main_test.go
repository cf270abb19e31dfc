package caddyenroll_test

import (
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }
