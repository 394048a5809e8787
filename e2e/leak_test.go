package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// bProcFigures are what the leak test watches in the proxy process.
type bProcFigures struct {
	Goroutines, FDs, Threads int
	RSSKiB                   int
}

func (f bProcFigures) String() string {
	return fmt.Sprintf("goroutines=%d fds=%d threads=%d rss=%.1fMiB", f.Goroutines, f.FDs, f.Threads, float64(f.RSSKiB)/1024)
}

// bPprofClient opens a new connection per request, so the pprof server
// keeps no idle connection (and goroutine) between samples.
var bPprofClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// bGoroutines reads the proxy's goroutine count from its pprof endpoint.
func bGoroutines(pprofAddr string) (int, error) {
	resp, err := bPprofClient.Get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, err
	}
	var n int
	if _, err := fmt.Sscanf(line, "goroutine profile: total %d", &n); err != nil {
		return 0, fmt.Errorf("first line %q: %v", line, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return n, nil
}

// bCountFDs is the number of open descriptors of pid.
func bCountFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// bStatusField reads a numeric field ("Threads", "VmRSS") of
// /proc/pid/status.
func bStatusField(pid int, name string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.Atoi(f[0])
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", name, pid)
}

// bMeasure samples the proxy's figures.
func bMeasure(pid int, pprofAddr string) (bProcFigures, error) {
	var f bProcFigures
	var errs [4]error
	f.Goroutines, errs[0] = bGoroutines(pprofAddr)
	f.FDs, errs[1] = bCountFDs(pid)
	f.Threads, errs[2] = bStatusField(pid, "Threads")
	f.RSSKiB, errs[3] = bStatusField(pid, "VmRSS")
	return f, errors.Join(errs[:]...)
}

// bSessionCounter is a node handler that answers GETs with helloHandler
// and tracks which sessions got a request but no `end` yet.
type bSessionCounter struct {
	mu       sync.Mutex
	open     map[string]bool
	requests int
	ends     int
}

func (s *bSessionCounter) handle(n *node.Node, m node.Message) {
	s.mu.Lock()
	switch m.Type {
	case "uwsgi":
		s.open[string(m.SID)] = true
		s.requests++
	case "end":
		delete(s.open, string(m.SID))
		s.ends++
	}
	s.mu.Unlock()
	if m.Type == "uwsgi" {
		if env, _ := node.Environ(m.Body); env["REQUEST_METHOD"] == "GET" {
			helloHandler(n, m)
		}
	}
}

func (s *bSessionCounter) counts() (open, requests, ends int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open), s.requests, s.ends
}

// TestNoLeaks drives thousands of connections through the proxy (served,
// cut mid-head, cut mid-body, refused) and checks that its descriptors and
// goroutines come back to their resting level and its RSS stays bounded.
func TestNoLeaks(t *testing.T) {
	pprofAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProxy(t, "max-body = 100000\n", "[blastbeat:leak.test]\nnode = l1\n", "-pprof", pprofAddr)
	sc := &bSessionCounter{open: map[string]bool{}}
	startGoNode(t, p.ZMQ, "l1", sc.handle)
	waitRoutable(t, p, "leak.test", "/")
	pid := p.Pid()

	// Warm up: every event loop gets connections, the parser pools fill.
	bRunJobs(t, p.Addr, 16, bJobs(rand.New(rand.NewPCG(7, 7)), 200, 20, 20, 20))
	waitNoOpenSessions := func(what string) {
		t.Helper()
		checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			if open, req, ends := sc.counts(); open != 0 {
				return fmt.Errorf("%s: %d sessions without `end` at the node (%d requests, %d ends)", what, open, req, ends)
			}
			return nil
		})
	}
	waitNoOpenSessions("warm-up")
	var base bProcFigures
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		// Two equal consecutive samples: the warm-up has settled.
		a, err := bMeasure(pid, pprofAddr)
		if err != nil {
			return err
		}
		b, err := bMeasure(pid, pprofAddr)
		if err != nil {
			return err
		}
		if a.FDs != b.FDs || a.Goroutines != b.Goroutines {
			return fmt.Errorf("not settled: %v then %v", a, b)
		}
		base = b
		return nil
	})
	t.Logf("at rest:     %v", base)

	// The sampler keeps the peaks while the load runs.
	var peak bProcFigures
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if f, err := bMeasure(pid, pprofAddr); err == nil {
				peak.Goroutines = max(peak.Goroutines, f.Goroutines)
				peak.FDs = max(peak.FDs, f.FDs)
				peak.Threads = max(peak.Threads, f.Threads)
				peak.RSSKiB = max(peak.RSSKiB, f.RSSKiB)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	jobs := bJobs(rand.New(rand.NewPCG(1, 1)), 2000, 500, 500, 200)
	bRunJobs(t, p.Addr, 32, jobs)
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	t.Logf("load: %d connections (2000 served ×3 requests, 500 cut mid-head, 500 cut mid-body, 200 refused) in %v",
		len(jobs), elapsed.Round(time.Millisecond))
	t.Logf("peak:        %v", peak)

	waitNoOpenSessions("after the load")
	var after bProcFigures
	settle := time.Now()
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		f, err := bMeasure(pid, pprofAddr)
		if err != nil {
			return err
		}
		after = f
		if f.FDs > base.FDs+5 || f.Goroutines > base.Goroutines+5 {
			return fmt.Errorf("not back to rest: %v (at rest: %v)", f, base)
		}
		return nil
	})
	t.Logf("after (%v):  %v", time.Since(settle).Round(time.Millisecond), after)
	_, requests, ends := sc.counts()
	t.Logf("node: %d requests, %d ends", requests, ends)
	growth := float64(after.RSSKiB-base.RSSKiB) / 1024
	t.Logf("RSS growth: %+.1f MiB; threads %d → %d (peak %d)", growth, base.Threads, after.Threads, peak.Threads)
	if growth > 30 {
		t.Errorf("RSS grew by %.1f MiB across the load (at rest %v, after %v); want at most 30", growth, base, after)
	}
}

