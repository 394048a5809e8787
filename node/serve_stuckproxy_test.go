package node_test

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/node"
)

// A proxy that takes nothing (dead, partitioned, stuck) only costs its
// own sessions: Serve's loop never waits on one socket, so the other
// proxies' pings are answered and their requests served meanwhile.

// stuckSendTimeout is ServeConfig.SendTimeout in these tests.
const stuckSendTimeout = time.Second

// pongWithin bounds how long a pong may take while a proxy is stuck.
const pongWithin = time.Second

// flood is a handler that flushes small numbered chunks ("0;", "1;",
// …) until a write fails or stop is closed; it notes when its last flush
// went through and says how it ended (nil: stopped).
type flood struct {
	flushed atomic.Int64 // UnixNano of the last flush that returned
	count   atomic.Int64 // flushes that returned nil
	stop    chan struct{}
	ended   chan error
}

func newFlood() *flood { return &flood{stop: make(chan struct{}), ended: make(chan error, 1)} }

func (f *flood) serve(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(4 * stubTimeout) // a bound, should all else fail
	for i := 0; time.Now().Before(deadline); i++ {
		select {
		case <-f.stop:
			f.ended <- nil
			return
		default:
		}
		_, err := w.Write([]byte(strconv.Itoa(i) + ";"))
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			f.ended <- err
			return
		}
		f.count.Add(1)
		f.flushed.Store(time.Now().UnixNano())
	}
	f.ended <- errors.New("flood: no write failed")
}

// waitStalled waits until the flood's current flush has waited for
// 100ms: its proxy takes nothing.
func (f *flood) waitStalled(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(stubTimeout); !f.stalled(100 * time.Millisecond); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the flood never stalled (%d flushes): the pipe to its proxy never filled", f.count.Load())
		}
	}
}

// stalled reports whether the flood's current flush has waited for
// longer than d.
func (f *flood) stalled(d time.Duration) bool {
	last := f.flushed.Load()
	return last != 0 && time.Since(time.Unix(0, last)) > d
}

// pingAt sends b a ping and returns how long its pong took; frames of
// other sessions that come first go to other.
func pingAt(t *testing.T, b *served, other func(frame)) time.Duration {
	t.Helper()
	start := time.Now()
	b.send(b.id, "", "ping", "")
	for {
		f := b.recv()
		if f.typ == "pong" {
			return time.Since(start)
		}
		other(f)
	}
}

// TestServeStuckProxyIsolated: proxy a stops taking messages (its socket
// is closed: the node's pipe to it fills up) while a session of a's
// streams. Proxy b's pings are answered within pongWithin the whole time
// and a request on b is served; a's session ends with ErrSessionEnded
// about SendTimeout after a stopped taking its messages. Before, the
// loop waited 5 s in a send to a, answering nobody, so b took the node
// for dead.
func TestServeStuckProxyIsolated(t *testing.T) {
	fl := newFlood()
	ss := startServeOn(t, node.ServeConfig{SendTimeout: stuckSendTimeout}, floodOr(fl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("served " + r.URL.Path))
	})), startStub(t), startStub(t))
	a, b := ss[0], ss[1]
	a.request("fa", get("/flood"))
	a.send(a.id, "fa", "credit", "1000000000000") // no pacing by credit
	a.expectFrom("fa", "headers")
	a.sock.Close() // a takes nothing more

	closed := time.Now()
	var endedAfter time.Duration
	var got string
	other := func(f frame) {
		if f.sid != "rb" {
			t.Fatalf("b got %s for %q", f.typ, f.sid)
		}
		got += f.typ + ":" + f.body + ";"
	}
	asked := false
	for endedAfter == 0 || time.Since(closed) < endedAfter+pongWithin {
		if d := pingAt(t, b, other); d > pongWithin {
			t.Fatalf("b's pong took %v, %v after a stopped taking messages (%d flushes to a went through): the loop was held up by a", d, time.Since(closed), fl.count.Load())
		}
		if !asked && fl.stalled(100*time.Millisecond) {
			asked = true
			b.request("rb", get("/b"))
		}
		if endedAfter == 0 {
			select {
			case err := <-fl.ended:
				endedAfter = time.Since(closed)
				if !errors.Is(err, node.ErrSessionEnded) {
					t.Fatalf("a's flood ended with %v, want ErrSessionEnded", err)
				}
			default:
			}
		}
		if time.Since(closed) > 3*stuckSendTimeout+stubTimeout {
			t.Fatalf("a's flood did not end within %v (%d flushes)", time.Since(closed), fl.count.Load())
		}
		time.Sleep(20 * time.Millisecond) // b's ping interval
	}
	if !asked {
		t.Fatalf("a's flood never stalled (%d flushes): the pipe to a never filled", fl.count.Load())
	}
	if limit := 2*stuckSendTimeout + time.Second; endedAfter > limit {
		t.Errorf("a's flood ended %v after a stopped, want within %v (SendTimeout %v)", endedAfter, limit, stuckSendTimeout)
	}
	t.Logf("a's flood: %d flushes went through; ended %v after a stopped", fl.count.Load(), endedAfter)
	// b's request was served while a was stuck.
	for got == "" {
		other(b.recv())
	}
	if want := "headers:HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + strconv.Itoa(len("served /b")) + "\r\n\r\nserved /b;"; got != want {
		t.Errorf("b's response %q, want %q", got, want)
	}
}

