// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build linux

package gnet

import "github.com/panjf2000/gnet/v2/pkg/netpoll"

// addReadExclusive polls a listening socket that other loops poll too,
// with EPOLLEXCLUSIVE (blastbeat patch 11).
func addReadExclusive(p *netpoll.Poller, pa *netpoll.PollAttachment) error {
	return p.AddReadExclusive(pa)
}
