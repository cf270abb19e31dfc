package caddyenroll

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func TestCaddyfileNonceRetention(t *testing.T) {
	cases := []struct {
		name, option string
		want         time.Duration
		err          string
	}{
		{"absent", "", 0, ""},
		{"hours", "nonce_retention 36h", 36 * time.Hour, ""},
		{"days", "nonce_retention 7d", 7 * 24 * time.Hour, ""},
		{"no argument", "nonce_retention", 0, "wrong argument count"},
		{"two arguments", "nonce_retention 1h 2h", 0, "wrong argument count"},
		{"not a duration", "nonce_retention soon", 0, `nonce_retention "soon" is not a duration`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := caddyfile.NewTestDispenser("enroll {\n\tconfig_file clearinghouse.conf\n\t" + c.option + "\n}")
			v, err := parseGlobalOption(d, nil)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			app, ok := v.(httpcaddyfile.App)
			if !ok || app.Name != "enroll" {
				t.Fatalf("parsed into %#v, want the enroll app", v)
			}
			if c.want == 0 && strings.Contains(string(app.Value), "nonce_retention") {
				t.Errorf("JSON names nonce_retention though the Caddyfile does not: %s", app.Value)
			}
			var got App
			if err := json.Unmarshal(app.Value, &got); err != nil {
				t.Fatal(err)
			}
			if time.Duration(got.NonceRetention) != c.want || got.ConfigFile != "clearinghouse.conf" {
				t.Errorf("nonce_retention %v, config_file %q; want %v and clearinghouse.conf (JSON %s)",
					time.Duration(got.NonceRetention), got.ConfigFile, c.want, app.Value)
			}
		})
	}
}

// A second global enroll option is refused with its position.
func TestCaddyfileEnrollOptionOnce(t *testing.T) {
	src := "{\n\tenroll {\n\t\tconfig_file a.conf\n\t}\n\tenroll {\n\t\tconfig_file b.conf\n\t}\n}\n:0 {\n\tenroll\n}\n"
	_, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err == nil || !strings.Contains(err.Error(), "may appear only once") || !strings.Contains(err.Error(), "Caddyfile:5") {
		t.Fatalf("error %v, want one naming Caddyfile:5", err)
	}
}

// A single-valued subdirective given twice is refused with its position,
// not silently replaced by the last; repeatable ones repeat.
func TestCaddyfileRepeatedOption(t *testing.T) {
	global, handler, osp := parseGlobal, parseEnrollDirective, parseOSP
	runCaddyfileCases(t, []caddyfileCase{
		{"approval twice", global, "enroll {\n\tapproval manual\n\tapproval auto\n}", "approval may appear only once, at Testfile:3"},
		{"config_file twice", global, "enroll {\n\tconfig_file a.conf\n\tconfig_file b.conf\n}", "config_file may appear only once, at Testfile:3"},
		{"lockout twice", global, "enroll {\n\tlockout 1s 1m\n\tlockout 2s 2m\n}", "lockout may appear only once"},
		{"same device_address twice", global, "enroll {\n\tdevice_address gw1 192.0.2.1\n\tdevice_address gw1 192.0.2.2\n}", "device_address gw1 is given twice, at Testfile:3"},
		{"repeatable", global, "enroll {\n\tconfig_file a.conf\n\taccount a h\n\taccount b h\n\tdevice_address gw1 192.0.2.1\n\tdevice_address gw2 192.0.2.2\n\tca modern\n\tca legacy\n}", ""},
		{"ca option twice", global, "enroll {\n\tca {\n\t\talgorithm p256\n\t\tvalidity 1d\n\t\talgorithm p384\n\t}\n}", "algorithm may appear only once, at Testfile:5"},
		{"same option in two cas", global, "enroll {\n\tca modern {\n\t\talgorithm p256\n\t}\n\tca legacy {\n\t\talgorithm rsa2048\n\t}\n}", ""},
		{"handler content_type twice", handler, "enroll {\n\tcontent_type text/html\n\tcontent_type text/plain\n}", "content_type may appear only once, at Testfile:3"},
		{"handler profile as argument and option", handler, "enroll legacy {\n\tprofile modern\n}", "profile may appear only once, at Testfile:2"},
		{"handler flag twice", handler, "enroll {\n\tplain_getcacert\n\tplain_getcacert\n}", "plain_getcacert may appear only once"},
		{"osp tokens twice", osp, "osp {\n\ttokens signed\n\ttokens unsigned\n}", "tokens may appear only once, at Testfile:3"},
		{"osp same source twice", osp, "osp {\n\tsource_address 192.0.2.1 a\n\tsource_address 192.0.2.1 b\n}", "source_address 192.0.2.1 is given twice"},
		{"osp sources", osp, "osp {\n\tsource_address 192.0.2.1 a\n\tsource_address 192.0.2.2 b\n}", ""},
	})
}

