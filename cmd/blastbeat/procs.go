package main

import "runtime"

// procsFor is the GOMAXPROCS for a server whose pollers goroutines wait
// for work blocked in epoll_wait (its event loops, gnet's main reactor if
// it runs, and the bridge: Server.Pollers) when Go would give it cpus
// (GOMAXPROCS's default: the CPUs, or a container's CPU limit): at least
// one more than the pollers.
//
// A goroutine blocked in a system call keeps its P. When no P is idle,
// Go's sysmon takes such Ps back (runtime/proc.go retake, after 20 µs)
// and keeps waking every 20 µs to do so, and a loop coming back from
// epoll_wait finds its P gone (the exitsyscall slow path: more thread
// switches). With one P more than the goroutines that block, an idle P
// stays, and sysmon leaves the blocked ones alone (for up to 10 ms). On 2
// CPUs (one loop) this raised the keep-alive GET rate by about 7%, one
// connection's by about 8%, and halved the proxy's samples in sysmon's
// sleep (perf: 7.4% to 3.7%). On 16 CPUs (15 loops, the reactor and the
// bridge) it is 18.
func procsFor(cpus, pollers int) int { return max(cpus, pollers+1) }

// setProcs applies procsFor for pollers blocking goroutines unless the GOMAXPROCS
// environment variable chose already, and returns the value in force
// and a function that restores the previous one.
func setProcs(getenv func(string) string, pollers int) (int, func()) {
	prev := runtime.GOMAXPROCS(0)
	if getenv("GOMAXPROCS") != "" {
		return prev, func() {}
	}
	n := procsFor(prev, pollers)
	if n == prev {
		return prev, func() {}
	}
	runtime.GOMAXPROCS(n)
	return n, func() { runtime.GOMAXPROCS(prev) }
}
