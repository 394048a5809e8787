package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what the harness reads from `wrk --latency` output.
type wrkResult struct {
	Requests  int64   `json:"requests"`
	Seconds   float64 `json:"seconds"` // the run's own duration, "N requests in Xs"
	Rate      float64 `json:"rate"`    // Requests/sec
	AvgMs     float64 `json:"avg_ms"`
	MaxMs     float64 `json:"max_ms"`
	P50Ms     float64 `json:"p50_ms"`
	P75Ms     float64 `json:"p75_ms"`
	P90Ms     float64 `json:"p90_ms"`
	P99Ms     float64 `json:"p99_ms"`
	Non2xx    int64   `json:"non2xx"`
	ConnErrs  int64   `json:"connect_errors"`
	ReadErrs  int64   `json:"read_errors"`
	WriteErrs int64   `json:"write_errors"`
	Timeouts  int64   `json:"timeouts"`
}

// SocketErrors is the sum of wrk's socket error counters.
func (r wrkResult) SocketErrors() int64 {
	return r.ConnErrs + r.ReadErrs + r.WriteErrs + r.Timeouts
}

// parseWrk parses wrk 4.x output run with --latency. It fails when the
// lines a result needs (requests, Requests/sec, the 99% latency) are
// missing, e.g. when wrk could not connect at all.
func parseWrk(out string) (wrkResult, error) {
	var (
		r                        wrkResult
		haveReqs, haveRate, have bool
	)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && f[0] == "Latency" && !strings.HasSuffix(f[1], "%"):
			// "Latency  0.98ms  1.54ms  14.34ms  88.33%"
			avg, err1 := parseWrkTime(f[1])
			mx, err2 := parseWrkTime(f[3])
			if err1 != nil || err2 != nil {
				return r, fmt.Errorf("wrk: latency line %q", line)
			}
			r.AvgMs, r.MaxMs = ms(avg), ms(mx)
		case len(f) == 2 && strings.HasSuffix(f[0], "%"):
			// "50%  409.00us" in the Latency Distribution block
			d, err := parseWrkTime(f[1])
			if err != nil {
				return r, fmt.Errorf("wrk: percentile line %q: %w", line, err)
			}
			switch f[0] {
			case "50%":
				r.P50Ms = ms(d)
			case "75%":
				r.P75Ms = ms(d)
			case "90%":
				r.P90Ms = ms(d)
			case "99%":
				r.P99Ms = ms(d)
				have = true
			}
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			// "133943 requests in 1.10s, 14.69MB read"
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: requests line %q", line)
			}
			d, err := parseWrkTime(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return r, fmt.Errorf("wrk: requests line %q: %w", line, err)
			}
			r.Requests, r.Seconds, haveReqs = n, d.Seconds(), true
		case strings.HasPrefix(line, "Requests/sec:") && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("wrk: rate line %q", line)
			}
			r.Rate, haveRate = v, true
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:") && len(f) == 5:
			n, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: non-2xx line %q", line)
			}
			r.Non2xx = n
		case strings.HasPrefix(line, "Socket errors:"):
			// "Socket errors: connect 0, read 12, write 0, timeout 0"
			for _, part := range strings.Split(strings.TrimPrefix(line, "Socket errors:"), ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					return r, fmt.Errorf("wrk: socket errors line %q", line)
				}
				n, err := strconv.ParseInt(kv[1], 10, 64)
				if err != nil {
					return r, fmt.Errorf("wrk: socket errors line %q", line)
				}
				switch kv[0] {
				case "connect":
					r.ConnErrs = n
				case "read":
					r.ReadErrs = n
				case "write":
					r.WriteErrs = n
				case "timeout":
					r.Timeouts = n
				}
			}
		}
	}
	if !haveReqs || !haveRate || !have {
		return r, fmt.Errorf("wrk: no result in output: %q", tail(out, 300))
	}
	return r, nil
}

// parseWrkTime parses wrk's time format: a decimal with a unit of us, ms,
// s, m or h (wrk's format_time_us / format_time_s).
func parseWrkTime(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{
		{"us", time.Microsecond},
		{"ms", time.Millisecond},
		{"s", time.Second},
		{"m", time.Minute},
		{"h", time.Hour},
	}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("bad wrk time %q", s)
		}
		return time.Duration(v * float64(u.unit)), nil
	}
	return 0, fmt.Errorf("bad wrk time %q", s)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// wrkArgs builds wrk's command line for a load (not the URL's path, which
// the caller joins).
func wrkArgs(threads, conns int, d time.Duration, headers []string, script, url string) []string {
	args := []string{
		"-t", strconv.Itoa(threads),
		"-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) + "s",
		"--timeout", "5s",
		"--latency",
	}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	if script != "" {
		args = append(args, "-s", script)
	}
	return append(args, url)
}

// postScript is the wrk Lua script of the POST scenario; %d is the body
// size in bytes.
const postScript = `-- written by bench/harness: POST a %d-byte body
wrk.method = "POST"
wrk.body = string.rep("x", %d)
wrk.headers["Content-Type"] = "application/octet-stream"
`

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
