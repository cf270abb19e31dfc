package ca

import (
	"net"
	"strings"
)

// checkConstraints refuses a device name that a name constraint of the
// issuer's chain does not permit (an operator's CA may be a constrained
// sub-CA): every verifier would refuse the certificate. RFC 5280 section
// 4.2.1.10: a DNS constraint "itsp.com" permits itsp.com and its
// subdomains, ".itsp.com" its subdomains only; constraints of one name type
// leave the other unconstrained.
func (c *CA) checkConstraints(name string, ip net.IP) error {
	for _, cert := range c.chain {
		if ip != nil {
			if !ipPermitted(ip, cert.PermittedIPRanges, cert.ExcludedIPRanges) {
				return errorf(ErrBadDeviceName, "%s is outside the name constraints of the CA certificate %q", ip, cert.Subject.CommonName)
			}
			continue
		}
		if !dnsPermitted(name, cert.PermittedDNSDomains, cert.ExcludedDNSDomains) {
			return errorf(ErrBadDeviceName, "%s is outside the name constraints of the CA certificate %q", name, cert.Subject.CommonName)
		}
	}
	return nil
}

func ipPermitted(ip net.IP, permitted, excluded []*net.IPNet) bool {
	for _, n := range excluded {
		if n.Contains(ip) {
			return false
		}
	}
	if len(permitted) == 0 {
		return true
	}
	for _, n := range permitted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func dnsPermitted(name string, permitted, excluded []string) bool {
	for _, e := range excluded {
		if dnsWithin(name, e) {
			return false
		}
	}
	if len(permitted) == 0 {
		return true
	}
	for _, p := range permitted {
		if dnsWithin(name, p) {
			return true
		}
	}
	return false
}

// dnsWithin reports whether name is within the DNS constraint.
func dnsWithin(name, constraint string) bool {
	name, constraint = strings.ToLower(name), strings.ToLower(constraint)
	switch {
	case constraint == "":
		return true
	case strings.HasPrefix(constraint, "."):
		return strings.HasSuffix(name, constraint)
	}
	return name == constraint || strings.HasSuffix(name, "."+constraint)
}

// CheckConstraints reports whether the CA may certify device under the
// name constraints of its chain (ErrBadDeviceName otherwise), as Sign
// checks it: enrollment refuses such a request up front.
func (c *CA) CheckConstraints(device string) error {
	name, ip, err := NormalizeDevice(device)
	if err != nil {
		return err
	}
	return c.checkConstraints(name, ip)
}
