// Copyright (c) 2019 The Gnet Authors. All rights reserved.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package gnet

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/panjf2000/gnet/v2/pkg/socket"
)

// blastbeat patch: listening on an inherited socket. An address
// "fd://N" names a stream socket that is already bound and listening,
// descriptor N, e.g. one passed by systemd socket activation. The
// engine takes it over: it is made non-blocking and close-on-exec, and
// closed when the engine stops. Only the socket options that make sense
// after bind are applied, to TCP sockets (TCP_NODELAY, buffer sizes:
// initListener leaves out SO_REUSEADDR, SO_REUSEPORT and
// SO_BINDTODEVICE, the business of whoever bound it).

// openInherited opens ln, whose address is the number of an inherited
// listening socket.
func (ln *listener) openInherited() (err error) {
	fd, err := strconv.Atoi(ln.address)
	if err != nil || fd < 0 {
		return fmt.Errorf("fd://%s: not a file descriptor", ln.address)
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("fd://%d: %s: %w", fd, what, err)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fail("not a socket", err)
	}
	if typ != unix.SOCK_STREAM {
		return fmt.Errorf("fd://%d: not a stream socket", fd)
	}
	if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on == 0 {
		return fmt.Errorf("fd://%d: not a listening socket", fd)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	addr := socket.SockaddrToTCPOrUnixAddr(sa)
	network := "tcp"
	if _, ok := addr.(*net.UnixAddr); ok {
		network = "unix"
	} else if addr == nil {
		return fmt.Errorf("fd://%d: not a TCP or unix socket", fd)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fail("set non-blocking", err)
	}
	unix.CloseOnExec(fd)
	if network == "tcp" {
		for _, opt := range ln.sockOptInts {
			if err := opt.SetSockOpt(fd, opt.Opt); err != nil {
				return fail("setsockopt", err)
			}
		}
	}
	ln.fd, ln.addr, ln.network, ln.inherited = fd, addr, network, true
	return nil
}

// share returns another listener on the same inherited socket (a
// duplicate descriptor), for the event loops that each poll their own
// listeners (WithReusePort).
func (ln *listener) share() (*listener, error) {
	fd, err := unix.Dup(ln.fd)
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	unix.CloseOnExec(fd)
	return &listener{fd: fd, addr: ln.addr, address: ln.address, network: ln.network, inherited: true}, nil
}
