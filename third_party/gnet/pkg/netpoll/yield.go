// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

package netpoll

import "time"

// YieldInterval (blastbeat patch) is how often at most an idle event-loop
// yields to the Go scheduler before it blocks in epoll_wait.
//
// Upstream yields (runtime.Gosched) on every idle turn. That puts the loop
// on the global run queue, where another thread often takes it first: each
// idle turn cost a thread hand-off, a futex wake and a sleep.
//
// Never yielding is no better. A goroutine that is not rescheduled for
// 10 ms counts as long-running to sysmon, which then asks it to yield and
// takes its P away while it sleeps in epoll_wait, at every sysmon tick
// until it is rescheduled; each such take keeps sysmon on its 20 µs tick.
//
// Yielding at most every 5 ms keeps an event-loop under sysmon's 10 ms at a
// cost of 200 hand-offs a second at most.
const YieldInterval = 5 * time.Millisecond

// IdleYield (blastbeat patch) decides when an idle loop yields.
type IdleYield struct {
	last time.Time
}

// Due reports whether a loop going idle at now should yield: the first
// time, and then once YieldInterval has passed since the last yield.
func (y *IdleYield) Due(now time.Time) bool {
	if !y.last.IsZero() && now.Sub(y.last) < YieldInterval {
		return false
	}
	y.last = now
	return true
}
