// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build linux && !poll_opt

package gnet

import (
	"bufio"
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// bbTurns echoes, and checks that every callback on a loop comes inside a
// turn (OnTurnStart … OnTurnEnd) of that loop.
type bbTurns struct {
	BuiltinEventEngine
	booted    chan Engine
	inTurn    bool // touched on the one loop only
	starts    atomic.Int64
	ends      atomic.Int64
	outside   atomic.Int64 // callbacks outside a turn
	executed  chan bool    // a task's view of inTurn
	nested    atomic.Int64 // OnTurnStart inside a turn
	unmatched atomic.Int64 // OnTurnEnd outside a turn
}

func (e *bbTurns) OnBoot(eng Engine) Action { e.booted <- eng; return None }

func (e *bbTurns) OnTurnStart(EventLoop) {
	if e.inTurn {
		e.nested.Add(1)
	}
	e.inTurn = true
	e.starts.Add(1)
}

func (e *bbTurns) OnTurnEnd(EventLoop) {
	if !e.inTurn {
		e.unmatched.Add(1)
	}
	e.inTurn = false
	e.ends.Add(1)
}

func (e *bbTurns) OnOpen(c Conn) ([]byte, Action) {
	if !e.inTurn {
		e.outside.Add(1)
	}
	return nil, None
}

func (e *bbTurns) OnTraffic(c Conn) Action {
	if !e.inTurn {
		e.outside.Add(1)
	}
	b, _ := c.Next(-1)
	_, _ = c.Write(b)
	_ = c.EventLoop().Execute(context.Background(), RunnableFunc(func(context.Context) error {
		e.executed <- e.inTurn
		return nil
	}))
	return None
}

// TestBlastBeatTurnHooks (patch 12): a TurnHandler hears of each turn of
// a loop: OnOpen, OnTraffic and the tasks they queue run between an
// OnTurnStart and its OnTurnEnd, turns do not nest, and every turn ends.
func TestBlastBeatTurnHooks(t *testing.T) {
	h := &bbTurns{booted: make(chan Engine, 1), executed: make(chan bool, 64)}
	done := make(chan error, 1)
	go func() {
		done <- Run(h, "tcp://127.0.0.1:0", WithMulticore(true), WithNumEventLoop(1), WithLoopAccept(true))
	}()
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
	<-eng.eng.started
	var addr net.Addr
	for _, ln := range eng.eng.listeners {
		addr = bbBoundAddr(t, ln.fd)
	}
	for i := 0; i < 20; i++ {
		c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != "ping\n" {
			t.Fatalf("echo %q, %v", got, err)
		}
		select {
		case in := <-h.executed:
			if !in {
				t.Fatal("a task queued by OnTraffic ran outside a turn")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the task did not run")
		}
		c.Close()
	}
	// The loop has nothing left to do once its last turn ended: wait for
	// the ends to catch up with the starts (the turn is still ending).
	deadline := time.Now().Add(5 * time.Second)
	for h.starts.Load() != h.ends.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s, e := h.starts.Load(), h.ends.Load(); s == 0 || s != e {
		t.Fatalf("%d turns started, %d ended", s, e)
	}
	if n := h.outside.Load(); n != 0 {
		t.Fatalf("%d callbacks outside a turn", n)
	}
	if n, u := h.nested.Load(), h.unmatched.Load(); n != 0 || u != 0 {
		t.Fatalf("%d nested turn starts, %d ends without a start", n, u)
	}
}
