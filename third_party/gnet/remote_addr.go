// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

package gnet

import (
	"net"
	"net/netip"
)

// blastbeat patch 7: a TCP peer's address kept as a small value instead
// of a *net.TCPAddr whose IP slice points into the accept(2) sockaddr
// (80 bytes and two objects kept alive by every idle connection). An
// IPv4 peer, mapped or not, costs 8 bytes; an IPv6 one 32.
// conn.RemoteAddr still answers a *net.TCPAddr, made for the call.

// compactAddr is a remote address kept as a value.
type compactAddr interface {
	net.Addr
	addrPort() netip.AddrPort
}

// tcp4Remote is an IPv4 peer: the address in bits 16-47, the port in
// bits 0-15, and bit 48 set when the socket is IPv6 and the address
// came IPv4-mapped (::ffff:a.b.c.d).
type tcp4Remote uint64

const tcp4Mapped = 1 << 48

func newTCP4Remote(ip [4]byte, port uint16, mapped bool) tcp4Remote {
	a := tcp4Remote(ip[0])<<40 | tcp4Remote(ip[1])<<32 | tcp4Remote(ip[2])<<24 | tcp4Remote(ip[3])<<16 | tcp4Remote(port)
	if mapped {
		a |= tcp4Mapped
	}
	return a
}

func (a tcp4Remote) addrPort() netip.AddrPort {
	ip := [4]byte{byte(a >> 40), byte(a >> 32), byte(a >> 24), byte(a >> 16)}
	addr := netip.AddrFrom4(ip)
	if a&tcp4Mapped != 0 {
		addr = netip.AddrFrom16(addr.As16())
	}
	return netip.AddrPortFrom(addr, uint16(a))
}

func (a tcp4Remote) Network() string { return "tcp" }

// String is net.TCPAddr's form, which prints a mapped address as IPv4.
func (a tcp4Remote) String() string {
	return netip.AddrPortFrom(a.addrPort().Addr().Unmap(), uint16(a)).String()
}

// tcp6Remote is an IPv6 peer (with its zone, when it has one).
type tcp6Remote struct{ ap netip.AddrPort }

func (a *tcp6Remote) addrPort() netip.AddrPort { return a.ap }
func (a *tcp6Remote) Network() string          { return "tcp" }
func (a *tcp6Remote) String() string           { return a.ap.String() }

// addrPortOf returns a's IP address and port; the zero AddrPort when a
// is not an IP address.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case compactAddr:
		return a.addrPort()
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}
