package routing

import (
	"math"
	"slices"
	"testing"
)

const weightConf = `group ""
group W
device src.example W enabled enrolled
device a.example W enabled enrolled
device b.example W enabled enrolled
device c.example W enabled enrolled
device x.example W enabled enrolled
device y.example W enabled enrolled
device off.example W disabled enrolled
route W "" a.example 60 b.example 25 c.example 15
route W '1...' x.example 0 a.example 5 off.example 7 y.example 0 b.example 5
`

// chiSquare of observed counts against expected probabilities.
func chiSquare(obs []int, p []float64) float64 {
	n := 0
	for _, o := range obs {
		n += o
	}
	var x float64
	for i, o := range obs {
		e := p[i] * float64(n)
		x += (float64(o) - e) * (float64(o) - e) / e
	}
	return x
}

// Critical values of the chi-square distribution at p = 0.001.
var chi001 = map[int]float64{1: 10.828, 2: 13.816}

// TestWeightedShares draws 100,000 answers for the 60/25/15 route with a
// fixed seed. The first place must follow the weights (within ±1 point,
// and by a chi-square test at p = 0.001); the second place, given the
// first, must follow the weights of the devices left (chi-square).
func TestWeightedShares(t *testing.T) {
	f := parse(t, "w.conf", []byte(weightConf))
	tab := build(t, f, Options{})
	rnd := newRand(42)
	devs := []string{"a.example", "b.example", "c.example"}
	w := []float64{60, 25, 15}
	const n = 100000
	first := make([]int, 3)
	second := [3][]int{make([]int, 3), make([]int, 3), make([]int, 3)} // second[first][second]
	dst := make([]Destination, 0, 4)
	for i := 0; i < n; i++ {
		ds, err := tab.Route("src.example", "4930123", 0, rnd, nil, dst[:0])
		if err != nil || len(ds) != 3 {
			t.Fatalf("Route = %v %v", names(ds), err)
		}
		a, b := slices.Index(devs, ds[0].Device), slices.Index(devs, ds[1].Device)
		first[a]++
		second[a][b]++
	}
	for i, c := range first {
		share := float64(c) / n
		want := w[i] / 100
		t.Logf("first %s: %.4f (want %.2f)", devs[i], share, want)
		if math.Abs(share-want) > 0.01 {
			t.Errorf("first choice %s share %.4f, want %.2f ± 0.01", devs[i], share, want)
		}
	}
	if x := chiSquare(first, []float64{.60, .25, .15}); x > chi001[2] {
		t.Errorf("first choice chi-square %.2f > %.2f", x, chi001[2])
	}
	for a := range 3 {
		var obs []int
		var p []float64
		left := 100 - w[a]
		for b := range 3 {
			if b == a {
				if second[a][b] != 0 {
					t.Errorf("%s twice", devs[a])
				}
				continue
			}
			obs = append(obs, second[a][b])
			p = append(p, w[b]/left)
		}
		x := chiSquare(obs, p)
		t.Logf("after %s: second %v, expected shares %.3f, chi-square %.2f", devs[a], obs, p, x)
		if x > chi001[1] {
			t.Errorf("second choice after %s: %v, expected shares %v (chi-square %.2f > %.2f)", devs[a], obs, p, x, chi001[1])
		}
	}
}

// TestWeightZeroOrder: positive weights first (disabled off.example
// skipped), then the weight-0 devices in route order, whatever the draw.
func TestWeightZeroOrder(t *testing.T) {
	f := parse(t, "w.conf", []byte(weightConf))
	tab := build(t, f, Options{})
	rnd := newRand(1)
	got := map[string]int{}
	for range 1000 {
		ds, err := tab.Route("src.example", "1555", 0, rnd, nil, nil)
		if err != nil || len(ds) != 4 {
			t.Fatalf("%v %v", names(ds), err)
		}
		if !slices.Equal(names(ds[2:]), []string{"x.example", "y.example"}) {
			t.Fatalf("fallbacks %v", names(ds))
		}
		got[ds[0].Device]++
	}
	if got["a.example"] < 400 || got["b.example"] < 400 {
		t.Errorf("equal weights not shared: %v", got)
	}
	// the source itself is never offered, even as a fallback
	ds, err := tab.Route("x.example", "1555", 0, rnd, nil, nil)
	if err != nil || slices.Contains(names(ds), "x.example") || len(ds) != 3 {
		t.Errorf("from x: %v %v", names(ds), err)
	}
}

// TestManyCandidates: more positive-weight devices than the on-stack buffer.
func TestManyCandidates(t *testing.T) {
	src := "group g\ndevice s g enabled enrolled\n"
	route := "route g '1...'"
	for i := range 50 {
		d := "d" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		src += "device " + d + " g enabled enrolled\n"
		route += " " + d + " " + []string{"1", "0", "3"}[i%3]
	}
	f := parse(t, "many.conf", []byte(src+route+"\n"))
	tab := build(t, f, Options{MaxDestinations: 100})
	ds, err := tab.Route("s", "123", 0, newRand(3), nil, nil)
	if err != nil || len(ds) != 50 {
		t.Fatalf("%d destinations, %v", len(ds), err)
	}
	checkDestinations(t, f, &f.Routes[0], "s", 100, ds, nil)
}
