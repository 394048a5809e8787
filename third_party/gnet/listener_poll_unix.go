// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package gnet

// pollListener has el poll ln for new connections (blastbeat patch 11).
// The main reactor polls edge-triggered and accepts until EAGAIN. A loop
// that accepts for itself polls level-triggered, one connection per
// event; when other loops poll the same socket (a duplicate: LoopAccept,
// or an inherited fd://N socket), exclusively where the poller can, so
// that a connection wakes one waiting loop, not all of them.
func (el *eventloop) pollListener(ln *listener) error {
	if el == el.engine.ingress {
		return el.poller.AddRead(ln.packPollAttachment(el.accept0), true)
	}
	pa := ln.packPollAttachment(el.accept)
	if ln.inherited || !el.engine.opts.ReusePort {
		return addReadExclusive(el.poller, pa)
	}
	return el.poller.AddRead(pa, false)
}
