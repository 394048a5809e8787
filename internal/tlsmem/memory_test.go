package tlsmem_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/internal/tlsmem"
)

// TestIdleMemory keeps N Conns open and idle after their handshake (and,
// in one case, after a 16 KiB message each way), with sockets and test
// plumbing detached, and logs what each holds on the heap. The bound is
// generous: the figure is the point.
func TestIdleMemory(t *testing.T) {
	n := 1000
	if raceEnabled {
		n = 100 // the figure under -race is not meaningful; this only exercises the path
	}
	t.Logf("reflect size of tls.Conn: %d bytes, of tlsmem.Conn: %d bytes",
		reflect.TypeFor[tls.Conn]().Size(), reflect.TypeFor[tlsmem.Conn]().Size())
	tests := []struct {
		name    string
		version uint16
		traffic int // bytes echoed once before going idle
	}{
		{name: "TLS13/after handshake", version: tls.VersionTLS13},
		{name: "TLS12/after handshake", version: tls.VersionTLS12},
		{name: "TLS13/after 16KiB each way", version: tls.VersionTLS13, traffic: 16 << 10},
		{name: "TLS13/after 1KiB each way", version: tls.VersionTLS13, traffic: 1 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, serverConfig("h2", "http/1.1"), nil)
			cfg := clientConfig(tt.version)
			var msg []byte
			if tt.traffic > 0 {
				msg = payload(tt.traffic, 3)
			}
			kept := make([]*tlsmem.Conn, 0, n)
			goroutines := runtime.NumGoroutine()
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&m0)
			for range n {
				raw, err := net.Dial("tcp", s.addr())
				if err != nil {
					t.Fatal(err)
				}
				c := tls.Client(raw, cfg)
				c.SetDeadline(time.Now().Add(waitLong()))
				if err := c.Handshake(); err != nil {
					t.Fatal(err)
				}
				sc := s.next(t)
				waitOpen(t, sc)
				if msg != nil {
					roundTrip(t, c, msg)
				}
				s.exec(func() {
					sc.detach()
					kept = append(kept, sc.tc)
				})
				c.Close()
			}
			checkNoHandshakeGoroutines(t)
			checkFor(t, waitLong(), 5*time.Millisecond, func() error { // the stand-in readers
				if now := runtime.NumGoroutine(); now > goroutines {
					return fmt.Errorf("%d goroutines, %d before", now, goroutines)
				}
				return nil
			})
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&m1)
			inuse := (int64(m1.HeapInuse) - int64(m0.HeapInuse)) / int64(n)
			alloc := (int64(m1.HeapAlloc) - int64(m0.HeapAlloc)) / int64(n)
			objs := (int64(m1.HeapObjects) - int64(m0.HeapObjects)) / int64(n)
			t.Logf("%d idle Conns: %d B/conn HeapInuse, %d B/conn HeapAlloc, %d objects/conn (race %v)",
				n, inuse, alloc, objs, raceEnabled)
			if limit := int64(64 << 10); !raceEnabled && alloc > limit {
				t.Errorf("an idle Conn holds %d bytes, want under %d", alloc, limit)
			}
			s.exec(func() {
				for _, c := range kept {
					if c.State() != tlsmem.StateOpen {
						t.Errorf("kept Conn in state %v", c.State())
					}
					c.Close()
				}
			})
			runtime.KeepAlive(kept)
		})
	}
}
