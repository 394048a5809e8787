// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

package netpoll

import "time"

// YieldInterval (blastbeat patch 9) is how often at most an event-loop
// yields to the Go scheduler, busy or idle.
//
// Upstream yields (runtime.Gosched) on every idle turn, before it blocks in
// epoll_wait. That puts the loop on the global run queue, where another
// thread often takes it first: each idle turn cost a thread hand-off, a
// futex wake and a sleep.
//
// Not yielding is no better. A goroutine that is not rescheduled for
// 10 ms counts as long-running to sysmon, which then asks it to yield and
// takes its P away whenever it finds it in a system call, at every sysmon
// tick until it has yielded; each such take keeps sysmon on its 20 µs tick
// for a millisecond and more. A loop that never idles (a busy one) or only
// idles briefly is such a goroutine.
//
// Yielding every 5 ms, busy or idle, keeps an event-loop under sysmon's
// 10 ms at a cost of 200 hand-offs a second at most.
const YieldInterval = 5 * time.Millisecond

// Yield (blastbeat patch 9) decides when a loop yields.
type Yield struct {
	last time.Time
}

// Due reports whether a loop at now should yield: the first time, and
// then once YieldInterval has passed since the last yield.
func (y *Yield) Due(now time.Time) bool {
	if !y.last.IsZero() && now.Sub(y.last) < YieldInterval {
		return false
	}
	y.last = now
	return true
}
