package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// h2loadTLS is h2load 1.52's output for a timed run over TLS with a
// warm-up, two worker threads.
const h2loadTLS = `starting benchmark...
spawning thread #0: 50 total client(s). Timing-based test with 1s of warm-up time and 2s of main duration for measurements.
spawning thread #1: 50 total client(s). Timing-based test with 1s of warm-up time and 2s of main duration for measurements.
Warm-up started for thread #1.
Warm-up started for thread #0.
progress: 10% of clients started
progress: 100% of clients started
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
Warm-up phase is over for thread #1.
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is started for thread #1.
Main benchmark duration is over for thread #0. Stopping all clients.
Main benchmark duration is over for thread #1. Stopping all clients.
Stopped all clients for thread #1
Stopped all clients for thread #0

finished in 3.00s, 27136.50 req/s, 2.07MB/s
requests: 54273 total, 54273 started, 54273 done, 54273 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 54272 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 2.07MB (2175420) total, 191.41KB (196000) headers (space savings 94.93%), 50.78KB (52000) data
                     min         max         mean         sd        +/- sd
time for request:       17us     30.93ms       242us       642us    97.06%
time for connect:     1.95ms      2.39ms      2.17ms       309us   100.00%
time to 1st byte:     2.57ms      2.66ms      2.61ms        68us   100.00%
req/s           :     270.12      274.51      271.36        1.05    66.00%
`

// h2loadErrors is an h2c run with 4xx/5xx answers and reset streams.
const h2loadErrors = `starting benchmark...
spawning thread #0: 4 total client(s). Timing-based test with 0s of warm-up time and 2s of main duration for measurements.
Warm-up started for thread #0.
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Application protocol: h2c
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 2.00s, 2000.00 req/s, 156.38KB/s
requests: 4103 total, 4104 started, 4103 done, 4000 succeeded, 103 failed, 3 errored, 0 timeout
status codes: 4000 2xx, 0 3xx, 90 4xx, 10 5xx
traffic: 312.77KB (320276) total, 39.08KB (40016) headers (space savings 90.00%), 50.78KB (52000) data
                     min         max         mean         sd        +/- sd
time for request:       40us      1.02s       229us       918us    99.75%
time for connect:      130us       268us       199us        97us   100.00%
time to 1st byte:      540us       652us       596us        79us   100.00%
req/s           :    1000.00     1000.00     1000.00        0.00   100.00%
`

// h2loadNoALPN: the server offered no h2 (--npn-list h2): nothing done.
const h2loadNoALPN = `starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 0s of warm-up time and 1s of main duration for measurements.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 1.00s, 0.00 req/s, 0B/s
requests: 0 total, 0 started, 0 done, 0 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 0 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 0B (0) total, 0B (0) headers (space savings 0.00%), 0B (0) data
                     min         max         mean         sd        +/- sd
time for request:        0us         0us         0us         0us     0.00%
`

