// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build linux

package gnet

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestBlastBeatClassifyAccept(t *testing.T) {
	cases := []struct {
		err  error
		want acceptOutcome
	}{
		{unix.EAGAIN, acceptDrained},
		{unix.EINTR, acceptSkip},
		{unix.ECONNABORTED, acceptSkip},
		{unix.ECONNRESET, acceptSkip},
		{unix.EPROTO, acceptSkip},
		{unix.EPERM, acceptSkip},
		{unix.ENETUNREACH, acceptSkip},
		{unix.EMFILE, acceptExhausted}, // the process is out of descriptors
		{unix.ENFILE, acceptExhausted}, // the system is
		{unix.ENOBUFS, acceptExhausted},
		{unix.ENOMEM, acceptExhausted},
		{unix.EBADF, acceptFatal},
		{unix.EINVAL, acceptFatal}, // not listening
		{unix.ENOTSOCK, acceptFatal},
	}
	for _, c := range cases {
		if got := classifyAccept(c.err); got != c.want {
			t.Errorf("classifyAccept(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
