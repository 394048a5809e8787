// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build linux && !poll_opt

package gnet

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// bbTurns echoes, and records for each loop whether its callbacks come
// inside a turn (OnTurnStart … OnTurnEnd) of that loop.
type bbTurns struct {
	BuiltinEventEngine
	booted   chan Engine
	executed chan bool // a task's view of its loop's turn

	mu     sync.Mutex
	inTurn map[EventLoop]bool
	count  map[string]int
}

func (e *bbTurns) OnBoot(eng Engine) Action { e.booted <- eng; return None }

// note counts what, with " outside" appended when el is not in a turn;
// it returns whether el is in a turn.
func (e *bbTurns) note(el EventLoop, what string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.inTurn[el]
	if !in {
		what += " outside"
	}
	e.count[what]++
	return in
}

func (e *bbTurns) OnTurnStart(el EventLoop) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inTurn[el] {
		e.count["nested start"]++
	}
	e.count["start"]++
	e.inTurn[el] = true
}

func (e *bbTurns) OnTurnEnd(el EventLoop) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.inTurn[el] {
		e.count["end outside"]++
	}
	e.count["end"]++
	e.inTurn[el] = false
}

func (e *bbTurns) OnOpen(c Conn) ([]byte, Action) {
	e.note(c.EventLoop(), "open")
	return nil, None
}

func (e *bbTurns) OnClose(c Conn, _ error) Action {
	e.note(c.EventLoop(), "close")
	return None
}

func (e *bbTurns) OnTraffic(c Conn) Action {
	e.note(c.EventLoop(), "traffic")
	b, _ := c.Next(-1)
	_, _ = c.Write(b)
	el := c.EventLoop()
	_ = el.Execute(context.Background(), RunnableFunc(func(context.Context) error {
		e.executed <- e.note(el, "task")
		return nil
	}))
	return None
}

func (e *bbTurns) counts() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[string]int, len(e.count))
	for k, v := range e.count {
		m[k] = v
	}
	return m
}

// TestBlastBeatTurnHooks (patch 12): a TurnHandler hears of each turn of
// a loop. OnOpen, OnTraffic, a client's close and the tasks they queue run
// between an OnTurnStart and its OnTurnEnd; turns do not nest; and at
// Stop the last turn ends before the loop closes a connection still open
// (its OnClose runs outside a turn), so every turn that started ended.
// With one loop accepting for itself, and two behind the main reactor.
func TestBlastBeatTurnHooks(t *testing.T) {
	for _, tc := range []struct {
		loops      int
		loopAccept bool
	}{{1, true}, {2, false}} {
		t.Run(fmt.Sprintf("loops=%d loopAccept=%v", tc.loops, tc.loopAccept), func(t *testing.T) {
			testTurnHooks(t, tc.loops, tc.loopAccept)
		})
	}
}

func testTurnHooks(t *testing.T, loops int, loopAccept bool) {
	h := &bbTurns{booted: make(chan Engine, 1), executed: make(chan bool, 64),
		inTurn: map[EventLoop]bool{}, count: map[string]int{}}
	done := make(chan error, 1)
	go func() {
		done <- Run(h, "tcp://127.0.0.1:0", WithMulticore(true), WithNumEventLoop(loops), WithLoopAccept(loopAccept))
	}()
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
	echo := func(c net.Conn) {
		t.Helper()
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
	}
	const closed = 20
	for i := 0; i < closed; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		echo(c)
		c.Close() // the loop's OnClose comes in a later turn
	}
	open, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	echo(open) // open and served: the loop holds it at Stop

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	m := h.counts()
	if m["start"] == 0 || m["start"] != m["end"] || m["end outside"] != 0 || m["nested start"] != 0 {
		t.Fatalf("turns: %v", m)
	}
	for _, what := range []string{"open outside", "traffic outside", "task outside"} {
		if m[what] != 0 {
			t.Fatalf("%s: %d (%v)", what, m[what], m)
		}
	}
	// The client-closed ones were closed in turns, the open one after the
	// stopping loop's last turn ended.
	if m["close"] != closed || m["close outside"] != 1 {
		t.Fatalf("closes: %d in a turn, %d outside; want %d, 1 (%v)", m["close"], m["close outside"], closed, m)
	}
}
