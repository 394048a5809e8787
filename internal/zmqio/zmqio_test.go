package zmqio

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// sendNumbered sends n messages ("sid", "body", body) from dealer:
// message i's body is body(i), but the one in the middle is 300 KiB
// (over maxRecvBytes and bufpool.MaxPooled: a batch of its own). It
// returns the body of each, by number.
func sendNumbered(dealer *zmq.Socket, n int, body func(i int) []byte) func(i int) []byte {
	big := bytes.Repeat([]byte("y"), 300<<10)
	want := func(i int) []byte {
		if i == n/2 {
			return big
		}
		return body(i)
	}
	for i := 0; i < n; i++ {
		dealer.SendMessage("sid", "body", want(i))
	}
	return want
}

// checkFrames fails t unless f is message got of sendNumbered.
func checkFrames(t testing.TB, f [][]byte, got int, want func(int) []byte) {
	t.Helper()
	if string(f[0]) != "n1" || string(f[1]) != "sid" || string(f[2]) != "body" || !bytes.Equal(f[3], want(got)) {
		t.Fatalf("message %d: %q %q %q %d bytes", got, f[0], f[1], f[2], len(f[3]))
	}
}

func pair(t testing.TB) (router, dealer *zmq.Socket) {
	t.Helper()
	ep := fmt.Sprintf("inproc://zmqio-%d", time.Now().UnixNano())
	router, _ = zmq.NewSocket(zmq.ROUTER)
	router.SetRouterMandatory(1)
	router.SetLinger(0)
	if err := router.Bind(ep); err != nil {
		t.Fatal(err)
	}
	dealer, _ = zmq.NewSocket(zmq.DEALER)
	dealer.SetIdentity("n1")
	dealer.SetLinger(0)
	if err := dealer.Connect(ep); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dealer.Close(); router.Close() })
	return router, dealer
}

// batcher returns a Batcher of frames-frame messages on s, closed when
// the test ends.
func batcher(t testing.TB, s *zmq.Socket, frames int) *Batcher {
	t.Helper()
	b, err := New(s, frames)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// waitReadable waits until a message is readable on b's socket (inproc:
// then every message sent before it is).
func waitReadable(t testing.TB, b *Batcher) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !b.Events().Readable(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("nothing arrived")
		}
	}
}

func TestHandle(t *testing.T) {
	s, _ := zmq.NewSocket(zmq.DEALER)
	defer s.Close()
	if socketHandle(s) == nil {
		t.Fatal("pebbe/zmq4 Socket has no soc field any more")
	}
}

func TestRoundTrip(t *testing.T) {
	router, dealer := pair(t)
	rb := batcher(t, router, 4)
	const n = 300
	for i := 0; i < n; i++ {
		dealer.SendMessage("sid", "body", fmt.Sprint(i))
	}
	dealer.SendMessage("two", "frames-only")
	dealer.SendMessage("", "pong", bytes.Repeat([]byte("x"), 70000))
	got, dropped := 0, 0
	deadline := time.Now().Add(5 * time.Second)
	for got < n+1 && time.Now().Before(deadline) {
		k, d, _ := rb.Recv(MaxMessages, func(f [][]byte) {
			switch {
			case got < n:
				if string(f[0]) != "n1" || string(f[1]) != "sid" || string(f[2]) != "body" || string(f[3]) != fmt.Sprint(got) {
					t.Fatalf("message %d: %q", got, f)
				}
			default:
				if string(f[2]) != "pong" || len(f[3]) != 70000 {
					t.Fatalf("last message %q %d", f[2], len(f[3]))
				}
			}
			got++
		})
		dropped += d
		if k == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if got != n+1 || dropped != 1 {
		t.Fatalf("got %d messages, %d dropped; want %d, 1", got, dropped, n+1)
	}

	for i := 0; i < 10; i++ {
		rb.Add([]byte("n1"), []byte("sid"), []byte("headers"), []byte(fmt.Sprint(i)))
	}
	rb.Add([]byte("nobody"), []byte("sid"), []byte("body"), nil)
	rb.Add([]byte("n1"), []byte("sid"), []byte("body"), []byte("lost"))
	sent, err := rb.Send()
	var se *SendError
	if sent != 10 || !errors.As(err, &se) || se.Errno != syscall.EHOSTUNREACH || se.Index != 10 {
		t.Fatalf("Send = %d, %v", sent, err)
	}
	dealer.SetRcvtimeo(time.Second)
	for i := 0; i < 10; i++ {
		m, err := dealer.RecvMessage(0)
		if err != nil || len(m) != 3 || m[2] != fmt.Sprint(i) {
			t.Fatalf("dealer got %q %v", m, err)
		}
	}
}

func BenchmarkBatchedRoundTrip(b *testing.B) {
	router, dealer := pair(b)
	rb, _ := New(router, 4)
	db, _ := New(dealer, 3)
	body := []byte("Hello, World!")
	b.ReportAllocs()
	for i := 0; i < b.N; i += 64 {
		for k := 0; k < 64; k++ {
			db.Add([]byte("0123456789abcdef"), []byte("headers"), body)
		}
		db.Send()
		for got := 0; got < 64; {
			n, _, _ := rb.Recv(MaxMessages, func(f [][]byte) {
				rb.Add(f[0], f[1], f[2], f[3])
			})
			got += n
		}
		rb.Send()
		for got := 0; got < 64; {
			n, _, _ := db.Recv(MaxMessages, func([][]byte) {})
			got += n
		}
	}
}

func BenchmarkPebbeRoundTrip(b *testing.B) {
	router, dealer := pair(b)
	body := []byte("Hello, World!")
	b.ReportAllocs()
	for i := 0; i < b.N; i += 64 {
		for k := 0; k < 64; k++ {
			dealer.SendMessage([]byte("0123456789abcdef"), "headers", body)
		}
		for k := 0; k < 64; k++ {
			m, _ := router.RecvMessageBytes(0)
			router.SendMessage(m[0], m[1], m[2], m[3])
		}
		for k := 0; k < 64; k++ {
			dealer.RecvMessageBytes(0)
		}
	}
}
