package caddyenroll

import (
	"context"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// Settings of a generated CA changed after the file names the CA change
// nothing: the server says which, rather than serve the old CA in silence
// (algorithm p256 → p384 and a reload looked like it worked).
func TestUnappliedCASettings(t *testing.T) {
	ctx := context.Background()
	c, _, err := ca.Open(ctx, ca.NewMemStore(), ca.Config{Name: "modern", CommonName: "Ops CA", Organization: "ITSP"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Algorithm() != ca.P256 {
		t.Fatalf("Algorithm() = %q, want p256", c.Algorithm())
	}
	tests := []struct {
		name string
		au   Authority
		want []string
	}{
		{"defaults", Authority{}, nil},
		{"as generated", Authority{Algorithm: "p256", CommonName: "Ops CA", Organization: "ITSP"}, nil},
		{"algorithm", Authority{Algorithm: "p384"}, []string{"algorithm p384 (the CA's is p256)"}},
		{"intermediate", Authority{Intermediate: true}, []string{"intermediate true (the CA has none)"}},
		{"names", Authority{CommonName: "New CA", Organization: "Other"}, []string{`common_name "New CA" (the CA's is "Ops CA")`, `organization "Other" (the CA's is "ITSP")`}},
		{"operator CA", Authority{CertFile: "ca.pem", KeyFile: "ca.key"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.au.unappliedSettings(c)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("unappliedSettings = %q, want %q", got, tc.want)
			}
		})
	}
	withIntermediate, _, err := ca.Open(ctx, ca.NewMemStore(), ca.Config{Name: "modern", Intermediate: true, Algorithm: ca.P384}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := (&Authority{}).unappliedSettings(withIntermediate); strings.Join(got, "|") != "intermediate false (the CA has one)" {
		t.Errorf("intermediate removed: %q", got)
	}
}

// A CA generated with an intermediate names its root "<common_name> Root"
// and its intermediate, which issues, common_name: the settings it was
// generated with are not reported as changed.
func TestUnappliedCASettingsWithIntermediate(t *testing.T) {
	c, _, err := ca.Open(context.Background(), ca.NewMemStore(), ca.Config{Name: "modern", Intermediate: true, CommonName: "Ops CA", Organization: "ITSP"}, "")
	if err != nil {
		t.Fatal(err)
	}
	au := Authority{Intermediate: true, CommonName: "Ops CA", Organization: "ITSP"}
	if got := au.unappliedSettings(c); len(got) != 0 {
		t.Errorf("settings the CA was generated with: %q, want none", got)
	}
	au.CommonName = "New CA"
	if got := au.unappliedSettings(c); strings.Join(got, "|") != `common_name "New CA" (the CA's is "Ops CA")` {
		t.Errorf("common_name changed: %q", got)
	}
}