// A flag takes no arguments: the rest of its line is refused with its
// position, not read as the next option (`plain_http tokens unsigned` set
// both).
func TestCaddyfileFlagArguments(t *testing.T) {
	global, handler, osp := parseGlobal, parseEnrollDirective, parseOSP
	runCaddyfileCases(t, []caddyfileCase{
		{"ca flags", global, "enroll {\n\tca {\n\t\tintermediate\n\t\tallow_rsa1024\n\t\tserver_auth\n\t}\n}", ""},
		{"intermediate and an option", global, "enroll {\n\tca {\n\t\tintermediate server_auth\n\t}\n}", `intermediate takes no arguments, not "server_auth", at Testfile:3`},
		{"allow_rsa1024 with a value", global, "enroll {\n\tca legacy {\n\t\tallow_rsa1024 off\n\t}\n}", `allow_rsa1024 takes no arguments, not "off", at Testfile:3`},
		{"server_auth and an option", global, "enroll {\n\tca {\n\t\tserver_auth validity 1d\n\t}\n}", `server_auth takes no arguments, not "validity", at Testfile:3`},
		{"plain_getcacert", handler, "enroll {\n\tplain_getcacert\n}", ""},
		{"plain_getcacert and an option", handler, "enroll {\n\tplain_getcacert max_body 2KiB\n}", `plain_getcacert takes no arguments, not "max_body", at Testfile:2`},
		{"plain_getcacert and the block's end", handler, "enroll {\n\tplain_getcacert }\n}", `plain_getcacert takes no arguments, not "}", at Testfile:2`},
		{"plain_http", osp, "osp {\n\tplain_http\n\ttokens unsigned\n}", ""},
		{"plain_http and an option", osp, "osp {\n\tplain_http tokens unsigned\n}", `plain_http takes no arguments, not "tokens", at Testfile:2`},
	})
}

// An option that takes no block refuses one: the Dispenser read a block
// after `account` (on one line or on several) as more options of the
// enclosing block, so `account a HASH { approval manual }` set the approval.
func TestCaddyfileBlockAfterOption(t *testing.T) {
	global, handler, osp := parseGlobal, parseEnrollDirective, parseOSP
	const hash = "$2a$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
	runCaddyfileCases(t, []caddyfileCase{
		{"account with a block on one line", global, "enroll {\n\taccount a " + hash + " { approval manual }\n}", "account takes no block, at Testfile:2"},
		{"account with a block", global, "enroll {\n\taccount a " + hash + " {\n\t\tapproval manual\n\t}\n}", "account takes no block, at Testfile:2"},
		{"config_file with a block", global, "enroll {\n\tconfig_file x.conf {\n\t\tapproval auto\n\t}\n}", "config_file takes no block"},
		{"a ca option with a block", global, "enroll {\n\tca {\n\t\talgorithm p256 { validity 1d }\n\t}\n}", "algorithm takes no block, at Testfile:3"},
		{"ca takes its block", global, "enroll {\n\tca {\n\t\talgorithm p256\n\t}\n\taccount a " + hash + "\n}", ""},
		{"enroll directive option with a block", handler, "enroll {\n\tprofile modern { max_body 2KiB }\n}", "profile takes no block, at Testfile:2"},
		{"osp option with a block", osp, "osp {\n\ttokens signed {\n\t\tplain_http\n\t}\n}", "tokens takes no block, at Testfile:2"},
		{"osp flag with a block", osp, "osp {\n\tplain_http {\n\t}\n}", ""}, // an empty block says nothing
	})
}

