package routing_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/routing"
)

func Example() {
	// Table 7 of the seed
	f, err := configfile.ParseFile("../configfile/testdata/clearinghouse.conf")
	if err != nil {
		fmt.Println(err)
		return
	}
	tab, err := routing.Build(f, routing.Options{
		SignalAddress: map[string]string{"device4.carrier.com": "192.0.2.44:5070"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var router routing.Router
	router.Swap(tab) // and again whenever the file changes

	// an authorization request from device1.itsp.com (group ACME ITSP)
	rnd := rand.New(rand.NewPCG(1, 2)) // one per goroutine
	revoked := map[string]bool{"device9.example": true}
	eligible := func(device string) bool { return !revoked[device] }
	dst := make([]routing.Destination, 0, 10)
	dst, err = router.Load().Route("device1.itsp.com", "+1 678 555-0100", 5, rnd, eligible, dst)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range dst {
		fmt.Printf("%s (%s, weight %d) at %s\n", d.Device, d.Group, d.Weight, d.SignalAddress)
	}
	info, _ := router.Load().Lookup("ACME ITSP", "14048724799")
	fmt.Printf("route %q of group %q, line %d\n", info.Pattern, info.Group, info.Line)

	_, err = router.Load().Route("device4.com", "33612345678", 0, rnd, eligible, dst[:0])
	fmt.Println(err)
	// Output:
	// device2.itsp.com (ACME ITSP, weight 25) at device2.itsp.com:5060
	// device4.carrier.com (BT-Concert, weight 0) at [192.0.2.44]:5070
	// route "+1 404..." of group "ACME ITSP", line 35
	// routing: no usable destination device
}
