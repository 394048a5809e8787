package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// h2loadResult is what the harness reads from h2load's (nghttp2 1.4x–1.6x)
// summary on stdout.
type h2loadResult struct {
	Seconds   float64 `json:"seconds"` // "finished in": warm-up and main duration together
	Rate      float64 `json:"rate"`    // req/s: succeeded ÷ the main duration (-D)
	Total     int64   `json:"total"`
	Started   int64   `json:"started"`
	Done      int64   `json:"done"`
	Succeeded int64   `json:"succeeded"` // status 2xx or 3xx
	Failed    int64   `json:"failed"`    // other status, or no answer
	Errored   int64   `json:"errored"`   // reset or abandoned streams, lost connections
	Timeout   int64   `json:"timeout"`
	Status    [6]int64
	// "time for request" (h2load keeps a sample of at most 1M requests):
	// min, max, mean and standard deviation; no percentiles.
	ReqMinMs, ReqMaxMs, ReqMeanMs, ReqSdMs float64
	Protocol                               string // "h2", "h2c", "http/1.1" ("" = none negotiated)
	TLSVersion, Cipher, TempKey            string // over TLS
}

// Non2xx is the number of answers with a status of 400 or more (wrk's
// "Non-2xx or 3xx responses").
func (r h2loadResult) Non2xx() int64 { return r.Status[4] + r.Status[5] }

// StreamErrors is the number of requests that got no answer: streams reset
// or abandoned with their connection, and timeouts.
func (r h2loadResult) StreamErrors() int64 { return r.Errored + r.Timeout }

// TLS describes the connection: "TLSv1.3 TLS_AES_128_GCM_SHA256 X25519, h2"
// or "h2c".
func (r h2loadResult) TLS() string {
	var parts []string
	group, _, _ := strings.Cut(r.TempKey, " ") // "X25519 253 bits"
	for _, s := range []string{r.TLSVersion, r.Cipher, group} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	s := strings.Join(parts, " ")
	switch {
	case s == "":
		return r.Protocol
	case r.Protocol == "":
		return s + ", no ALPN protocol"
	}
	return s + ", " + r.Protocol
}

// parseH2load parses h2load's stdout. It fails when a line a result needs
// (finished, requests, status codes) is missing or malformed, e.g. when
// h2load was stopped before its summary.
func parseH2load(out string) (h2loadResult, error) {
	var (
		r                                h2loadResult
		haveFinished, haveReqs, haveCode bool
	)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, ok := strings.Cut(line, ":")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch {
		case strings.HasPrefix(line, "finished in "):
			// "finished in 3.00s, 27136.50 req/s, 2.07MB/s"
			parts := strings.Split(strings.TrimPrefix(line, "finished in "), ",")
			if len(parts) < 2 {
				return r, fmt.Errorf("h2load: finished line %q", line)
			}
			d, err := parseWrkTime(strings.TrimSpace(parts[0]))
			if err != nil {
				return r, fmt.Errorf("h2load: finished line %q: %w", line, err)
			}
			f := strings.Fields(parts[1])
			if len(f) != 2 || f[1] != "req/s" {
				return r, fmt.Errorf("h2load: finished line %q", line)
			}
			rate, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return r, fmt.Errorf("h2load: finished line %q", line)
			}
			r.Seconds, r.Rate, haveFinished = d.Seconds(), rate, true
		case ok && key == "requests":
			// "requests: 54273 total, 54273 started, 54273 done, 54273
			// succeeded, 0 failed, 0 errored, 0 timeout"
			counts, err := h2loadCounts(val)
			if err != nil {
				return r, fmt.Errorf("h2load: requests line %q: %w", line, err)
			}
			for name, dst := range map[string]*int64{"total": &r.Total, "started": &r.Started, "done": &r.Done,
				"succeeded": &r.Succeeded, "failed": &r.Failed, "errored": &r.Errored, "timeout": &r.Timeout} {
				n, ok := counts[name]
				if !ok && name != "timeout" && name != "started" {
					return r, fmt.Errorf("h2load: requests line %q: no %q", line, name)
				}
				*dst = n
			}
			haveReqs = true
		case ok && key == "status codes":
			// "status codes: 54272 2xx, 0 3xx, 0 4xx, 0 5xx"
			counts, err := h2loadCounts(val)
			if err != nil {
				return r, fmt.Errorf("h2load: status line %q: %w", line, err)
			}
			for c := 2; c <= 5; c++ {
				n, ok := counts[fmt.Sprintf("%dxx", c)]
				if !ok {
					return r, fmt.Errorf("h2load: status line %q: no %dxx", line, c)
				}
				r.Status[c] = n
			}
			haveCode = true
		case ok && key == "time for request":
			// "time for request:  17us  30.93ms  242us  642us  97.06%"
			f := strings.Fields(val)
			if len(f) < 4 {
				return r, fmt.Errorf("h2load: request time line %q", line)
			}
			var v [4]float64
			for i := range v {
				d, err := parseWrkTime(f[i])
				if err != nil {
					return r, fmt.Errorf("h2load: request time line %q: %w", line, err)
				}
				v[i] = ms(d)
			}
			r.ReqMinMs, r.ReqMaxMs, r.ReqMeanMs, r.ReqSdMs = v[0], v[1], v[2], v[3]
		case ok && key == "Application protocol":
			r.Protocol = val
		case ok && key == "TLS Protocol":
			r.TLSVersion = val
		case ok && key == "Cipher":
			r.Cipher = val
		case ok && key == "Server Temp Key":
			r.TempKey = val
		}
	}
	if !haveFinished || !haveReqs || !haveCode {
		return r, fmt.Errorf("h2load: no result in output: %q", tail(out, 300))
	}
	return r, nil
}