// bJobKind is what one connection of the leak test does.
type bJobKind int

const (
	bServed  bJobKind = iota // three GETs on one keep-alive connection
	bMidHead                 // part of a head, then close
	bMidBody                 // a head with Content-Length 10000, 100 bytes, then close
	bRefused                 // a request the proxy answers itself: 400, 404 or 413
)

type bJob struct {
	kind  bJobKind
	n     int  // index, picks variants
	reset bool // close with RST instead of FIN
}

// bJobs returns the connections to make, shuffled.
func bJobs(rng *rand.Rand, served, midHead, midBody, refused int) []bJob {
	var jobs []bJob
	add := func(k bJobKind, count int) {
		for i := 0; i < count; i++ {
			jobs = append(jobs, bJob{kind: k, n: i, reset: i%2 == 1})
		}
	}
	add(bServed, served)
	add(bMidHead, midHead)
	add(bMidBody, midBody)
	add(bRefused, refused)
	rng.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	return jobs
}

// bRunJobs runs jobs on workers connections at a time; every response is
// checked.
func bRunJobs(t *testing.T, addr string, workers int, jobs []bJob) {
	t.Helper()
	ch := make(chan bJob)
	var failures atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				if err := bRunJob(addr, j); err != nil {
					failures.Add(1)
					firstErr.Do(func() { t.Errorf("job %+v: %v", j, err) })
				}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d connections failed", n, len(jobs))
	}
}

func bRunJob(addr string, j bJob) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if j.reset {
		_ = c.(*net.TCPConn).SetLinger(0)
	}
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(c)
	switch j.kind {
	case bServed:
		for i := 0; i < 3; i++ {
			req := fmt.Sprintf("GET /leak/%d/%d HTTP/1.1\r\nHost: leak.test\r\n\r\n", j.n, i)
			if i == 2 && j.n%2 == 0 {
				req = fmt.Sprintf("GET /leak/%d/%d HTTP/1.1\r\nHost: leak.test\r\nConnection: close\r\n\r\n", j.n, i)
			}
			if _, err := io.WriteString(c, req); err != nil {
				return err
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return fmt.Errorf("request %d: %v", i, err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || string(body) != "Hello, World!" {
				return fmt.Errorf("request %d: %d %q %v", i, resp.StatusCode, body, err)
			}
		}
		if j.n%2 == 0 {
			// Connection: close: the proxy closes.
			if b, err := br.ReadByte(); err != io.EOF {
				return fmt.Errorf("after Connection: close: %q %v, want EOF", b, err)
			}
		}
	case bMidHead:
		heads := []string{"GET /leak/mid-head HTTP/1.1\r\nHost: lea", "GET /leak/mid", "POST /leak HTTP/1.1\r\nHost: leak.test\r\nContent-Len"}
		_, err := io.WriteString(c, heads[j.n%len(heads)])
		return err
	case bMidBody:
		head := fmt.Sprintf("POST /leak/mid-body/%d HTTP/1.1\r\nHost: leak.test\r\nContent-Length: 10000\r\n\r\n", j.n)
		_, err := io.WriteString(c, head+strings.Repeat("b", 100))
		return err
	case bRefused:
		reqs := []struct {
			req    string
			status int
		}{
			{"GET /leak HTTP/1.1\r\nHost : leak.test\r\n\r\n", 400},
			{"GET /leak HTTP/1.1\r\nHost: nowhere.test\r\nConnection: close\r\n\r\n", 404},
			{"POST /leak HTTP/1.1\r\nHost: leak.test\r\nContent-Length: 200000\r\n\r\n", 413},
		}
		r := reqs[j.n%len(reqs)]
		if _, err := io.WriteString(c, r.req); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != r.status {
			return fmt.Errorf("%q: status %d, want %d", r.req, resp.StatusCode, r.status)
		}
		if b, err := br.ReadByte(); err != io.EOF {
			return fmt.Errorf("after %d: %q %v, want EOF", r.status, b, err)
		}
	}
	return nil
}
