// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build linux && !poll_opt

package gnet

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"fmt"
	"strings"

	errorx "github.com/panjf2000/gnet/v2/pkg/errors"
	"github.com/panjf2000/gnet/v2/pkg/netpoll"
)

func TestBlastBeatClassifyAccept(t *testing.T) {
	cases := []struct {
		err  error
		want acceptOutcome
	}{
		{unix.EAGAIN, acceptDrained},
		{unix.EINTR, acceptSkip},
		{unix.ECONNABORTED, acceptSkip},
		{unix.ECONNRESET, acceptSkip},
		{unix.EPROTO, acceptSkip},
		{unix.ENONET, acceptSkip},
		{unix.EPERM, acceptExhausted}, // a security module refuses accept(2): it recurs
		{unix.EACCES, acceptExhausted},
		{unix.ENETUNREACH, acceptSkip},
		{unix.EMFILE, acceptExhausted}, // the process is out of descriptors
		{unix.ENFILE, acceptExhausted}, // the system is
		{unix.ENOBUFS, acceptExhausted},
		{unix.ENOMEM, acceptExhausted},
		{unix.EBADF, acceptFatal},
		{unix.EINVAL, acceptFatal}, // not listening
		{unix.ENOTSOCK, acceptFatal},
	}
	for _, c := range cases {
		if got := classifyAccept(c.err); got != c.want {
			t.Errorf("classifyAccept(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// bbPausingLoop is a loop polling one listening socket, as WithLoopAccept
// makes it, with its poller running (tasks, such as a resume, run).
func bbPausingLoop(t *testing.T) (*eventloop, *listener, *bbWarnings) {
	t.Helper()
	warned := &bbWarnings{c: make(chan string, 16)}
	opts := &Options{Logger: warned}
	ln, err := initListener("tcp", "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := netpoll.OpenPoller()
	if err != nil {
		t.Fatal(err)
	}
	el := &eventloop{listeners: map[int]*listener{ln.fd: ln}, poller: p, engine: &engine{opts: opts}}
	el.acceptAddr = unix.RawSockaddrAny{}
	if err := el.pollListener(ln); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Polling(func(int, netpoll.IOEvent, netpoll.IOFlags) error { return nil })
	}()
	t.Cleanup(func() {
		_ = p.Trigger(0, func(any) error { return errorx.ErrEngineShutdown }, nil)
		<-done
		_ = p.Close()
		ln.close()
	})
	return el, ln, warned
}

// bbWarnings is a logger that hands its warnings to a channel.
type bbWarnings struct{ c chan string }

func (w *bbWarnings) Debugf(string, ...any) {}
func (w *bbWarnings) Infof(string, ...any)  {}
func (w *bbWarnings) Errorf(format string, args ...any) {
	w.Warnf(format, args...)
}
func (w *bbWarnings) Fatalf(format string, args ...any) { w.Warnf(format, args...) }
func (w *bbWarnings) Warnf(format string, args ...any) {
	select {
	case w.c <- fmt.Sprintf(format, args...):
	default:
	}
}

// wait returns the first warning that contains want, failing after 5 s.
func (w *bbWarnings) wait(t *testing.T, want string) string {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s := <-w.c:
			if strings.Contains(s, want) {
				return s
			}
		case <-timeout:
			t.Fatalf("no warning with %q within 5 s", want)
		}
	}
}

// bbWaitPolled waits until the listener is polled (exclusively) again.
func bbWaitPolled(t *testing.T, fd int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := bbEpollEvents(t, fd); len(m) == 1 && m[0]&unix.EPOLLEXCLUSIVE != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("listener %d not polled again within 5 s (%x)", fd, bbEpollEvents(t, fd))
		}
		time.Sleep(5 * time.Millisecond) // the resume comes after AcceptPause
	}
}

// TestBlastBeatAcceptPause (patch 10): a listener paused is not polled;
// after AcceptPause it is again. Errors of single connections are skipped
// until maxAcceptSkips come in a row, which pause it as a lasting error
// does. A resume that cannot add the listener back keeps it paused and
// tries again.
func TestBlastBeatAcceptPause(t *testing.T) {
	el, ln, warned := bbPausingLoop(t)
	fd := ln.fd
	task := func(fn func()) {
		t.Helper()
		if err := el.runTask(func() error { fn(); return nil }); err != nil {
			t.Fatal(err)
		}
	}

	// Skips: only the maxAcceptSkips-th in a row pauses.
	var paused bool
	for i := 1; i < maxAcceptSkips; i++ {
		task(func() { paused = el.acceptSkipped(fd, unix.ECONNABORTED) })
		if paused {
			t.Fatalf("paused after %d skips", i)
		}
	}
	task(func() { paused = el.acceptSkipped(fd, unix.ECONNABORTED) })
	if !paused {
		t.Fatalf("not paused after %d skips in a row", maxAcceptSkips)
	}
	warned.wait(t, "accepting again in")
	if m := bbEpollEvents(t, fd); len(m) != 0 {
		t.Fatalf("a paused listener is polled (%x)", m)
	}
	bbWaitPolled(t, fd)
	task(func() { paused = ln.acceptPaused })
	if paused {
		t.Fatal("polled again but still marked paused")
	}

	// A resume that fails (here: the descriptor is already in the poller,
	// as if adding it failed) stays paused and is tried again.
	task(func() { el.pauseAccept(fd, unix.EMFILE) })
	if err := el.poller.AddRead(&netpoll.PollAttachment{FD: fd}, false); err != nil {
		t.Fatal(err)
	}
	warned.wait(t, "cannot resume accepting") // warnings: one a second at most
	task(func() { paused = ln.acceptPaused })
	if !paused {
		t.Fatal("a failed resume cleared the pause")
	}
	if err := el.poller.Delete(fd); err != nil {
		t.Fatal(err)
	}
	bbWaitPolled(t, fd) // a later resume succeeds
}
