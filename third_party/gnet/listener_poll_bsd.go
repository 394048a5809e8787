// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package gnet

import "github.com/panjf2000/gnet/v2/pkg/netpoll"

// addReadExclusive polls a listening socket that other loops poll too
// (blastbeat patch 11); kqueue has no exclusive wake-up, so every loop
// polling it is woken and all but one find EAGAIN.
func addReadExclusive(p *netpoll.Poller, pa *netpoll.PollAttachment) error {
	return p.AddRead(pa, false)
}