// h2loadCounts reads "N name, N name, …" into name → N.
func h2loadCounts(s string) (map[string]int64, error) {
	m := map[string]int64{}
	for _, part := range strings.Split(s, ",") {
		f := strings.Fields(part)
		if len(f) != 2 {
			return nil, fmt.Errorf("%q is not \"N name\"", part)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not \"N name\"", part)
		}
		m[f[1]] = n
	}
	return m, nil
}

// h2loadLatency summarises h2load's --log-file: one line per request that
// ended in the main phase, tab-separated: start (µs since the epoch),
// status (-1 for a failed stream; 0 when the answer's status came during
// the warm-up), µs from the request's start to the end of its stream.
type h2loadLatency struct {
	N         int64 // requests that ended with an answer
	Failed    int64 // status -1
	Malformed int64 // lines that are not three numbers
	P50Ms     float64
	P90Ms     float64
	P99Ms     float64
	MaxMs     float64
	// MaxGapMs is the longest time in which no request ended, from the
	// first end to the last: a stall of every connection shows here.
	MaxGapMs float64
}

// parseH2loadLog reads a --log-file. The percentiles are exact (nearest
// rank) over the requests with an answer; failed streams only count.
func parseH2loadLog(r io.Reader) (h2loadLatency, error) {
	var (
		res  h2loadLatency
		lat  []uint32
		ends []int64
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			res.Malformed++
			continue
		}
		start, err1 := strconv.ParseInt(f[0], 10, 64)
		status, err2 := strconv.Atoi(f[1])
		d, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || d < 0 {
			res.Malformed++
			continue
		}
		if status < 0 {
			res.Failed++
			continue
		}
		res.N++
		lat = append(lat, uint32(min(d, math.MaxUint32)))
		ends = append(ends, start+d)
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("h2load log: %w", err)
	}
	if len(lat) == 0 {
		return res, nil
	}
	slices.Sort(lat)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		return float64(lat[max(0, min(i, len(lat)-1))]) / 1e3
	}
	res.P50Ms, res.P90Ms, res.P99Ms = rank(0.50), rank(0.90), rank(0.99)
	res.MaxMs = float64(lat[len(lat)-1]) / 1e3
	slices.Sort(ends)
	for i := 1; i < len(ends); i++ {
		res.MaxGapMs = max(res.MaxGapMs, float64(ends[i]-ends[i-1])/1e3)
	}
	return res, nil
}

// h2loadArgs builds h2load's command line: a timed run of conns
// connections with streams concurrent streams each, after a warm-up on
// the same connections, writing every request to logFile. Over TLS it
// offers only h2 in ALPN, so that a server without HTTP/2 fails instead
// of falling back to HTTP/1.1; an http:// URL is h2c with prior
// knowledge (h2load's default).
func h2loadArgs(threads, conns, streams int, d, warmup time.Duration, tls bool, logFile, url string) []string {
	msArg := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }
	args := []string{
		"-t", strconv.Itoa(threads),
		"-c", strconv.Itoa(conns),
		"-m", strconv.Itoa(streams),
		"-D", msArg(max(d, time.Second)),
	}
	if warmup >= time.Millisecond {
		args = append(args, "--warm-up-time", msArg(warmup))
	}
	if tls {
		args = append(args, "--npn-list", "h2")
	}
	if logFile != "" {
		args = append(args, "--log-file", logFile)
	}
	return append(args, url)
}

// h2load's phase lines on stdout (flushed as they happen), one per
// worker thread.
const (
	h2loadSpawn     = "spawning thread #"
	h2loadMainStart = "Main benchmark duration is started"
	h2loadMainOver  = "Main benchmark duration is over"
)
