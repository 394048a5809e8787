// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package gnet

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/panjf2000/gnet/v2/pkg/queue"
)

// blastbeat patch 10: running out of descriptors does not stop the engine.
//
// gnet v2.9.7 took every accept(2) error other than EAGAIN, EINTR,
// ECONNRESET and ECONNABORTED for a broken listener and shut the engine
// down: a process at its open-file limit (EMFILE), which any client can
// bring about by opening connections, stopped serving everyone for good.

// AcceptPause is how long a loop stops polling a listener after accept(2)
// failed for want of descriptors or memory. Connections wait in the
// listen backlog meanwhile, and are accepted when descriptors are free.
const AcceptPause = 100 * time.Millisecond

// acceptWarnEvery bounds the warnings of a loop that keeps pausing.
const acceptWarnEvery = time.Second

// maxAcceptSkips is how many accept(2) errors of single connections in a
// row a loop skips before it takes the error for a lasting one and pauses
// as for EMFILE: an error that recurs would otherwise keep the main
// reactor accepting in a loop (never back to its tasks, so it could not
// even stop) and a loop polling level-triggered spinning.
const maxAcceptSkips = 64

// acceptOutcome classifies an accept(2) error.
type acceptOutcome int

const (
	acceptFatal     acceptOutcome = iota // the listener is broken
	acceptDrained                        // EAGAIN: nothing more waits
	acceptSkip                           // that one connection failed: go on
	acceptExhausted                      // out of descriptors or memory, or refused: pause
)

func classifyAccept(err error) acceptOutcome {
	if isNoNet(err) {
		return acceptSkip
	}
	switch err {
	case unix.EAGAIN:
		return acceptDrained
	case unix.EINTR, unix.ECONNRESET, unix.ECONNABORTED, unix.EPROTO,
		unix.ENETDOWN, unix.ENOPROTOOPT, unix.EHOSTDOWN,
		unix.EHOSTUNREACH, unix.ENETUNREACH, unix.ETIMEDOUT:
		// The connection failed between the handshake and accept(2):
		// accept(2) on Linux passes these on, and the next connection is
		// unaffected.
		return acceptSkip
	case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
		return acceptExhausted
	case unix.EPERM, unix.EACCES:
		// A security module (or a seccomp filter) refuses accept(2)
		// before it takes the connection off the queue: the same error
		// comes back until its policy changes.
		return acceptExhausted
	}
	return acceptFatal
}

// acceptSkipped counts an error of a single connection on the listener
// fd; past maxAcceptSkips in a row it pauses the listener and reports true.
func (el *eventloop) acceptSkipped(fd int, err error) bool {
	ln := el.listeners[fd]
	if ln == nil {
		return false
	}
	if ln.acceptSkips++; ln.acceptSkips < maxAcceptSkips {
		return false
	}
	ln.acceptSkips = 0
	el.pauseAccept(fd, err)
	return true
}

// pauseAccept stops polling the listener fd for AcceptPause, then polls
// it again (a task on el, after a timer). A listener closed meanwhile
// (CloseListener, or the engine stopping) is left alone.
func (el *eventloop) pauseAccept(fd int, err error) {
	ln := el.listeners[fd]
	if ln == nil || ln.acceptPaused || ln.pollAttachment == nil {
		return
	}
	if perr := el.poller.Delete(fd); perr != nil {
		el.getLogger().Errorf("cannot pause accepting on %s://%s: %v", ln.network, ln.address, perr)
		return
	}
	ln.acceptPaused = true
	el.warnAccept("accept on %s://%s: %v; new connections wait in the listen backlog, accepting again in %v",
		ln.network, ln.address, err, AcceptPause)
	el.resumeAfter(ln)
}

// warnAccept logs a warning, at most once per acceptWarnEvery.
func (el *eventloop) warnAccept(format string, args ...any) {
	if now := time.Now(); now.Sub(el.acceptWarned) >= acceptWarnEvery {
		el.acceptWarned = now
		el.getLogger().Warnf(format, args...)
	}
}

// resumeAfter has el run resumeAccept(ln) after AcceptPause. A task that
// comes after the loop stopped is not run (its poller takes no more).
func (el *eventloop) resumeAfter(ln *listener) {
	time.AfterFunc(AcceptPause, func() {
		_ = el.poller.Trigger(queue.HighPriority, func(any) error {
			el.resumeAccept(ln)
			return nil
		}, nil)
	})
}

// resumeAccept polls ln again, if it is still el's. Adding it back makes
// the poller report a backlog that filled meanwhile, edge-triggered or
// not. If it cannot be added (the poller short of memory, or of watches),
// it stays paused and is tried again after AcceptPause.
func (el *eventloop) resumeAccept(ln *listener) {
	if el.listeners[ln.fd] != ln || !ln.acceptPaused {
		return
	}
	if err := el.pollListener(ln); err != nil {
		el.warnAccept("cannot resume accepting on %s://%s: %v; trying again in %v", ln.network, ln.address, err, AcceptPause)
		el.resumeAfter(ln)
		return
	}
	ln.acceptPaused = false
}
