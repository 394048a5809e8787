package zmqbridge

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWakeAfterStopWritesNothing: a wake that comes after the bridge's
// goroutine closed its eventfd (a producer's TrySend, or Stop's own wake,
// racing the exit) writes nothing: the number is free by then, and may
// be a client's socket already. Before, the wake wrote 8 bytes into
// whatever had the number. Found by a review. (The descriptor is a pipe
// put in the field once the goroutine is gone, not one dup'ed onto the
// freed number: another thread could take that number meanwhile.)
func TestWakeAfterStopWritesNothing(t *testing.T) {
	ep := freeEndpoint(t)
	b, err := Start(Config{Endpoints: []string{ep}, Identities: []string{"n0"}, PingFreq: 50 * time.Millisecond}, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	b.Stop()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	b.efd = p[1] // the goroutine is gone (Stop waited for it)
	b.sleeping.Store(true)
	b.wake()
	var buf [8]byte
	if n, err := unix.Read(p[0], buf[:]); n > 0 || !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("a wake after the eventfd was closed wrote %d bytes (%v)", n, err)
	}
}

// TestRingOfOne: a ring asked for one slot gets two: with one, a slot
// just read would look published to the next producer.
func TestRingOfOne(t *testing.T) {
	r := NewRing(1)
	if r.Cap() < 2 {
		t.Fatalf("NewRing(1) has %d slots, want at least 2", r.Cap())
	}
	var m Msg
	if !r.Push(&Msg{Type: "a"}) || !r.Push(&Msg{Type: "b"}) || r.Push(&Msg{Type: "c"}) {
		t.Fatal("a ring of two took other than two messages")
	}
	if !r.Pop(&m) || m.Type != "a" || !r.Pop(&m) || m.Type != "b" || r.Pop(&m) {
		t.Fatal("messages out of order, or a third")
	}
}
