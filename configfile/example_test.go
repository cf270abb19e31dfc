package configfile_test

import (
	"fmt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

func Example() {
	src := `# devices of the ITSP
group 'ACME ITSP'
device 'device1.itsp.com' 'ACME ITSP' enabled   # primary
device device2.itsp.com 'ACME ITSP' disabled
route 'ACME ITSP' '+1 404...' 'device1.itsp.com' 75 device2.itsp.com 0
`
	f, err := configfile.Parse("clearinghouse.conf", []byte(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	r := f.Routes[0]
	fmt.Printf("%q -> prefix %q exact %v, first device %s\n", r.Number, r.Prefix, r.Exact, f.TargetName(r.Targets[0]))

	f.SetEnrolled("device1.itsp.com", true)
	fmt.Print(string(f.Bytes()))

	_, err = configfile.Parse("bad.conf", []byte("group g\nroute g '+1...' nodevice 1\nssl maybe\n"))
	fmt.Println(err)
	// Output:
	// "+1 404..." -> prefix "1404" exact false, first device device1.itsp.com
	// # devices of the ITSP
	// group 'ACME ITSP'
	// device 'device1.itsp.com' 'ACME ITSP' enabled enrolled   # primary
	// device device2.itsp.com 'ACME ITSP' disabled
	// route 'ACME ITSP' '+1 404...' 'device1.itsp.com' 75 device2.itsp.com 0
	// bad.conf:2: route: undefined device (near "nodevice")
	// bad.conf:3: ssl: want enabled or disabled (near "maybe")
}
