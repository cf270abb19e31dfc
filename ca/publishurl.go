package ca

import (
	"fmt"
	"net/url"
	"strings"
)

// CheckPublishURLs is CheckPublishURL of every URL of the lists.
func CheckPublishURLs(lists ...[]string) error {
	for _, urls := range lists {
		for _, u := range urls {
			if err := CheckPublishURL(u); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckPublishURL reports whether u can stand in a certificate as a CRL
// distribution point or a caIssuers location: an absolute http or https
// URL with a host, in ASCII (the extensions' IA5String), without user
// information, query or fragment. RFC 5280 (4.2.1.13, 4.2.2.1) expects
// http for both: a client fetching the CRL over https would need the CRL
// to check the server's certificate first.
func CheckPublishURL(u string) error {
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] >= 0x7f {
			return fmt.Errorf("ca: URL %q: only printable ASCII without spaces can stand in a certificate", u)
		}
	}
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return fmt.Errorf("ca: URL %q: %v", u, err)
	case !strings.EqualFold(p.Scheme, "http") && !strings.EqualFold(p.Scheme, "https"):
		return fmt.Errorf("ca: URL %q: want an http:// (or https://) URL", u)
	case p.Host == "" || p.Hostname() == "":
		return fmt.Errorf("ca: URL %q: names no host", u)
	case p.User != nil || p.RawQuery != "" || p.ForceQuery || p.Fragment != "":
		return fmt.Errorf("ca: URL %q: no user, query or fragment", u)
	}
	return nil
}
