// Command tlsload is the bench's TLS handshake load tool. Each of -c
// workers, in a loop: opens a TCP connection, does a full TLS handshake
// (the client keeps no session cache, so no handshake is a resumption),
// sends one GET with "Connection: close", reads the whole response and
// closes. It prints one line "MEASURE" when the measured phase starts
// (after -warmup), then, after -d, one JSON line: handshakes (each with
// its request) per second and p50/p90/p99 of connect → last byte.
//
// Why not wrk: wrk keeps each connection slot's TLS session and resumes
// it on reconnect, so `wrk -H 'Connection: close' https://…` measures
// resumed handshakes, not new ones.
//
// The TLS client is bench/internal/loadtls's: X25519 and P-256, as OpenSSL
// 3.0 clients offer; without -cacert no chain check.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blastbeat/blastbeat/bench/internal/hist"
	"github.com/blastbeat/blastbeat/bench/internal/loadtls"
)

// maxBody bounds the response body a request may read.
const maxBody = 1 << 20

type options struct {
	url         string
	conns       int
	dur, warmup time.Duration
	timeout     time.Duration
	cacert      string
}

// result is tlsload's JSON output.
type result struct {
	Conns      int     `json:"conns"`
	Handshakes uint64  `json:"handshakes"` // completed: handshake, request, 200 response
	Secs       float64 `json:"secs"`
	Rate       float64 `json:"rate"`
	P50us      float64 `json:"p50_us"`
	P90us      float64 `json:"p90_us"`
	P99us      float64 `json:"p99_us"`
	MaxUs      float64 `json:"max_us"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	// TLS is what the first good handshake negotiated: "TLS 1.3
	// TLS_AES_128_GCM_SHA256 X25519".
	TLS string `json:"tls,omitempty"`
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "https://127.0.0.1:18443/", "HTTPS URL on loopback")
	flag.IntVar(&o.conns, "c", 64, "concurrent workers (connections in flight)")
	flag.DurationVar(&o.dur, "d", 5*time.Second, "measured duration")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured time before -d")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound on one connection: dial, handshake, request, response")
	flag.StringVar(&o.cacert, "cacert", "", "PEM file of the CA to verify the server against (empty: no chain check)")
	flag.Parse()

	u, err := url.Parse(o.url)
	if err != nil || u.Scheme != "https" || !loopback(u.Hostname()) {
		fail(fmt.Errorf("-url %q: want https:// on loopback", o.url))
	}
	if o.conns < 1 || o.dur <= 0 {
		fail(errors.New("-c and -d must be positive"))
	}
	cfg, err := loadtls.Client(o.cacert)
	if err != nil {
		fail(err)
	}
	path := u.RequestURI()
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: close\r\n\r\n")
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	res := run(o, addr, cfg, req)
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tlsload:", err)
	os.Exit(1)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// run drives the workers for warmup + dur and returns what the measured
// phase saw: only attempts that started inside it count.
func run(o options, addr string, cfg *tls.Config, req []byte) result {
	var (
		h        hist.Hist
		errs     atomic.Int64
		firstErr atomic.Value
		params   atomic.Value // string: the first good handshake's TLS parameters
		wg       sync.WaitGroup
	)
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.dur)
	marker := time.AfterFunc(o.warmup, func() { fmt.Println("MEASURE") })
	defer marker.Stop()
	for range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReaderSize(nil, 4096)
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				cs, err := once(addr, cfg, req, br, o.timeout)
				if err == nil && params.Load() == nil {
					params.CompareAndSwap(nil, fmt.Sprintf("%s %s %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), cs.CurveID))
				}
				if !t0.After(measureFrom) {
					continue
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					// A refused or reset connection fails fast: do not
					// spin on it.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				h.Record(uint64(time.Since(t0)))
			}
		}()
	}
	wg.Wait()
	r := result{
		Conns:      o.conns,
		Handshakes: h.Count(),
		Secs:       o.dur.Seconds(),
		Rate:       float64(h.Count()) / o.dur.Seconds(),
		P50us:      float64(h.Quantile(0.50)) / 1e3,
		P90us:      float64(h.Quantile(0.90)) / 1e3,
		P99us:      float64(h.Quantile(0.99)) / 1e3,
		MaxUs:      float64(h.Max()) / 1e3,
		Errors:     errs.Load(),
	}
	if s, ok := firstErr.Load().(string); ok {
		r.FirstError = s
	}
	if s, ok := params.Load().(string); ok {
		r.TLS = s
	}
	return r
}

// once is one connection: dial, full handshake, one request, the whole
// response (which must be 200), close. It returns the handshake's state.
func once(addr string, cfg *tls.Config, req []byte, br *bufio.Reader, timeout time.Duration) (tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, fmt.Errorf("handshake: %w", err)
	}
	tc := nc.(*tls.Conn)
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(timeout))
	if _, err := tc.Write(req); err != nil {
		return tls.ConnectionState{}, fmt.Errorf("write: %w", err)
	}
	br.Reset(tc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return tls.ConnectionState{}, fmt.Errorf("response: %w", err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody+1))
	resp.Body.Close()
	switch {
	case err != nil:
		return tls.ConnectionState{}, fmt.Errorf("body: %w", err)
	case n > maxBody:
		return tls.ConnectionState{}, fmt.Errorf("body over %d bytes", maxBody)
	case resp.StatusCode != 200:
		return tls.ConnectionState{}, fmt.Errorf("status %s", strings.TrimSpace(resp.Status))
	}
	if tc.ConnectionState().DidResume {
		return tls.ConnectionState{}, errors.New("the handshake resumed a session")
	}
	return tc.ConnectionState(), nil
}
