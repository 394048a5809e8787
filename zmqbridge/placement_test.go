package zmqbridge

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
	"golang.org/x/sys/unix"
)

// conns returns each bridge's counted connections once they add up to
// want (the accepts are counted from monitor events, a moment after the
// connect).
func conns(t *testing.T, bs []*Bridge, want int) []int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		per, sum := make([]int, len(bs)), 0
		for k, b := range bs {
			per[k] = b.Conns()
			sum += per[k]
		}
		if sum == want {
			return per
		}
		if time.Now().After(deadline) {
			t.Fatalf("bridges count %v connections, want %d in all", per, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// quickNode is dialNode with a 10 ms reconnect interval (libzmq's default
// is 100 ms), so that connections shut in their handshake come back
// quickly.
func quickNode(t *testing.T, ep, name string) *zmq.Socket {
	t.Helper()
	return dialNodeWith(t, ep, name, func(d *zmq.Socket) {
		d.SetRcvtimeo(20 * time.Second)
		d.SetReconnectIvl(10 * time.Millisecond)
	})
}

func startPlaced(t *testing.T, eps []string, n, rebalance int, ids []string) []*Bridge {
	t.Helper()
	if err := tcpInfoProbe(); rebalance > 0 && err != nil {
		t.Skipf("this kernel's TCP_INFO has no bytes sent (%v): the placement stays off", err)
	}
	bs, err := StartShared(Config{Endpoints: eps, Identities: ids, PingFreq: 50 * time.Millisecond, Rebalance: rebalance}, n,
		func(int) Handler { return newRecorder() })
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		t.Cleanup(b.Stop)
	}
	return bs
}

func rebalanced(bs []*Bridge) uint64 {
	var s Stats
	for _, b := range bs {
		s.Add(b.Stats())
	}
	return s.Rebalanced
}

// TestPlacementEvensBridges: eight nodes that connect one after the
// other end up two on each of four bridges (the kernel's hash alone does
// that about one time in 26): a connection that lands on a bridge with
// more than another is turned down in its handshake and comes back; every
// node is served.
func TestPlacementEvensBridges(t *testing.T) {
	ep := freeEndpoint(t)
	const n, nodes = 4, 8
	ids := make([]string, nodes)
	for i := range ids {
		ids[i] = fmt.Sprintf("n%d", i)
	}
	bs := startPlaced(t, []string{ep}, n, 1000, ids)
	dealers := make([]*zmq.Socket, nodes)
	for i := range nodes {
		dealers[i] = quickNode(t, ep, ids[i])
		if msg, err := dealers[i].RecvMessage(0); err != nil || len(msg) != 3 || msg[1] != "ping" {
			t.Fatalf("%s: first message %q, %v; want a ping", ids[i], msg, err)
		}
		conns(t, bs, i+1)
	}
	if per := conns(t, bs, nodes); fmt.Sprint(per) != "[2 2 2 2]" {
		t.Fatalf("connections per bridge %v, want 2 on each", per)
	}
	t.Logf("%d connections turned down on the way", rebalanced(bs))
}

// TestPlacementEvensConcurrentNodes: four nodes that connect at the same
// moment end up one on each bridge.
func TestPlacementEvensConcurrentNodes(t *testing.T) {
	ep := freeEndpoint(t)
	ids := []string{"a", "b", "c", "d"}
	bs := startPlaced(t, []string{ep}, 4, 1000, ids)
	dealers := make([]*zmq.Socket, len(ids))
	for i, id := range ids {
		dealers[i] = quickNode(t, ep, id)
	}
	for i, d := range dealers {
		if msg, err := d.RecvMessage(0); err != nil || len(msg) != 3 || msg[1] != "ping" {
			t.Fatalf("%s: first message %q, %v; want a ping", ids[i], msg, err)
		}
	}
	if per := conns(t, bs, len(ids)); fmt.Sprint(per) != "[1 1 1 1]" {
		t.Fatalf("connections per bridge %v, want 1 on each", per)
	}
}

// TestPlacementOffAndIPC: with Rebalance 0 no connection is turned
// down; nor is one on an ipc:// endpoint (the first bridge's alone, where
// a node turned down would only come back), however unbalanced.
func TestPlacementOffAndIPC(t *testing.T) {
	ipc := "ipc://" + filepath.Join(t.TempDir(), "bb.sock")
	bs := startPlaced(t, []string{freeEndpoint(t), ipc}, 2, 1000, []string{"a", "b", "c"})
	for _, id := range []string{"a", "b", "c"} {
		d := quickNode(t, ipc, id)
		if msg, err := d.RecvMessage(0); err != nil || len(msg) != 3 || msg[1] != "ping" {
			t.Fatalf("%s: first message %q, %v; want a ping", id, msg, err)
		}
	}
	if per := conns(t, bs, 3); fmt.Sprint(per) != "[3 0]" || rebalanced(bs) != 0 {
		t.Fatalf("connections per bridge %v, %d turned down; want [3 0], none turned down", per, rebalanced(bs))
	}

	ep := freeEndpoint(t)
	off := startPlaced(t, []string{ep}, 4, 0, []string{"a", "b", "c", "d", "e", "f", "g", "h"})
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		quickNode(t, ep, id)
	}
	conns(t, off, 8)
	if r := rebalanced(off); r != 0 {
		t.Fatalf("Rebalance 0 turned down %d connections", r)
	}
}

