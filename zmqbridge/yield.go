package zmqbridge

import "time"

// yieldInterval is how often at most the bridge yields to the Go
// scheduler, busy or idle.
//
// The bridge's goroutine never parks: it runs, sleeps in epoll_wait and
// runs again, and is never rescheduled. After 10 ms of that, sysmon takes
// it for a long-running goroutine: it asks it to yield and takes its P
// away whenever it finds it in a system call (epoll_wait, a cgo call into
// libzmq), at every sysmon tick until it has yielded, and each such take
// keeps sysmon on its 20 µs tick. On one keep-alive connection that was
// about 1,300 takes a second and a tenth of a core in sysmon. A yield every
// 5 ms reschedules the goroutine (a locked one: a hand-off of its P and
// back) and keeps it under sysmon's 10 ms.
const yieldInterval = 5 * time.Millisecond

// yielder decides when the bridge yields.
type yielder struct {
	last time.Time
}

// due reports whether the bridge at now should yield: the first time, and
// then once yieldInterval has passed since the last yield.
func (y *yielder) due(now time.Time) bool {
	if !y.last.IsZero() && now.Sub(y.last) < yieldInterval {
		return false
	}
	y.last = now
	return true
}