// rebindStub is a proxy that comes back: a new stub bound to ep, where
// a closed one was (the port may take a moment to be free).
func rebindStub(t *testing.T, ep string) *stub {
	t.Helper()
	sock, err := zmq.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	if err := errors.Join(sock.SetLinger(0), sock.SetRouterMandatory(1), sock.SetRcvtimeo(stubTimeout)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(stubTimeout); ; time.Sleep(10 * time.Millisecond) {
		err := sock.Bind(ep)
		if err == nil {
			return &stub{t: t, sock: sock, ep: ep}
		}
		if time.Now().After(deadline) {
			t.Fatalf("rebinding %s: %v", ep, err)
		}
	}
}

// abortAfter is a handler that flushes its head, waits for release, and
// then aborts (the node ends its session: `end`); it says when it is
// about to abort.
func abortAfter(release <-chan struct{}, aborting chan<- string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-release
		aborting <- r.URL.Path
		panic(http.ErrAbortHandler)
	}
}

// floodOr serves /flood with fl and every other path with other.
func floodOr(fl *flood, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flood" {
			fl.serve(w)
			return
		}
		other.ServeHTTP(w, r)
	})
}

// TestServeStuckProxyResumes: a proxy that takes nothing for a while and
// then takes messages again (here: it comes back on its endpoint, and
// the node's pipe to it drains) gets the rest, in order: the blocked
// session resumes where it stopped, without a gap, and the `end` that
// the node queued meanwhile for another session goes out, once, with
// nothing of that session after it. With a single endpoint.
func TestServeStuckProxyResumes(t *testing.T) {
	fl := newFlood()
	release, aborting := make(chan struct{}), make(chan string, 1)
	a := startServeOn(t, node.ServeConfig{SendTimeout: 10 * stubTimeout}, floodOr(fl, abortAfter(release, aborting)), startStub(t))[0]
	a.request("ea", get("/abort"))
	a.expectFrom("ea", "headers")
	a.request("fa", get("/flood"))
	a.send(a.id, "fa", "credit", "1000000000000")
	a.expectFrom("fa", "headers")
	a.sock.Close() // a takes nothing more
	fl.waitStalled(t)
	stalledAt := fl.count.Load()
	close(release) // ea's `end` waits for room
	<-aborting

	back := &served{stub: rebindStub(t, a.ep), id: a.id, log: a.log, stop: a.stop}
	next, ends := -1, 0
	for done := false; !done; {
		f := back.recv()
		switch {
		case f.sid == "ea" && f.typ == "end" && ends == 0:
			ends++
		case f.sid == "fa" && f.typ == "chunk" && f.body == "":
			done = true // the flood's final chunk: stopped
		case f.sid == "fa" && f.typ == "chunk":
			i, err := strconv.Atoi(f.body[:len(f.body)-1])
			if err != nil || next >= 0 && i != next {
				t.Fatalf("chunk %q after %d: want %d;", f.body, next-1, next)
			}
			next = i + 1
			if int64(next) == stalledAt+100 {
				close(fl.stop) // it resumed well past where it stalled
			}
		default:
			t.Fatalf("got %s %q for %q (ea's ends so far: %d)", f.typ, short(f.body), f.sid, ends)
		}
	}
	if ends != 1 {
		t.Fatalf("ea's end came %d times, want once", ends)
	}
	if err := <-fl.ended; err != nil {
		t.Fatalf("the flood ended with %v, want stopped", err)
	}
	back.send(back.id, "", "ping", "")
	back.expect(frame{back.id, "", "pong", node.CreditsFeature})
}

// TestServeStuckProxyBacklog: the node's messages outside a session
// (here the `end` of sessions whose handlers abort) that wait for a
// proxy that takes nothing are bounded by SendBacklog and dropped after
// SendTimeout; the stuck session's own `end` too, once it is ended for
// SendTimeout; each count is logged. With a single endpoint.
func TestServeStuckProxyBacklog(t *testing.T) {
	const backlog, aborts = 2, 4
	fl := newFlood()
	release, aborting := make(chan struct{}), make(chan string, aborts)
	a := startServeOn(t, node.ServeConfig{SendTimeout: stuckSendTimeout, SendBacklog: backlog}, floodOr(fl, abortAfter(release, aborting)), startStub(t))[0]
	for i := range aborts {
		sid := "e" + strconv.Itoa(i)
		a.request(sid, get("/abort"))
		a.expectFrom(sid, "headers")
	}
	a.request("fa", get("/flood"))
	a.send(a.id, "fa", "credit", "1000000000000")
	a.expectFrom("fa", "headers")
	a.sock.Close() // a takes nothing more
	fl.waitStalled(t)
	close(release)
	for range aborts {
		<-aborting
	}
	select {
	case err := <-fl.ended:
		if !errors.Is(err, node.ErrSessionEnded) {
			t.Fatalf("the flood ended with %v, want ErrSessionEnded", err)
		}
	case <-time.After(stubTimeout):
		t.Fatalf("the flood did not end within %v of its stall (SendTimeout %v)", stubTimeout, stuckSendTimeout)
	}
	// Dropped: 2 ends over the backlog's bound, the flood's end (the
	// backlog still full), then the 2 queued ends after SendTimeout.
	line := regexp.MustCompile(`ended (\d+) session\(s\).* dropped (\d+) message\(s\) \(SendBacklog 2,`)
	var ended, dropped int
	for deadline := time.Now().Add(stubTimeout); ended != 1 || dropped != aborts+1; time.Sleep(10 * time.Millisecond) {
		ended, dropped = 0, 0
		for _, m := range line.FindAllStringSubmatch(a.log.String(), -1) {
			e, _ := strconv.Atoi(m[1])
			d, _ := strconv.Atoi(m[2])
			ended, dropped = ended+e, dropped+d
		}
		if time.Now().After(deadline) {
			t.Fatalf("logged %d session(s) ended and %d message(s) dropped, want 1 and %d", ended, dropped, aborts+1)
		}
	}
}
