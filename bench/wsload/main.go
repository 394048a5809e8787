// Command wsload is the bench's WebSocket load tool (github.com/gobwas/ws
// for the handshake, hand-made frames on the hot path).
//
// Modes:
//
//	-mode echo   -c conns: each connection sends a text message and waits
//	             for its echo, in a loop, for -warmup then -d; prints one
//	             line "MEASURE" when the measured phase starts, then one
//	             JSON line (msgs/s, p50/p90/p99 from a log-bucket histogram).
//	-mode idle   -c conns: opens them (from -src), prints "READY ok=N
//	             failed=M", holds them until stdin closes (or -hold), then
//	             prints "DONE alive=N closed=M" and exits.
//	-mode probe  one handshake and one echo; exit 0 and "ok", or exit 1.
//
// A wss:// URL is dialled with bench/internal/loadtls's client (X25519
// and P-256, as OpenSSL 3.0 clients offer), trusting the CA in -cacert (the
// harness makes a throwaway one per run); without -cacert, no chain check.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/blastbeat/blastbeat/bench/internal/hist"
	"github.com/blastbeat/blastbeat/bench/internal/loadtls"
)

type options struct {
	url         string
	mode        string
	conns       int
	dur, warmup time.Duration
	size        int
	src         string
	parallel    int
	timeout     time.Duration
	hold        time.Duration
	cacert      string
	tls         *tls.Config // wss:// only
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "ws://127.0.0.1:18080/ws", "WebSocket URL")
	flag.StringVar(&o.mode, "mode", "echo", "echo, idle or probe")
	flag.IntVar(&o.conns, "c", 1000, "connections")
	flag.DurationVar(&o.dur, "d", 5*time.Second, "measured duration (echo)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured echo time before -d")
	flag.IntVar(&o.size, "size", 32, "message payload bytes (echo)")
	flag.StringVar(&o.src, "src", "", "local source IP (e.g. 127.0.0.2); empty: the kernel's choice")
	flag.IntVar(&o.parallel, "parallel", 128, "handshakes in flight while connecting")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "dial + handshake timeout")
	flag.DurationVar(&o.hold, "hold", 15*time.Minute, "idle: the longest time to hold the connections")
	flag.StringVar(&o.cacert, "cacert", "", "PEM file of the CA to trust for wss:// URLs (empty: no chain check)")
	flag.Parse()

	if o.size < 1 || o.size > maxPayload {
		fail(fmt.Errorf("-size must be in [1, %d]", maxPayload))
	}
	var src net.Addr
	if o.src != "" {
		ip := net.ParseIP(o.src)
		if ip == nil || !ip.IsLoopback() {
			fail(fmt.Errorf("-src %q: want a loopback address", o.src))
		}
		src = &net.TCPAddr{IP: ip}
	}
	if !loopbackURL(o.url) {
		fail(fmt.Errorf("-url %q: the bench only talks to loopback", o.url))
	}
	if strings.HasPrefix(o.url, "wss://") {
		cfg, err := loadtls.Client(o.cacert)
		if err != nil {
			fail(err)
		}
		o.tls = cfg
	}

	switch o.mode {
	case "probe":
		probe(o, src)
	case "echo":
		echo(o, src)
	case "idle":
		idle(o, src)
	default:
		fail(fmt.Errorf("unknown -mode %q", o.mode))
	}
}

// loopbackURL reports whether u is a ws:// or wss:// URL on 127.0.0.0/8
// or localhost.
func loopbackURL(u string) bool {
	for _, p := range []string{"ws://127.", "ws://localhost", "wss://127.", "wss://localhost"} {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "wsload:", err)
	os.Exit(1)
}

func probe(o options, src net.Addr) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	c, err := dial(ctx, o.url, src, o.tls, o.timeout)
	if err != nil {
		fail(fmt.Errorf("handshake: %w", err))
	}
	_ = c.conn.SetDeadline(time.Now().Add(o.timeout))
	if err := c.setPayload([]byte("probe")); err != nil {
		fail(err)
	}
	if err := c.send(); err != nil {
		fail(fmt.Errorf("send: %w", err))
	}
	n, err := c.recv()
	if err != nil {
		fail(fmt.Errorf("echo: %w", err))
	}
	if n != len("probe") {
		fail(fmt.Errorf("echo: %d bytes back, want 5", n))
	}
	c.close()
	fmt.Println("ok")
}

