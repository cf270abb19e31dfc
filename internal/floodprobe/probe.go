package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// probe is one run's state shared by its phases.
type probe struct {
	o     *options
	t     *target
	csr   []byte
	nonce []byte       // of -user's enrollment: retrieve answers it
	valid *http.Client // -user's client, whose connection the warm-up opened
}

func run(o *options) error {
	u, _ := url.Parse(o.url) // checked by parseFlags
	p := &probe{o: o, t: &target{url: o.url, dial: o.dial, serverName: u.Hostname()}}
	if err := p.waitReady(u.Scheme == "https"); err != nil {
		return err
	}
	var err error
	if p.csr, err = newCSR("device4.com"); err != nil {
		return err
	}
	p.nonce = rnd(16)
	p.valid = p.t.client(o.measureSrc, 60*time.Second)

	for _, what := range []string{"first login (hashed)", "second login (cached)"} {
		s, d, err := p.t.post(p.valid, login(wire.OpRequest, o.user, o.pass, p.nonce, p.csr))
		if err != nil {
			return fmt.Errorf("%s of %s: %w", what, o.user, err)
		}
		fmt.Printf("%s %s: status=%d in %v\n", o.user, what, s, d.Round(time.Millisecond))
		if s != wire.StatusOK {
			return fmt.Errorf("%s of %s: status %d, not 0: the cached login cannot be measured", what, o.user, s)
		}
	}

	p.flood("login flood", o.workers, o.dur, func() wire.Request {
		return login(wire.OpRequest, "u"+rndHex(6), rndHex(8), rnd(16), p.csr)
	}, true)
	if o.junk > 0 {
		p.flood("junk flood (unknown operation)", o.junk, o.junkDur, func() wire.Request {
			return wire.Request{Operation: "frobnicate", Nonce: rnd(4)}
		}, false)
	}
	if o.user2 != "" {
		p.uncachedAfter()
	}
	p.idle(5 * time.Second)
	return nil
}

