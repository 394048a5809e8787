package zmqbridge

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"golang.org/x/sys/unix"
)

// TestShareEndpoints: a tcp:// endpoint gets one listening socket per
// bridge, all on the port the first got (port 0 here); an ipc:// one is
// the first bridge's alone.
func TestShareEndpoints(t *testing.T) {
	ipc := "ipc://" + filepath.Join(t.TempDir(), "bb.sock")
	eps, fds, err := ShareEndpoints([]string{"tcp://127.0.0.1:0", ipc}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range fds {
			closeFDs(f)
		}
	}()
	if len(eps) != 3 || len(eps[0]) != 2 || eps[0][1] != ipc || fds[0][1] != -1 {
		t.Fatalf("endpoints %q, fds %v", eps, fds)
	}
	for k := 1; k < 3; k++ {
		if len(eps[k]) != 1 || eps[k][0] != eps[0][0] || fds[k][0] < 0 {
			t.Fatalf("bridge %d: endpoints %q, fds %v; want %s on its own socket", k, eps[k], fds[k], eps[0][0])
		}
	}
	if strings.HasSuffix(eps[0][0], ":0") {
		t.Fatalf("endpoint %s: want the port the kernel picked", eps[0][0])
	}
	if _, _, err := ShareEndpoints([]string{"tcp://127.0.0.1"}, 2); err == nil {
		t.Fatal("an endpoint without a port was accepted")
	}
}

// TestStartShared: two bridges behind one endpoint; every node that
// connects is served by one of them (the kernel picks), and each pong
// reaches its bridge's handler once.
func TestStartShared(t *testing.T) {
	ep := freeEndpoint(t)
	const nodes = 8
	ids := make([]string, nodes)
	for i := range ids {
		ids[i] = fmt.Sprintf("n%d", i)
	}
	recs := []*recorder{newRecorder(), newRecorder()}
	bs, err := StartShared(Config{Endpoints: []string{ep}, Identities: ids, PingFreq: 50 * time.Millisecond}, 2,
		func(k int) Handler { return recs[k] })
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		t.Cleanup(b.Stop)
	}
	for _, id := range ids {
		dealer := dialNode(t, ep, id)
		msg, err := dealer.RecvMessage(0)
		if err != nil || len(msg) != 3 || msg[1] != "ping" {
			t.Fatalf("%s: first message %q, %v; want a ping", id, msg, err)
		}
		if _, err := dealer.SendMessage("", "pong", id); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int{}
	for len(got) < nodes {
		select {
		case d := <-recs[0].msgs:
			got[d.id]++
		case d := <-recs[1].msgs:
			got[d.id]++
		case <-time.After(5 * time.Second):
			t.Fatalf("pongs from %v only", got)
		}
	}
	for id, n := range got {
		if n != 1 || id == "" {
			t.Fatalf("pongs %v: want one from each node", got)
		}
	}
}

// TestStartSharedFails: a bridge that cannot start stops the others and
// leaves no listening socket open.
func TestStartSharedFails(t *testing.T) {
	before := openFDs(t)
	_, err := StartShared(Config{Endpoints: []string{freeEndpoint(t), "bogus://x"}}, 2,
		func(int) Handler { return newRecorder() })
	if err == nil {
		t.Fatal("StartShared accepted a bad endpoint")
	}
	// The stopped bridge's context ends its threads and sockets.
	for deadline := time.Now().Add(5 * time.Second); openFDs(t) > before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open after a failed start, %d before", openFDs(t), before)
		}
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestShareEndpointsFails: when an endpoint cannot be shared, the
// sockets opened for the others are closed.
func TestShareEndpointsFails(t *testing.T) {
	before := openFDs(t)
	// 192.0.2.1 (TEST-NET-1) is no address of this machine.
	if _, _, err := ShareEndpoints([]string{"tcp://127.0.0.1:0", "tcp://192.0.2.1:1"}, 3); err == nil {
		t.Fatal("an endpoint on another machine's address was shared")
	}
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors open after the failure, %d before", after, before)
	}
}

// TestShareEndpointsInUse: a port something listens on already, even with
// SO_REUSEPORT (another proxy of the same user), is refused as with one
// bridge, instead of shared with it.
func TestShareEndpointsInUse(t *testing.T) {
	fd, addr, err := reusePortListen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	before := openFDs(t)
	_, _, err = ShareEndpoints([]string{"tcp://" + addr}, 2)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err %v, want address already in use", err)
	}
	// More than before would be a leak (fewer: another test's sockets,
	// closed meanwhile by libzmq's reaper).
	if after := openFDs(t); after > before {
		t.Fatalf("%d descriptors open after the refusal, %d before", after, before)
	}
}