// max_body is the size written; one past what an int64 holds is refused,
// not wrapped around to a negative size.
func TestCaddyfileMaxBody(t *testing.T) {
	cases := []struct {
		value string
		want  int64
		err   string
	}{
		{"2KiB", 2048, ""},
		{"64KiB", 64 << 10, ""},
		{"9223372036854775807", math.MaxInt64, ""}, // refused when provisioned: more than 1 MiB
		{"9223372036854775808", 0, "max_body must be between 1 KiB and 64 KiB, not 9223372036854775808, at Testfile:2"},
		{"10EB", 0, "max_body must be between 1 KiB and 64 KiB, not 10EB, at Testfile:2"},
		{"18446744073709551615", 0, "max_body must be between 1 KiB and 64 KiB"},
		{"18446744073709551616", 0, "max_body must be between 1 KiB and 64 KiB, not 18446744073709551616, at Testfile:2"},
		{"1.5KiB", 1536, ""},
		{`"64 KiB"`, 64 << 10, ""},
		// not a size: the option and the value as written, and what is
		// expected (not strconv's `parsing "": invalid syntax`, nor
		// "unhandled size name: x100")
		{"lots", 0, `max_body "lots" is not a size: write a number of bytes, with a unit or not, such as 2KiB, 64KiB or 4096, at Testfile:2`},
		{"abc", 0, `max_body "abc" is not a size: write a number of bytes`},
		{"-5", 0, `max_body "-5" is not a size`},
		{"0x100", 0, `max_body "0x100" is not a size`},
		{"1e3", 0, `max_body "1e3" is not a size`},
		{"2KiBs", 0, `max_body "2KiBs" is not a size`},
		{`""`, 0, `max_body "" is not a size`},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			h, err := parseHandlerDirective(httpcaddyfile.Helper{Dispenser: caddyfile.NewTestDispenser("enroll {\n\tmax_body " + c.value + "\n}")})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := h.(*Handler).MaxBody; got != c.want {
				t.Errorf("max_body %d, want %d", got, c.want)
			}
		})
	}
}