// waitReady waits until the root certificate exists (Caddy writes it at
// its first start) and getcacert answers status 0.
func (p *probe) waitReady(tlsSite bool) error {
	deadline := time.Now().Add(p.o.wait)
	var last error
	for time.Now().Before(deadline) {
		if tlsSite && p.t.roots == nil {
			roots, err := loadRoots(p.o.root)
			if err != nil {
				last = err
				time.Sleep(200 * time.Millisecond)
				continue
			}
			p.t.roots = roots
		}
		c := p.t.client(p.o.measureSrc, 5*time.Second)
		s, _, err := p.t.post(c, wire.Request{Operation: wire.OpGetCACert})
		c.CloseIdleConnections()
		if err == nil && s == wire.StatusOK {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("getcacert status %d", s)
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("server not ready after %v: %w", p.o.wait, last)
}

// flood runs workers posting req() for dur while measuring, then prints
// the phase's figures. withExtras adds -user3 and -reload-at.
func (p *probe) flood(name string, workers int, dur time.Duration, req func() wire.Request, withExtras bool) {
	o := p.o
	fmt.Printf("\n== %s: %d workers from %d addresses (%s…), %v\n", name, workers, len(o.sources), o.sources[0], dur)
	m0, merr := p.scrape()
	log0, lerr := p.logSize()
	pr0, perr := p.proc()
	if perr == nil && o.pid != 0 {
		fmt.Printf("before: RSS %d MiB\n", pr0.rssKB/1024)
	}

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	fl := newSeries()
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(src netip.Addr) {
			defer wg.Done()
			c := p.t.client(src, 30*time.Second)
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				fl.add(p.t.post(c, req()))
			}
		}(o.sources[i%len(o.sources)])
	}

	var reloaded atomic.Bool
	ca, vl, vlAfter := newSeries(), newSeries(), newSeries()
	wg.Add(2)
	go func() {
		defer wg.Done()
		c := p.t.client(o.measureSrc, 30*time.Second)
		defer c.CloseIdleConnections()
		for ctx.Err() == nil {
			ca.add(p.t.post(c, wire.Request{Operation: wire.OpGetCACert}))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		sawReload := false
		for ctx.Err() == nil {
			if !sawReload && reloaded.Load() {
				sawReload = true
				vlAfter.restart()
			}
			s, d, err := p.t.post(p.valid, login(wire.OpRetrieve, o.user, o.pass, p.nonce, p.csr))
			if sawReload {
				vlAfter.add(s, d, err)
			} else {
				vl.add(s, d, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if withExtras && o.user3 != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.uncachedDuring(ctx)
		}()
	}
	if withExtras && o.reloadAt > 0 {
		go p.reload(ctx, &reloaded)
	}

	cpu, maxRSS := p.sample(ctx, pr0)
	wg.Wait()
	secs := time.Since(start).Seconds()
	pr1, perr1 := p.proc()
	log1, lerr1 := p.logSize()
	time.Sleep(1500 * time.Millisecond) // the refusal summaries of the last second
	m1, merr1 := p.scrape()

	fmt.Printf("%s: %v, %.1f s with the workers' last answers\n", name, dur, secs)
	fmt.Println(fl.line("flood requests"))
	fmt.Println(ca.line("getcacert"))
	fmt.Println(vl.line("cached login of " + o.user + " (retrieve)"))
	if withExtras && o.reloadAt > 0 {
		fmt.Println(vlAfter.line("cached login of " + o.user + " after the reload"))
	}
	switch {
	case o.pid == 0:
	case errors.Join(perr, perr1) != nil:
		fmt.Println("server CPU/RSS:", errors.Join(perr, perr1))
	default:
		fmt.Printf("server CPU: avg %.0f%% of a core over %.1f s (per second: %s)\n", float64(pr1.ticks-pr0.ticks)/secs, secs, cpu())
		fmt.Printf("server RSS: before %d MiB, max %d MiB, end %d MiB\n", pr0.rssKB/1024, max(maxRSS(), pr1.rssKB)/1024, pr1.rssKB/1024)
	}
	switch {
	case o.logFile == "":
	case errors.Join(lerr, lerr1) != nil:
		fmt.Println("log:", errors.Join(lerr, lerr1))
	default:
		fmt.Printf("log: %d bytes in %.1f s = %.2f MB/min\n", log1-log0, secs, float64(log1-log0)/secs*60/1e6)
	}
	switch {
	case o.metrics == nil:
	case errors.Join(merr, merr1) != nil:
		fmt.Println("metrics:", errors.Join(merr, merr1))
	default:
		for _, l := range deltas(m0, m1) {
			fmt.Println("metric delta", l)
		}
	}
}

// sample reads the server's CPU and RSS every second until ctx ends. It
// returns the per-second CPU figures (percent of a core, from clock
// ticks at 100 Hz) and the highest RSS, to be read once ctx has ended.
func (p *probe) sample(ctx context.Context, prev procSample) (cpu func() string, maxRSS func() int64) {
	var (
		mu      sync.Mutex
		samples []string
		top     = prev.rssKB
	)
	if p.o.pid != 0 {
		go func() {
			tk := time.NewTicker(time.Second)
			defer tk.Stop()
			last := time.Now()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-tk.C:
					s, err := p.proc()
					mu.Lock()
					if err != nil {
						samples = append(samples, "?")
					} else {
						samples = append(samples, fmt.Sprintf("%.0f", float64(s.ticks-prev.ticks)/now.Sub(last).Seconds()))
						top = max(top, s.rssKB)
						prev = s
					}
					mu.Unlock()
					last = now
				}
			}
		}()
	}
	return func() string {
			mu.Lock()
			defer mu.Unlock()
			return strings.Join(samples, " ")
		}, func() int64 {
			mu.Lock()
			defer mu.Unlock()
			return top
		}
}

// uncachedDuring tries -user3 (never logged in, so its password must be
// hashed) every 200 ms during the flood until it succeeds: whether a new
// device gets a hash slot while guesses hold them.
func (p *probe) uncachedDuring(ctx context.Context) {
	o := p.o
	c := p.t.client(o.measureSrc, 60*time.Second)
	defer c.CloseIdleConnections()
	start := time.Now()
	tries := newSeries()
	for n := 1; ctx.Err() == nil; n++ {
		s, d, err := p.t.post(c, login(wire.OpRetrieve, o.user3, o.pass3, rnd(16), p.csr))
		tries.add(s, d, err)
		if err == nil && s == wire.StatusOK {
			fmt.Printf("uncached login of %s during the flood: status 0 at try %d, %v into the flood\n", o.user3, n, time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Println(tries.line("uncached login of " + o.user3 + " during the flood: no success"))
}

// uncachedAfter logs -user2 in after the floods until it succeeds or
// -after passes: how long the server takes to serve a new device again.
func (p *probe) uncachedAfter() {
	o := p.o
	c := p.t.client(o.measureSrc, o.after)
	defer c.CloseIdleConnections()
	start := time.Now()
	tries := newSeries()
	fmt.Println()
	for n := 1; time.Since(start) < o.after; n++ {
		s, d, err := p.t.post(c, login(wire.OpRetrieve, o.user2, o.pass2, rnd(16), p.csr))
		tries.add(s, d, err)
		if err == nil && s == wire.StatusOK {
			fmt.Printf("uncached login of %s after the floods: status 0 at try %d in %v, %v after the floods\n", o.user2, n, d.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Println(tries.line("uncached login of " + o.user2 + " after the floods: no success in " + o.after.String()))
}

// idle watches the server for d after everything: RSS and log growth of a
// server left alone (the log should stop growing).
func (p *probe) idle(d time.Duration) {
	log0, lerr := p.logSize()
	time.Sleep(d)
	log1, lerr1 := p.logSize()
	if p.o.pid != 0 {
		if s, err := p.proc(); err != nil {
			fmt.Println("idle RSS:", err)
		} else {
			fmt.Printf("%v idle later: RSS %d MiB\n", d, s.rssKB/1024)
		}
	}
	if p.o.logFile != "" {
		if err := errors.Join(lerr, lerr1); err != nil {
			fmt.Println("idle log:", err)
		} else {
			fmt.Printf("%v idle: log grew %d bytes\n", d, log1-log0)
		}
	}
}

// reload forces a config reload through the admin API (GET /config/, POST
// /load with Cache-Control: must-revalidate) at -reload-at into the flood.
func (p *probe) reload(ctx context.Context, reloaded *atomic.Bool) {
	select {
	case <-ctx.Done():
		fmt.Println("reload: the flood ended before -reload-at")
		return
	case <-time.After(p.o.reloadAt):
	}
	admin := *p.o.metrics
	c := &http.Client{Timeout: 60 * time.Second}
	admin.Path = "/config/"
	resp, err := c.Get(admin.String())
	if err != nil {
		fmt.Println("reload: reading the config:", err)
		return
	}
	cfg, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Printf("reload: reading the config: HTTP %d %v\n", resp.StatusCode, err)
		return
	}
	admin.Path = "/load"
	req, err := http.NewRequest(http.MethodPost, admin.String(), strings.NewReader(string(cfg)))
	if err != nil {
		fmt.Println("reload:", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cache-Control", "must-revalidate")
	start := time.Now()
	resp, err = c.Do(req)
	if err != nil {
		fmt.Println("reload:", err)
		return
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		fmt.Println("reload: reading the answer:", err)
	}
	reloaded.Store(true)
	fmt.Printf("forced reload at %v: HTTP %d in %v %s\n", p.o.reloadAt, resp.StatusCode, time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(b)))
}

func (p *probe) scrape() (map[string]float64, error) {
	if p.o.metrics == nil {
		return nil, nil
	}
	return scrape(p.o.metrics.String())
}

func (p *probe) logSize() (int64, error) {
	if p.o.logFile == "" {
		return 0, nil
	}
	st, err := os.Stat(p.o.logFile)
	if err != nil {
		return 0, fmt.Errorf("server log: %w", err)
	}
	return st.Size(), nil
}

func (p *probe) proc() (procSample, error) {
	if p.o.pid == 0 {
		return procSample{}, nil
	}
	return readProc(p.o.pid)
}
