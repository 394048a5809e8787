// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package gnet

// isNoNet reports Linux's ENONET, which these systems lack (blastbeat
// patch 10).
func isNoNet(error) bool { return false }
