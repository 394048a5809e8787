// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build linux || freebsd || dragonfly || netbsd || openbsd || darwin

package gnet

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
	"unsafe"
)

// bbTarget reads into a buffer of its own while its inbound buffer is
// empty and takes two bytes per OnTraffic. From its second OnTraffic on
// it scribbles over the target first: what the first left unread must
// have been copied out by then.
type bbTarget struct {
	BuiltinEventEngine
	booted  chan Engine
	target  [5]byte
	got     chan string // what each OnTraffic took, and where it lay
	traffic int
	asked   int // ReadTarget calls
}

func (e *bbTarget) OnBoot(eng Engine) Action { e.booted <- eng; return None }

func (e *bbTarget) ReadTarget(Conn) []byte {
	e.asked++
	return e.target[:]
}

func (e *bbTarget) OnTraffic(c Conn) Action {
	if e.traffic++; e.traffic > 1 {
		for i := range e.target {
			e.target[i] = '#'
		}
	}
	b, _ := c.Peek(-1)
	where := "loop"
	if len(b) > 0 && unsafe.SliceData(b) == &e.target[0] {
		where = "target"
	}
	if len(b) > 2 {
		b = b[:2]
	}
	e.got <- where + ":" + string(b)
	_, _ = c.Discard(len(b))
	return None
}

// TestBlastBeatReadTarget (patch 13): a ReadTargeter's buffer takes the
// read when the connection has no inbound bytes waiting; what OnTraffic
// leaves unread is copied out of it into the inbound buffer, and reads
// go to the loop's buffer while those wait.
func TestBlastBeatReadTarget(t *testing.T) {
	h := &bbTarget{booted: make(chan Engine, 1), got: make(chan string, 64)}
	done := make(chan error, 1)
	go func() { done <- Run(h, "tcp://127.0.0.1:0") }()
	var eng Engine
	select {
	case eng = <-h.booted:
	case err := <-done:
		t.Fatalf("engine did not start: %v", err)
	}
	<-eng.eng.started
	var addr string
	for _, ln := range eng.eng.listeners {
		addr = bbBoundAddr(t, ln.fd).String()
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	next := func() string {
		t.Helper()
		select {
		case s := <-h.got:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("no OnTraffic")
			return ""
		}
	}
	if _, err := io.WriteString(c, "abcde"); err != nil {
		t.Fatal(err)
	}
	// One read of 5 bytes into the target; OnTraffic takes "ab" and
	// leaves "cde", copied to the inbound buffer. The next read goes to
	// the loop's buffer (bytes wait inbound), and OnTraffic, which first
	// scribbles over the target, still finds "cd" first.
	if got := next(); got != "target:ab" {
		t.Fatalf("first OnTraffic took %q, want target:ab", got)
	}
	if _, err := io.WriteString(c, "fg"); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "loop:cd" {
		t.Fatalf("second OnTraffic took %q, want loop:cd (inbound bytes first)", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h.asked != 1 {
		t.Fatalf("ReadTarget asked %d times, want 1 (inbound bytes waited at the later reads)", h.asked)
	}
}
