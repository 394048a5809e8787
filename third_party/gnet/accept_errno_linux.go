// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build linux

package gnet

import "golang.org/x/sys/unix"

// isNoNet reports ENONET, which accept(2) on Linux may pass on from the
// connection (blastbeat patch 10).
func isNoNet(err error) bool { return err == unix.ENONET }