// A value that is not a duration (an integer) is refused naming the
// option, the value as written and what is expected: the message said
// `abc: time: invalid duration "abc"`, without the option, and
// `"five" is not an integer`.
func TestCaddyfileValueErrors(t *testing.T) {
	global, osp := parseGlobal, parseOSP
	const expected = "is not a duration: write a number and a unit (ns, us, ms, s, m, h, d), such as 2s, 15m or 30d"
	runCaddyfileCases(t, []caddyfileCase{
		{"watch_interval", global, "enroll {\n\twatch_interval abc\n}", `watch_interval "abc" ` + expected + ", at Testfile:2"},
		{"watch_interval without a unit", global, "enroll {\n\twatch_interval 5\n}", `watch_interval "5" ` + expected},
		{"nonce_retention", global, "enroll {\n\tnonce_retention 1e3\n}", `nonce_retention "1e3" ` + expected},
		{"lockout first", global, "enroll {\n\tlockout abc 1m\n}", `lockout "abc" ` + expected + ", at Testfile:2"},
		{"lockout longest", global, "enroll {\n\tlockout 1s 0x10\n}", `lockout "0x10" ` + expected},
		{"max_issued_per_device window", global, "enroll {\n\tmax_issued_per_device 2 soon\n}", `max_issued_per_device window "soon" ` + expected},
		{"validity", global, "enroll {\n\tca {\n\t\tvalidity abc\n\t}\n}", `validity "abc" ` + expected + ", at Testfile:3"},
		{"root_validity", global, "enroll {\n\tca {\n\t\troot_validity 10y\n\t}\n}", `root_validity "10y" ` + expected},
		{"crl_validity", global, "enroll {\n\tca legacy {\n\t\tcrl_validity -\n\t}\n}", `crl_validity "-" ` + expected},
		{"token_validity", osp, "osp {\n\ttoken_validity abc\n}", `token_validity "abc" ` + expected + ", at Testfile:2"},
		{"days", global, "enroll {\n\tca {\n\t\tvalidity 30d\n\t}\n\tlockout 1s 15m\n}", ""},
		{"max_pending", global, "enroll {\n\tmax_pending 0x10\n}", `max_pending "0x10" is not an integer, at Testfile:2`},
		{"failures_allowed", global, "enroll {\n\tfailures_allowed five\n}", `failures_allowed "five" is not an integer`},
		{"osp max_destinations", osp, "osp {\n\tmax_destinations x\n}", `max_destinations "x" is not an integer, at Testfile:2`},
	})
}

// An explicit 0 is refused where the JSON config reads zero as "the
// default": `validity 0` must not silently become a year.
func TestCaddyfileZeroRefused(t *testing.T) {
	global, handler, osp := parseGlobal, parseEnrollDirective, parseOSP
	runCaddyfileCases(t, []caddyfileCase{
		{"watch_interval 0", global, "enroll {\n\twatch_interval 0\n}", "watch_interval 0 is not a setting: leave watch_interval out for its default; a negative duration re-reads the file only on reload, at Testfile:2"},
		{"watch_interval 0s", global, "enroll {\n\twatch_interval 0s\n}", "watch_interval 0 is not a setting"},
		{"watch_interval negative", global, "enroll {\n\twatch_interval -1s\n}", ""},
		{"nonce_retention 0", global, "enroll {\n\tnonce_retention 0\n}", "nonce_retention 0 is not a setting: leave nonce_retention out for its default, at Testfile:2"},
		{"max_destinations 0", global, "enroll {\n\tmax_destinations 0\n}", "max_destinations 0 is not a setting"},
		{"max_destinations 5", global, "enroll {\n\tmax_destinations 5\n}", ""},
		{"validity 0", global, "enroll {\n\tca {\n\t\tvalidity 0\n\t}\n}", "validity 0 is not a setting: leave validity out for its default, at Testfile:3"},
		{"root_validity 0", global, "enroll {\n\tca {\n\t\troot_validity 0d\n\t}\n}", "root_validity 0 is not a setting"},
		{"crl_validity 0", global, "enroll {\n\tca {\n\t\tcrl_validity 0h\n\t}\n}", "crl_validity 0 is not a setting"},
		{"validity 1d", global, "enroll {\n\tca {\n\t\tvalidity 1d\n\t}\n}", ""},
		{"backups out of range", global, "enroll {\n\tbackups 99999999999999999999\n}", "backups 99999999999999999999 is out of range, at Testfile:2"},
		{"backups not a number", global, "enroll {\n\tbackups five\n}", `backups "five" is not an integer, at Testfile:2`},
		{"backups 0 means none", global, "enroll {\n\tbackups 0\n}", ""},
		{"failures_allowed 0", global, "enroll {\n\tfailures_allowed 0\n}", "failures_allowed 0 is not a setting"},
		{"failures_allowed 1", global, "enroll {\n\tfailures_allowed 1\n}", ""},
		{"lockout 0 first", global, "enroll {\n\tlockout 0 1m\n}", "lockout 0 is not a setting: leave lockout out for its default (1s 15m), at Testfile:2"},
		{"lockout 0s longest", global, "enroll {\n\tlockout 1s 0s\n}", "lockout 0 is not a setting"},
		{"lockout 1s 1m", global, "enroll {\n\tlockout 1s 1m\n}", ""},
		{"max_body 0", handler, "enroll {\n\tmax_body 0\n}", "max_body must be between 1 KiB and 64 KiB, not 0, at Testfile:2"},
		{"token_validity 0", osp, "osp {\n\ttoken_validity 0s\n}", "token_validity 0 is not a setting"},
		{"osp max_destinations 0", osp, "osp {\n\tmax_destinations 0\n}", "max_destinations 0 is not a setting"},
		{"osp max_destinations 2", osp, "osp {\n\tmax_destinations 2\n}", ""},
	})
}

