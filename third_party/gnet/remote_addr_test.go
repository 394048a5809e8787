// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

package gnet

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBlastBeatCompactRemote checks the compact peer addresses (patch 7)
// against net's own forms.
func TestBlastBeatCompactRemote(t *testing.T) {
	for _, s := range []string{"127.0.0.1:80", "1.2.3.4:65535", "0.0.0.0:0", "[::ffff:10.0.0.1]:443", "[2001:db8::1]:8080", "[fe80::1%lo]:1"} {
		want := netip.MustParseAddrPort(s)
		var a compactAddr
		if want.Addr().Is4() || want.Addr().Is4In6() {
			a = newTCP4Remote(want.Addr().Unmap().As4(), want.Port(), want.Addr().Is4In6())
		} else {
			a = &tcp6Remote{want}
		}
		if got := a.addrPort(); got != want {
			t.Errorf("%s: addrPort %v", s, got)
		}
		if got, w := a.String(), net.TCPAddrFromAddrPort(want).String(); got != w {
			t.Errorf("%s: String %q, net says %q", s, got, w)
		}
		if a.Network() != "tcp" {
			t.Errorf("%s: Network %q", s, a.Network())
		}
		if got := addrPortOf(a); got != want {
			t.Errorf("%s: addrPortOf %v", s, got)
		}
	}
	if got := addrPortOf(&net.UnixAddr{Name: "/x", Net: "unix"}); got.IsValid() {
		t.Errorf("a unix address has an AddrPort: %v", got)
	}
	tcp := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 9}
	if got := addrPortOf(tcp); got != tcp.AddrPort() {
		t.Errorf("addrPortOf(*TCPAddr) = %v", got)
	}
}

// TestBlastBeatAcceptStream accepts real connections of each family with
// the loop's sockaddr buffer and compares the peer with what the client
// socket says of itself.
func TestBlastBeatAcceptStream(t *testing.T) {
	el := &eventloop{}
	accept := func(t *testing.T, l net.Listener, dial func() (net.Conn, error)) (net.Conn, net.Addr) {
		t.Helper()
		f, err := l.(interface{ File() (*os.File, error) }).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fd := int(f.Fd())
		if err := unix.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := el.acceptStream(fd); err != unix.EAGAIN {
			t.Fatalf("nothing pending: err %v, want EAGAIN", err)
		}
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		var raddr net.Addr
		for {
			nfd, sa, ra, err := el.acceptStream(fd)
			if err == unix.EAGAIN {
				continue // the kernel has not queued it yet
			}
			if err != nil {
				t.Fatal(err)
			}
			if sa != nil {
				t.Errorf("a Sockaddr is returned (%v): stream connections keep none", sa)
			}
			flags, _ := unix.FcntlInt(uintptr(nfd), unix.F_GETFL, 0)
			fdFlags, _ := unix.FcntlInt(uintptr(nfd), unix.F_GETFD, 0)
			if flags&unix.O_NONBLOCK == 0 || fdFlags&unix.FD_CLOEXEC == 0 {
				t.Errorf("accepted fd is not non-blocking and close-on-exec")
			}
			unix.Close(nfd)
			raddr = ra
			break
		}
		return c, raddr
	}
	tcpCase := func(name, network, laddr, dialAddr string, wantMapped bool) {
		t.Run(name, func(t *testing.T) {
			l, err := net.Listen(network, laddr)
			if err != nil {
				t.Skipf("no %s here: %v", laddr, err)
			}
			defer l.Close()
			_, port, _ := net.SplitHostPort(l.Addr().String())
			c, ra := accept(t, l, func() (net.Conn, error) { return net.Dial("tcp", net.JoinHostPort(dialAddr, port)) })
			local := c.LocalAddr().(*net.TCPAddr).AddrPort()
			ca, ok := ra.(compactAddr)
			if !ok {
				t.Fatalf("peer kept as %T, not compact", ra)
			}
			got := ca.addrPort()
			if got.Addr().Unmap() != local.Addr().Unmap() || got.Port() != local.Port() {
				t.Errorf("peer %v, the client is %v", got, local)
			}
			if got.Addr().Is4In6() != wantMapped {
				t.Errorf("peer %v: mapped %v, want %v", got, got.Addr().Is4In6(), wantMapped)
			}
		})
	}
	tcpCase("ipv4", "tcp4", "127.0.0.1:0", "127.0.0.1", false)
	tcpCase("ipv6", "tcp6", "[::1]:0", "::1", false)
	tcpCase("dual-stack over ipv4", "tcp", ":0", "127.0.0.1", true)
	for _, name := range []string{"path", "@abstract", "unnamed"} {
		t.Run("unix "+name, func(t *testing.T) {
			addr := name
			if name != "@abstract" {
				addr = filepath.Join(t.TempDir(), "s")
			}
			l, err := net.Listen("unix", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var client string // unnamed: the usual client, which binds no name
			switch name {
			case "path":
				client = filepath.Join(filepath.Dir(addr), "c")
			case "@abstract":
				client = addr + "-client"
			}
			_, ra := accept(t, l, func() (net.Conn, error) {
				var local *net.UnixAddr
				if client != "" {
					local = &net.UnixAddr{Name: client, Net: "unix"}
				}
				return net.DialUnix("unix", local, &net.UnixAddr{Name: addr, Net: "unix"})
			})
			ua, ok := ra.(*net.UnixAddr)
			if !ok || ua.Name != client || ua.Net != "unix" {
				t.Errorf("peer %#v, want the client's name %q", ra, client)
			}
		})
	}
}