// servedBy maps each connection accepted on port (this process's
// ESTABLISHED sockets whose local port it is) to the epoll instance that
// watches it: each libzmq I/O thread polls its own. It returns the
// number of those connections per epoll instance, once all want are
// watched by one (libzmq registers an accepted connection a moment after
// the accept).
func servedBy(t *testing.T, port, want int) map[string]int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		inodes := map[string]bool{}
		tcp, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(tcp), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "01" || !strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) {
				continue
			}
			inodes["socket:["+f[9]+"]"] = true
		}
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		conns, epolls := map[string]bool{}, []string{}
		for _, e := range ents {
			link, err := os.Readlink("/proc/self/fd/" + e.Name())
			switch {
			case err != nil:
			case inodes[link]:
				conns[e.Name()] = true
			case link == "anon_inode:[eventpoll]":
				epolls = append(epolls, e.Name())
			}
		}
		per, watched := map[string]int{}, 0
		for _, ep := range epolls {
			info, err := os.ReadFile("/proc/self/fdinfo/" + ep)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(info), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "tfd:" && conns[f[1]] {
					per[ep]++
					watched++
				}
			}
		}
		if len(conns) == want && watched == want {
			return per
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections accepted on port %d, %d of them polled (%v); want %d", len(conns), port, watched, per, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestStartSharedSpreadsIOThreads: four nodes behind four bridges are
// served by four different libzmq I/O threads, wherever the kernel placed
// them (each bridge with a context of its own served two nodes on one
// thread, and left another thread idle, in nine tries out of ten); and
// the shared context's threads end with the last bridge.
func TestStartSharedSpreadsIOThreads(t *testing.T) {
	before := ioThreads(t, "3")
	ep := freeEndpoint(t)
	_, portStr, _ := strings.Cut(strings.TrimPrefix(ep, "tcp://"), ":")
	var port int
	fmt.Sscan(portStr, &port)
	ids := []string{"n0", "n1", "n2", "n3"}
	bs, err := StartShared(Config{Endpoints: []string{ep}, Identities: ids, PingFreq: 50 * time.Millisecond}, 4,
		func(int) Handler { return newRecorder() })
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			for _, b := range bs {
				b.Stop()
			}
		}
	})
	for _, id := range ids {
		dealer := dialNode(t, ep, id)
		// Connected and served: its bridge's ping arrives.
		if msg, err := dealer.RecvMessage(0); err != nil || len(msg) != 3 || msg[1] != "ping" {
			t.Fatalf("%s: first message %q, %v; want a ping", id, msg, err)
		}
	}
	per := servedBy(t, port, len(ids))
	if len(per) != len(ids) {
		t.Fatalf("the %d nodes' connections are polled by %d I/O threads (%v), want one each", len(ids), len(per), per)
	}
	if n := ioThreads(t, "3"); n != before+1 {
		t.Fatalf("%d threads named ZMQbg/IO/3, %d before: want one context of four I/O threads", n, before)
	}
	for _, b := range bs {
		b.Stop()
	}
	stopped = true
	for deadline := time.Now().Add(5 * time.Second); ioThreads(t, "3") != before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d threads named ZMQbg/IO/3 after the bridges stopped, %d before: the shared context was not ended", ioThreads(t, "3"), before)
		}
	}
}

// TestSharedContextLentTermAsync: once a bridge let go while libzmq still
// held bodies lent to it, the last release of the shared context does not
// wait for the context's end (Term waits for every socket and body): a
// bridge's Stop must not hang on another bridge's bodies.
func TestSharedContextLentTermAsync(t *testing.T) {
	zctx, err := newContext(1)
	if err != nil {
		t.Fatal(err)
	}
	held, err := zctx.NewSocket(zmq.PAIR) // stands for what libzmq still holds
	if err != nil {
		t.Fatal(err)
	}
	c := &sharedContext{ctx: zctx}
	c.acquire()
	c.lent.Store(true)
	released := make(chan struct{})
	go func() { c.release(); close(released) }()
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("the last release waits for the context's end")
	}
	held.Close() // the context ends now, in release's goroutine
}
