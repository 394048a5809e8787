package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

const wrkKeepAlive = `Running 1s test @ http://127.0.0.1:18091/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.98ms    1.54ms  14.34ms   88.33%
    Req/Sec    64.18k    10.93k  104.47k    90.48%
  Latency Distribution
     50%  409.00us
     75%    1.11ms
     90%    2.84ms
     99%    7.48ms
  133943 requests in 1.10s, 14.69MB read
Requests/sec: 121736.70
Transfer/sec:     13.35MB
`

const wrkErrors = `Running 5s test @ http://127.0.0.1:18080/post
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02s   300.10ms   2.00s    70.00%
    Req/Sec    10.00      3.00     20.00     60.00%
  Latency Distribution
     50%    1.00s
     75%    1.20s
     90%    1.50s
     99%    1.00m
  100 requests in 5.00s, 10.00KB read
  Socket errors: connect 1, read 12, write 3, timeout 40
  Non-2xx or 3xx responses: 7
Requests/sec:     20.00
Transfer/sec:      2.00KB
`

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

func TestParseWrkKeepAlive(t *testing.T) {
	r, err := parseWrk(wrkKeepAlive)
	if err != nil {
		t.Fatalf(
			"parseWrk: %v",
			err)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{name: "requests", got: float64(r.Requests), want: 133943},
		{name: "seconds", got: r.Seconds, want: 1.10},
		{name: "rate", got: r.Rate, want: 121736.70},
		{name: "avg", got: r.AvgMs, want: 0.98},
		{name: "max", got: r.MaxMs, want: 14.34},
		{name: "p50", got: r.P50Ms, want: 0.409},
		{name: "p75", got: r.P75Ms, want: 1.11},
		{name: "p90", got: r.P90Ms, want: 2.84},
		{name: "p99", got: r.P99Ms, want: 7.48},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf(
				"%s = %v, want %v",
				c.name, c.got, c.want)
		}
	}
	if r.Non2xx != 0 || r.SocketErrors() != 0 {
		t.Errorf(
			"errors where there are none: %+v",
			r)
	}
}

func TestParseWrkErrors(t *testing.T) {
	r, err := parseWrk(wrkErrors)
	if err != nil {
		t.Fatalf(
			"parseWrk: %v",
			err)
	}
	if r.Non2xx != 7 || r.ConnErrs != 1 || r.ReadErrs != 12 || r.WriteErrs != 3 || r.Timeouts != 40 || r.SocketErrors() != 56 {
		t.Errorf(
			"error counters: %+v",
			r)
	}
	if !near(r.P50Ms, 1000) || !near(r.P99Ms, 60000) || !near(r.AvgMs, 1020) {
		t.Errorf(
			"second and minute units: p50=%v p99=%v avg=%v",
			r.P50Ms, r.P99Ms, r.AvgMs)
	}
}

func TestParseWrkNoResult(t *testing.T) {
	for _, out := range []string{
		"",
		"unable to connect to 127.0.0.1:1 Connection refused\n",
		wrkKeepAlive[:200],
	} {
		if _, err := parseWrk(out); err == nil {
			t.Errorf(
				"parseWrk(%q): no error",
				out)
		}
	}
}

func TestParseWrkTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "409.00us", want: 409 * time.Microsecond},
		{in: "1.11ms", want: 1110 * time.Microsecond},
		{in: "2.00s", want: 2 * time.Second},
		{in: "1.50m", want: 90 * time.Second},
		{in: "1.00h", want: time.Hour},
		{in: "12", bad: true},
		{in: "-1ms", bad: true},
		{in: "abcms", bad: true},
	}
	for _, tt := range tests {
		got, err := parseWrkTime(tt.in)
		if tt.bad != (err != nil) || (!tt.bad && got != tt.want) {
			t.Errorf(
				"parseWrkTime(%q) = %v, %v",
				tt.in, got, err)
		}
	}
}

func TestWrkArgs(t *testing.T) {
	got := wrkArgs(2, 64, 1500*time.Millisecond, []string{"Connection: close"}, "/tmp/p.lua", "http://127.0.0.1:1/")
	want := []string{"-t", "2", "-c", "64", "-d", "2s", "--timeout", "5s", "--latency",
		"-H", "Connection: close", "-s", "/tmp/p.lua", "http://127.0.0.1:1/"}
	if !slices.Equal(got, want) {
		t.Fatalf(
			"wrkArgs = %q, want %q",
			got, want)
	}
}
