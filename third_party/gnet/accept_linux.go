// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64 || ppc64le || mips64 || mips64le)

package gnet

import (
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/panjf2000/gnet/v2/pkg/socket"
)

// acceptStream accepts the next connection on listener fd (non-blocking,
// close-on-exec), with the peer's address read into the loop's own
// sockaddr buffer: nothing is allocated for an IPv4 peer but the 8-byte
// value its address is kept in (blastbeat patch 7; unix.Accept4 allocates
// its RawSockaddrAny and a Sockaddr on every accept). The Sockaddr result
// is nil: stream connections do not keep it (patch 6). A peer of another
// family has a nil address, as SockaddrToTCPOrUnixAddr gave it.
func (el *eventloop) acceptStream(fd int) (int, unix.Sockaddr, net.Addr, error) {
	rsa := &el.acceptAddr
	n := uint32(unsafe.Sizeof(*rsa))
	nfd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(rsa)),
		uintptr(unsafe.Pointer(&n)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, nil, nil, e
	}
	switch rsa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return int(nfd), nil, newTCP4Remote(p.Addr, port(p.Port), false), nil
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		ip := netip.AddrFrom16(p.Addr)
		if ip.Is4In6() && p.Scope_id == 0 {
			return int(nfd), nil, newTCP4Remote(ip.Unmap().As4(), port(p.Port), true), nil
		}
		if p.Scope_id != 0 {
			ip = ip.WithZone(socket.IP6ZoneToString(p.Scope_id))
		}
		return int(nfd), nil, &tcp6Remote{netip.AddrPortFrom(ip, port(p.Port))}, nil
	case unix.AF_UNIX:
		p := (*unix.RawSockaddrUnix)(unsafe.Pointer(rsa))
		k := int(n) - 2 // the path's bytes, as the kernel wrote them
		if k < 0 {
			k = 0
		} else if k > len(p.Path) {
			k = len(p.Path)
		}
		path := p.Path[:k]
		if len(path) > 0 && path[0] == 0 {
			path[0] = '@' // abstract, as x/sys and net name it
		}
		k = 0
		for k < len(path) && path[k] != 0 {
			k++
		}
		name := ""
		if k > 0 {
			name = string(unsafe.Slice((*byte)(unsafe.Pointer(&path[0])), k))
		}
		return int(nfd), nil, &net.UnixAddr{Name: name, Net: "unix"}, nil
	}
	return int(nfd), nil, nil, nil
}

// port converts a sockaddr's network-order port.
func port(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