// The three Caddyfile parsers, as error-only functions for caddyfileCase.
func parseGlobal(d *caddyfile.Dispenser) error { _, err := parseGlobalOption(d, nil); return err }

func parseEnrollDirective(d *caddyfile.Dispenser) error {
	_, err := parseHandlerDirective(httpcaddyfile.Helper{Dispenser: d})
	return err
}

func parseOSP(d *caddyfile.Dispenser) error {
	_, err := parseOSPDirective(httpcaddyfile.Helper{Dispenser: d})
	return err
}

// caddyfileCase is src given to parse, accepted or refused with err.
type caddyfileCase struct {
	name  string
	parse func(*caddyfile.Dispenser) error
	src   string
	err   string // "" for accepted
}

// wantErr fails unless err is nil for want "", or contains want.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}

func runCaddyfileCases(t *testing.T, cases []caddyfileCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.parse(caddyfile.NewTestDispenser(c.src))
			wantErr(t, err, c.err)
		})
	}
}

// crl_url and issuer_url take one URL or more, checked as the CA checks
// them; the JSON carries them for the CA.
func TestCaddyfilePublishedURLs(t *testing.T) {
	global := parseGlobal
	runCaddyfileCases(t, []caddyfileCase{
		{"two crl_urls", global, "enroll {\n\tca {\n\t\tcrl_url http://a.example/ca.crl http://b.example/ca.crl\n\t\tissuer_url http://a.example/ca.crt\n\t}\n}", ""},
		{"crl_url without URL", global, "enroll {\n\tca {\n\t\tcrl_url\n\t}\n}", "wrong argument count"},
		{"crl_url ldap", global, "enroll {\n\tca {\n\t\tcrl_url ldap://a.example/x\n\t}\n}", `crl_url: ca: URL "ldap://a.example/x": want an http:// (or https://) URL, at Testfile:3`},
		{"issuer_url with a query", global, "enroll {\n\tca legacy {\n\t\tissuer_url http://a.example/ca.crt?x\n\t}\n}", "issuer_url: ca: URL"},
		{"crl_url twice", global, "enroll {\n\tca {\n\t\tcrl_url http://a.example/ca.crl\n\t\tcrl_url http://b.example/ca.crl\n\t}\n}", "crl_url may appear only once"},
	})
	v, err := parseGlobalOption(caddyfile.NewTestDispenser("enroll {\n\tca {\n\t\tcrl_url http://a.example/ca.crl\n\t\tissuer_url http://a.example/ca.crt\n\t}\n}"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var app App
	if err := json.Unmarshal(v.(httpcaddyfile.App).Value, &app); err != nil {
		t.Fatal(err)
	}
	au := app.Authorities[profileModern]
	if au == nil || !slices.Equal(au.CRLURLs, []string{"http://a.example/ca.crl"}) || !slices.Equal(au.IssuerURLs, []string{"http://a.example/ca.crt"}) {
		t.Fatalf("authority %+v", au)
	}
	if err := (&Authority{CRLURLs: []string{"ftp://a.example/ca.crl"}}).validate(profileModern); err == nil {
		t.Fatal("JSON crl_urls of ftp:// accepted")
	}
}