// TestPlacementCountsConns: each bridge counts the nodes' connections
// open on it; one bridge alone counts nothing.
func TestPlacementCountsConns(t *testing.T) {
	ep := freeEndpoint(t)
	bs := startPlaced(t, []string{ep}, 2, 0, []string{"a", "b", "c"})
	a := dialNode(t, ep, "a")
	dialNode(t, ep, "b")
	dialNode(t, ep, "c")
	conns(t, bs, 3)
	a.Close()
	conns(t, bs, 2)

	one, err := StartShared(Config{Endpoints: []string{freeEndpoint(t)}}, 1, func(int) Handler { return newRecorder() })
	if err != nil {
		t.Fatal(err)
	}
	defer one[0].Stop()
	if n := one[0].Conns(); n != -1 {
		t.Fatalf("one bridge counts %d connections, want -1 (not counted)", n)
	}
}

// TestPlacementOverloaded: the decisions: a bridge with more open
// connections than another, the one asking aside, may shut one, at most
// max in a row; only tcp:// connections are candidates.
func TestPlacementOverloaded(t *testing.T) {
	p := newPlacement(2, 2, nil)
	ep := "tcp://127.0.0.1:5000"
	p.accepted(0, 7, ep)
	if p.overloaded(0) { // 1 0, itself aside: 0 0
		t.Fatal("first connection: overloaded")
	}
	p.accepted(0, 8, ep)
	if !p.overloaded(0) { // 2 0: 1 > 0
		t.Fatal("two on bridge 0, none on 1: not overloaded")
	}
	p.shut(0, true)
	p.shut(0, true)
	if p.overloaded(0) { // max (2) in a row: let through
		t.Fatal("shut more than max in a row")
	}
	p.shut(0, true)
	p.accepted(0, 9, "ipc:///tmp/x")
	for _, c := range p.tcpConns(0) {
		if c.fd == 9 {
			t.Fatal("an ipc:// connection is a candidate")
		}
	}
	if len(p.tcpConns(0)) != 2 {
		t.Fatalf("tcp connections %v, want 7 and 8", p.tcpConns(0))
	}
	if ipOnly("") || ipOnly(":1000:1000:42") || !ipOnly("10.0.0.1") || !ipOnly("::1") || !ipOnly("fe80::1%eth0") {
		t.Fatal("ipOnly")
	}
	if a, _ := parseAddr("fe80::1%eth0"); a != netip.MustParseAddr("fe80::1") {
		t.Fatalf("parseAddr drops the zone: %v", a)
	}
	if a, _ := parseAddr("127.0.0.1"); a != sockAddr(&unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}) {
		t.Fatalf("parseAddr(127.0.0.1) = %v, not the peer's form", a)
	}
	if err := tcpInfoProbe(); err != nil {
		t.Logf("TCP_INFO probe: %v (the placement would be off here)", err)
	}
	p.disconnected(0, 8)
	p.disconnected(1, 99) // before its accept (reported from another thread)
	p.accepted(1, 99, ep)
	if p.count(0) != 2 || p.count(1) != 0 {
		t.Fatalf("counts %d %d, want 2 0", p.count(0), p.count(1))
	}
	p.accepted(1, 99, ep) // the number again, a new connection
	if p.count(1) != 1 {
		t.Fatalf("count %d after a new accept, want 1", p.count(1))
	}
	if p.deniedBy(0) != 3 || p.deniedBy(1) != 0 {
		t.Fatalf("shut %d %d, want 3 0", p.deniedBy(0), p.deniedBy(1))
	}
	if p.bridgeOf(zapDomain(1)) != 1 || p.bridgeOf(zapDomain(2)) != -1 || p.bridgeOf("other") != -1 {
		t.Fatal("bridgeOf")
	}
	off := newPlacement(2, 0, nil)
	off.accepted(0, 7, ep)
	off.accepted(0, 8, ep)
	if off.overloaded(0) {
		t.Fatal("Rebalance 0 shuts")
	}
}

