// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build darwin || dragonfly || freebsd || netbsd || openbsd || (linux && poll_opt)

package gnet

// setTurnHooks does nothing here: only Linux's default poller reports
// turns (blastbeat patch 12).
func (el *eventloop) setTurnHooks() {}