func TestParseH2loadTLS(t *testing.T) {
	r, err := parseH2load(h2loadTLS)
	if err != nil {
		t.Fatalf("parseH2load: %v", err)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{name: "seconds", got: r.Seconds, want: 3},
		{name: "rate", got: r.Rate, want: 27136.50},
		{name: "done", got: float64(r.Done), want: 54273},
		{name: "succeeded", got: float64(r.Succeeded), want: 54273},
		{name: "2xx", got: float64(r.Status[2]), want: 54272},
		{name: "min", got: r.ReqMinMs, want: 0.017},
		{name: "max", got: r.ReqMaxMs, want: 30.93},
		{name: "mean", got: r.ReqMeanMs, want: 0.242},
		{name: "sd", got: r.ReqSdMs, want: 0.642},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if r.Non2xx() != 0 || r.StreamErrors() != 0 {
		t.Errorf("errors where there are none: %+v", r)
	}
	if got, want := r.TLS(), "TLSv1.3 TLS_AES_128_GCM_SHA256 X25519, h2"; got != want {
		t.Errorf("TLS() = %q, want %q", got, want)
	}
}

func TestParseH2loadErrors(t *testing.T) {
	r, err := parseH2load(h2loadErrors)
	if err != nil {
		t.Fatalf("parseH2load: %v", err)
	}
	if r.Non2xx() != 100 || r.Errored != 3 || r.Timeout != 0 || r.StreamErrors() != 3 || r.Failed != 103 || r.Done != 4103 {
		t.Errorf("error counters: %+v", r)
	}
	if r.Protocol != "h2c" || r.TLS() != "h2c" {
		t.Errorf("protocol %q, TLS() %q", r.Protocol, r.TLS())
	}
	if !near(r.ReqMaxMs, 1020) {
		t.Errorf("max in seconds: %v", r.ReqMaxMs)
	}
}

func TestParseH2loadNoProtocol(t *testing.T) {
	r, err := parseH2load(h2loadNoALPN)
	if err != nil {
		t.Fatalf("parseH2load: %v", err)
	}
	if r.Done != 0 || r.Protocol != "" || r.TLS() != "" {
		t.Errorf("%+v", r)
	}
}

func TestParseH2loadBad(t *testing.T) {
	for _, out := range []string{
		"",
		"starting benchmark...\nspawning thread #0: 1 total client(s).\n",
		h2loadTLS[:strings.Index(h2loadTLS, "status codes")], // no status line
		strings.Replace(h2loadTLS, "54273 done", "many done", 1),
		strings.Replace(h2loadTLS, "27136.50 req/s", "fast", 1),
		strings.Replace(h2loadTLS, "0 4xx, ", "", 1),
		strings.Replace(h2loadTLS, "54273 succeeded, ", "", 1),
		strings.Replace(h2loadTLS, "finished in 3.00s", "finished in 3.00", 1),
		strings.Replace(h2loadTLS, "30.93ms", "30.93", 1),
	} {
		if _, err := parseH2load(out); err == nil {
			t.Errorf("parseH2load(%q): no error", tail(out, 200))
		}
	}
}

func TestParseH2loadLog(t *testing.T) {
	var b strings.Builder
	// 100 answers of 1..100 ms ending 1 ms apart, but one stall of 1.5 s;
	// a status 0 (answered across the warm-up's end), a failed stream, a
	// malformed line and an empty one.
	start := int64(1795703551968215)
	end := start
	for i := 1; i <= 100; i++ {
		end += 1000
		if i == 60 {
			end += 1500000
		}
		status := 200
		if i == 7 {
			status = 0
		}
		b.WriteString(strings.Join([]string{itoa(end - int64(i)*1000), itoa(int64(status)), itoa(int64(i) * 1000)}, "\t") + "\n")
	}
	b.WriteString(itoa(start) + "\t-1\t5000000\n")
	b.WriteString("garbage\n\n")
	b.WriteString(itoa(start) + "\t200\tx\n")
	lat, err := parseH2loadLog(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if lat.N != 100 || lat.Failed != 1 || lat.Malformed != 2 {
		t.Errorf("counts: %+v", lat)
	}
	if lat.P50Ms != 50 || lat.P90Ms != 90 || lat.P99Ms != 99 || lat.MaxMs != 100 {
		t.Errorf("percentiles: %+v", lat)
	}
	if !near(lat.MaxGapMs, 1501) {
		t.Errorf("max gap %v, want 1501", lat.MaxGapMs)
	}
	empty, err := parseH2loadLog(strings.NewReader(""))
	if err != nil || empty.N != 0 || empty.P99Ms != 0 {
		t.Errorf("empty log: %+v, %v", empty, err)
	}
	one, _ := parseH2loadLog(strings.NewReader("1\t200\t250\n"))
	if one.P50Ms != 0.25 || one.P99Ms != 0.25 || one.MaxGapMs != 0 {
		t.Errorf("one line: %+v", one)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestH2loadArgs(t *testing.T) {
	got := h2loadArgs(2, 100, 10, 2*time.Second, 1500*time.Millisecond, true, "/tmp/h2.tsv", "https://127.0.0.1:1/")
	want := []string{"-t", "2", "-c", "100", "-m", "10", "-D", "2000ms", "--warm-up-time", "1500ms",
		"--npn-list", "h2", "--log-file", "/tmp/h2.tsv", "https://127.0.0.1:1/"}
	if !slices.Equal(got, want) {
		t.Fatalf("h2loadArgs = %q, want %q", got, want)
	}
	got = h2loadArgs(2, 100, 10, 500*time.Millisecond, 0, false, "", "http://127.0.0.1:1/")
	want = []string{"-t", "2", "-c", "100", "-m", "10", "-D", "1000ms", "http://127.0.0.1:1/"}
	if !slices.Equal(got, want) {
		t.Fatalf("h2c, no warm-up: h2loadArgs = %q, want %q", got, want)
	}
}