// TestCheckWaiting: a connection counts as waiting, and is shut, only if
// its descriptor is a connected socket on the endpoint's port, from the
// address asked about, with no more than a greeting sent on it.
func TestCheckWaiting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ep := "tcp://" + l.Addr().String()
	pair := func() (client, server net.Conn, fd int) {
		client, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		server, err = l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { server.Close() })
		f, err := server.(*net.TCPConn).File() // a duplicate: only its number is used
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return client, server, int(f.Fd())
	}
	client, server, fd := pair()
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	port := l.Addr().(*net.TCPAddr).Port
	for name, ok := range map[string]bool{
		"another port":       checkWaiting(candidate{fd, fmt.Sprintf("tcp://127.0.0.1:%d", port+1)}, "127.0.0.1", true),
		"another address":    checkWaiting(candidate{fd, ep}, "10.0.0.1", true),
		"a listening socket": checkWaiting(candidate{int(lf.Fd()), ep}, "127.0.0.1", true),
		"no such descriptor": checkWaiting(candidate{1 << 20, ep}, "127.0.0.1", true),
	} {
		if ok {
			t.Errorf("%s: shut", name)
		}
	}
	// Past a greeting sent: spared.
	busyClient, busy, busyFD := pair()
	if _, err := busy.Write(make([]byte, greeting+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(busyClient, make([]byte, greeting+1)); err != nil {
		t.Fatal(err)
	}
	if shutOne([]candidate{{busyFD, ep}}, "127.0.0.1") || len(waitingFrom([]candidate{{busyFD, ep}}, "127.0.0.1")) != 0 {
		t.Fatal("a connection past its greeting was taken for waiting")
	}
	// A greeting sent: shut.
	if _, err := server.Write(make([]byte, greeting)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, make([]byte, greeting)); err != nil {
		t.Fatal(err)
	}
	if w := waitingFrom([]candidate{{busyFD, ep}, {fd, ep}}, "127.0.0.1"); len(w) != 1 || w[0].fd != fd {
		t.Fatalf("waiting %v, want the one at its greeting", w)
	}
	if !shutOne([]candidate{{busyFD, ep}, {fd, ep}}, "127.0.0.1") {
		t.Fatal("the connection waiting after its greeting was not shut")
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a shut connection, want EOF", n)
	}
	if len(waitingFrom([]candidate{{fd, ep}}, "127.0.0.1")) != 0 {
		t.Fatal("a connection shut already is taken for waiting")
	}
	busyClient.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := busyClient.Read(make([]byte, 1)); err == nil || !os.IsTimeout(err) {
		t.Fatalf("the spared connection: %v, want a timeout (open, quiet)", err)
	}
}

// TestPlacementOwnIOThreads: with Rebalance each bridge's connections are
// served by I/O threads of its own: four nodes over four bridges, one
// each, are polled by four different threads; and the masks.
func TestPlacementOwnIOThreads(t *testing.T) {
	for _, tc := range []struct {
		k, m int
		mask uint64
		ok   bool
	}{{0, 1, 1, true}, {3, 1, 8, true}, {1, 2, 0b1100, true}, {15, 4, 0xf << 60, true}, {16, 4, 0, false}, {0, 65, 0, false}} {
		if mask, ok := affinity(tc.k, tc.m); mask != tc.mask || ok != tc.ok {
			t.Errorf("affinity(%d, %d) = %#x, %v; want %#x, %v", tc.k, tc.m, mask, ok, tc.mask, tc.ok)
		}
	}
	ep := freeEndpoint(t)
	_, portStr, _ := strings.Cut(strings.TrimPrefix(ep, "tcp://"), ":")
	var port int
	fmt.Sscan(portStr, &port)
	ids := []string{"a", "b", "c", "d"}
	bs := startPlaced(t, []string{ep}, 4, 1000, ids)
	for _, id := range ids {
		d := quickNode(t, ep, id)
		if msg, err := d.RecvMessage(0); err != nil || len(msg) != 3 || msg[1] != "ping" {
			t.Fatalf("%s: first message %q, %v; want a ping", id, msg, err)
		}
	}
	if per := conns(t, bs, len(ids)); fmt.Sprint(per) != "[1 1 1 1]" {
		t.Fatalf("connections per bridge %v, want 1 on each", per)
	}
	if per := servedBy(t, port, len(ids)); len(per) != len(ids) {
		t.Fatalf("the nodes' connections are polled by %d I/O threads (%v), want one each", len(per), per)
	}
}
