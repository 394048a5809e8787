// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build darwin || dragonfly || freebsd || netbsd || openbsd || (linux && !(amd64 || arm64 || riscv64 || loong64 || ppc64 || ppc64le || mips64 || mips64le))

package gnet

import (
	"net"

	"golang.org/x/sys/unix"

	"github.com/panjf2000/gnet/v2/pkg/socket"
)

// acceptStream accepts the next connection on listener fd through
// unix.Accept4 (see accept_linux.go for the allocation-free one).
func (el *eventloop) acceptStream(fd int) (int, unix.Sockaddr, net.Addr, error) {
	nfd, sa, err := socket.Accept(fd)
	if err != nil {
		return nfd, nil, nil, err
	}
	return nfd, sa, socket.SockaddrToTCPOrUnixAddr(sa), nil
}
