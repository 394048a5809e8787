// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

package gnet

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// bbEcho echoes every read; with closeAfter it closes the connection
// after echoing, and every third connection is Dup'ed (the duplicate
// closed at once) so both close paths of patch 8 run.
type bbEcho struct {
	BuiltinEventEngine
	booted chan Engine
	opened int
}

func (e *bbEcho) OnBoot(eng Engine) Action { e.booted <- eng; return None }

func (e *bbEcho) OnOpen(c Conn) ([]byte, Action) {
	e.opened++
	if e.opened%3 == 0 {
		if fd, err := c.Dup(); err == nil {
			_ = unix.Close(fd)
		}
	}
	return nil, None
}

func (e *bbEcho) OnTraffic(c Conn) Action {
	b, _ := c.Next(-1)
	_, _ = c.Write(b)
	if len(b) > 0 && b[0] == 'C' {
		return Close
	}
	return None
}

// TestBlastBeatCloseWithoutDelete (patch 8): connections closed by the
// server without an explicit poller delete, one after another so that
// their descriptors are reused at once, each get their own events: an
// epoll item left behind would deliver a closed socket's events to the
// connection that took its descriptor number, and EPOLL_CTL_ADD of the
// reused number would fail. Closes by the client and by the server
// alternate.
func TestBlastBeatCloseWithoutDelete(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h := &bbEcho{booted: make(chan Engine, 1)}
	done := make(chan error, 1)
	go func() { done <- Run(h, "tcp://"+addr, WithMulticore(false)) }()
	var eng Engine
	select {
	case eng = <-h.booted:
	case err := <-done:
		t.Fatalf("engine did not start: %v", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Stop(ctx)
		<-done
	}()
	for i := 0; i < 300; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		kind := "K" // the client closes
		if i%2 == 0 {
			kind = "C" // the server closes after the echo
		}
		msg := fmt.Sprintf("%s%d\n", kind, i)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || got != msg {
			c.Close()
			t.Fatalf("connection %d: echo %q, %v; want %q", i, got, err, msg)
		}
		if kind == "C" {
			if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Fatalf("connection %d: read %d, %v after the server closed", i, n, err)
			}
		}
		c.Close()
	}
}
