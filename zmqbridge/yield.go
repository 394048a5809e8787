package zmqbridge

import "time"

// yieldInterval is how often at most the bridge, about to sleep, yields to
// the Go scheduler.
//
// The bridge's goroutine never parks: it runs, sleeps in epoll_wait and
// runs again, and is never rescheduled. After 10 ms of that, sysmon takes
// it for a long-running goroutine: it asks it to yield and takes its P
// away while it sleeps, at every sysmon tick until it is rescheduled, and
// each such take keeps sysmon on its 20 µs tick. On one keep-alive
// connection that was about 1,300 takes a second and a tenth of a core in
// sysmon. A yield every 5 ms reschedules the goroutine (a locked one: a
// hand-off of its P and back) and keeps it under sysmon's 10 ms.
const yieldInterval = 5 * time.Millisecond

// idleYield decides when the bridge yields before sleeping.
type idleYield struct {
	last time.Time
}

// due reports whether the bridge, going to sleep at now, should yield:
// the first time, and then once yieldInterval has passed since the last.
func (y *idleYield) due(now time.Time) bool {
	if !y.last.IsZero() && now.Sub(y.last) < yieldInterval {
		return false
	}
	y.last = now
	return true
}
