package zmqbridge

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/blastbeat/blastbeat/internal/zmqio"
)

// TestPingPeriod: a ping that went waits PingFreq; one that found its node
// not connected waits fastPing, or elsewherePing (at most PingFreq) when
// the handler says another bridge has the node; one held at the
// high-water mark waits fastPing, and is no news for the handler.
func TestPingPeriod(t *testing.T) {
	unreach := fmt.Errorf("send: %w", &zmqio.SendError{Errno: unix.EHOSTUNREACH})
	full := &zmqio.SendError{Errno: unix.EAGAIN}
	for _, tc := range []struct {
		name   string
		err    error
		watch  bool
		freq   time.Duration
		want   time.Duration
		called bool
	}{
		{"sent", nil, true, 3 * time.Second, 3 * time.Second, false},
		{"not connected", unreach, true, 3 * time.Second, fastPing, true},
		{"on another bridge", unreach, false, 3 * time.Second, elsewherePing, true},
		{"on another bridge, short ping-freq", unreach, false, 300 * time.Millisecond, 300 * time.Millisecond, true},
		{"on another bridge, ping-freq under fastPing", unreach, false, 50 * time.Millisecond, fastPing, true},
		{"at its high-water mark", full, true, 3 * time.Second, fastPing, false},
		{"another error", errors.New("zmq: closed"), true, 3 * time.Second, fastPing, false},
	} {
		called := false
		got := pingPeriod(tc.err, func() bool { called = true; return tc.watch }, tc.freq)
		if got != tc.want || called != tc.called {
			t.Errorf("%s: period %v, handler told %v; want %v, %v", tc.name, got, called, tc.want, tc.called)
		}
	}
}
