// Package yield keeps a goroutine that never parks from counting as
// long-running to the Go scheduler.
//
// A goroutine that runs, blocks in a system call or a cgo call (epoll_wait,
// zmq_poll, a libzmq batch), and runs again, is never rescheduled. After
// 10 ms of that, sysmon takes it for a long-running goroutine: it asks it
// to yield and takes its P away whenever it finds it in the call, at every
// sysmon tick until it has yielded, and each such take keeps sysmon on its
// 20 µs tick. On one keep-alive connection that was about 1,300 takes a
// second and a tenth of a core in sysmon, in the proxy's bridge and in the
// bench node alike. A yield every Interval reschedules the goroutine (for a
// locked one: a hand-off of its P and back) and keeps it under sysmon's
// 10 ms.
//
// The proxy's bridge, the bench node's receive loop and the node library's
// loop use it; the event loops use gnet's copy (third_party/gnet, patch 9).
package yield

import "time"

// Interval is how often at most a Yielder's goroutine yields, busy or
// idle: at most 200 hand-offs a second, under sysmon's 10 ms.
const Interval = 5 * time.Millisecond

// Yielder decides when its goroutine yields. The zero value is ready.
type Yielder struct {
	last time.Time
}

// Due reports whether the goroutine should yield at now: the first time,
// and then once Interval has passed since the last yield.
func (y *Yielder) Due(now time.Time) bool {
	if !y.last.IsZero() && now.Sub(y.last) < Interval {
		return false
	}
	y.last = now
	return true
}