// connectAll opens n connections with at most o.parallel handshakes in
// flight; failed dials are retried twice. It returns the open clients and
// the first error seen.
func connectAll(o options, src net.Addr, n int) ([]*client, int, error) {
	clients := make([]*client, n)
	var (
		wg       sync.WaitGroup
		failed   atomic.Int64
		firstErr atomic.Value
	)
	sem := make(chan struct{}, o.parallel)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var err error
			for attempt := range 3 {
				if attempt > 0 {
					time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
				}
				ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
				var c *client
				c, err = dial(ctx, o.url, src, o.tls, o.timeout)
				cancel()
				if err == nil {
					clients[i] = c
					return
				}
			}
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
		}()
	}
	wg.Wait()
	open := clients[:0]
	for _, c := range clients {
		if c != nil {
			open = append(open, c)
		}
	}
	var err error
	if s, ok := firstErr.Load().(string); ok {
		err = fmt.Errorf("%s", s)
	}
	return open, int(failed.Load()), err
}

// echoResult is wsload's JSON output in echo mode.
type echoResult struct {
	Conns      int     `json:"conns"`
	Connected  int     `json:"connected"`
	Failed     int     `json:"failed"`
	Msgs       uint64  `json:"msgs"`
	Secs       float64 `json:"secs"`
	Rate       float64 `json:"rate"`
	P50us      float64 `json:"p50_us"`
	P90us      float64 `json:"p90_us"`
	P99us      float64 `json:"p99_us"`
	MaxUs      float64 `json:"max_us"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
}

func echo(o options, src net.Addr) {
	clients, failed, dialErr := connectAll(o, src, o.conns)
	res := echoResult{Conns: o.conns, Connected: len(clients), Failed: failed}
	if dialErr != nil {
		res.FirstError = "dial: " + dialErr.Error()
	}
	payload := []byte(strings.Repeat("m", o.size))
	var (
		h        hist.Hist
		errs     atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.dur)
	// Tell the caller when the measured phase starts, so it can sample
	// the servers' CPU over the same window.
	marker := time.AfterFunc(o.warmup, func() { fmt.Println("MEASURE") })
	defer marker.Stop()
	for _, c := range clients {
		if err := c.setPayload(payload); err != nil {
			fail(err)
		}
		_ = c.conn.SetDeadline(end.Add(o.timeout))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.close()
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := c.send()
				var n int
				if err == nil {
					n, err = c.recv()
				}
				if err == nil && n != len(payload) {
					err = fmt.Errorf("echo of %d bytes, want %d", n, len(payload))
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				if t0.After(measureFrom) {
					h.Record(uint64(time.Since(t0)))
				}
			}
		}()
	}
	wg.Wait()
	res.Msgs = h.Count()
	res.Secs = o.dur.Seconds()
	res.Rate = float64(res.Msgs) / o.dur.Seconds()
	res.P50us = float64(h.Quantile(0.50)) / 1e3
	res.P90us = float64(h.Quantile(0.90)) / 1e3
	res.P99us = float64(h.Quantile(0.99)) / 1e3
	res.MaxUs = float64(h.Max()) / 1e3
	res.Errors = errs.Load()
	if s, ok := firstErr.Load().(string); ok && res.FirstError == "" {
		res.FirstError = s
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func idle(o options, src net.Addr) {
	clients, failed, dialErr := connectAll(o, src, o.conns)
	msg := ""
	if dialErr != nil {
		msg = " err=" + strings.ReplaceAll(dialErr.Error(), " ", "_")
	}
	fmt.Printf("READY ok=%d failed=%d%s\n", len(clients), failed, msg)

	var closed atomic.Int64
	for _, c := range clients {
		go func() {
			// Read only to answer pings and notice a close; an idle
			// connection receives nothing else.
			for {
				if _, err := c.recv(); err != nil {
					closed.Add(1)
					return
				}
			}
		}()
	}

	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
		}
		close(done)
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-done:
	case <-sigs:
	case <-time.After(o.hold):
	}
	alive := int64(len(clients)) - closed.Load()
	fmt.Printf("DONE alive=%d closed=%d\n", alive, closed.Load())
	for _, c := range clients {
		_ = c.conn.Close()
	}
}
