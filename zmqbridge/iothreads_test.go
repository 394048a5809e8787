package zmqbridge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ioThreads returns how many of this process's threads are named
// ZMQbg/IO/<i>, libzmq's name for a context's i-th I/O thread.
func ioThreads(t *testing.T, i string) int {
	t.Helper()
	comms, err := filepath.Glob("/proc/self/task/*/comm")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err == nil && strings.TrimSpace(string(b)) == "ZMQbg/IO/"+i {
			n++
		}
	}
	return n
}

// TestIOThreads: the bridge's context has Config.IOThreads I/O threads,
// nodes are served through them, and they end when the bridge stops (its
// context is terminated, not leaked).
func TestIOThreads(t *testing.T) {
	before := ioThreads(t, "2")
	ep := freeEndpoint(t)
	rec := newRecorder()
	b, err := Start(Config{Endpoints: []string{ep}, Identities: []string{"n0", "n1"}, PingFreq: 50 * time.Millisecond, IOThreads: 3}, rec)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			b.Stop()
		}
	})
	// Each libzmq thread names itself once it runs: wait for it.
	for deadline := time.Now().Add(5 * time.Second); ioThreads(t, "2") != before+1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d threads named ZMQbg/IO/2 with the bridge started, %d before; want one more", ioThreads(t, "2"), before)
		}
	}
	for _, name := range []string{"n0", "n1"} {
		dealer := dialNode(t, ep, name)
		msg, err := dealer.RecvMessage(0)
		if err != nil || len(msg) != 3 || msg[1] != "ping" {
			t.Fatalf("%s: first message %q, %v; want a ping", name, msg, err)
		}
		if _, err := dealer.SendMessage("", "pong", ""); err != nil {
			t.Fatal(err)
		}
		if d := <-rec.msgs; d != (delivered{name, "", "pong", ""}) {
			t.Fatalf("delivered %+v", d)
		}
	}
	b.Stop()
	stopped = true
	// The threads are joined by the context's termination; /proc lists a
	// thread until the kernel has reaped it.
	for deadline := time.Now().Add(5 * time.Second); ioThreads(t, "2") != before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d threads named ZMQbg/IO/2 after Stop, %d before: the context was not terminated", ioThreads(t, "2"), before)
		}
	}
}
