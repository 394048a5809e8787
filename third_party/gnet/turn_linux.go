// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build linux && !poll_opt

package gnet

// setTurnHooks has el's poller tell the handler, if it is a TurnHandler,
// when el starts and ends a turn (blastbeat patch 12).
func (el *eventloop) setTurnHooks() {
	h, ok := el.eventHandler.(TurnHandler)
	if !ok {
		return
	}
	el.poller.SetTurnHooks(func() { h.OnTurnStart(el) }, func() { h.OnTurnEnd(el) })
}
