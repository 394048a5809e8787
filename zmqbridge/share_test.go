package zmqbridge

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
