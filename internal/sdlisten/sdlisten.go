// Package sdlisten takes the listening sockets a supervisor passes by
// socket activation (sd_listen_fds(3), without libsystemd): LISTEN_PID
// names the process they are for, LISTEN_FDS how many there are, from
// descriptor 3 on, and LISTEN_FDNAMES optionally names them
// (colon-separated). Match pairs them with the addresses a program was
// configured to listen on.
package sdlisten

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The environment variables of socket activation.
const (
	EnvPID   = "LISTEN_PID"
	EnvFDs   = "LISTEN_FDS"
	EnvNames = "LISTEN_FDNAMES"
)

// firstFD is SD_LISTEN_FDS_START.
const firstFD = 3

// maxFDs bounds LISTEN_FDS: more is a mistake, not a configuration.
const maxFDs = 4096

// Socket is one inherited listening socket.
type Socket struct {
	FD   int
	Name string         // from LISTEN_FDNAMES; "" when not given
	Addr netip.AddrPort // its local address (getsockname)
}

// String names the socket in errors and logs: "fd 3 (web.socket,
// 127.0.0.1:8080)".
func (s Socket) String() string {
	if s.Name == "" {
		return fmt.Sprintf("fd %d (%s)", s.FD, s.Addr)
	}
	return fmt.Sprintf("fd %d (%s, %s)", s.FD, s.Name, s.Addr)
}

// Sockets returns the sockets passed to process pid according to getenv;
// none when LISTEN_PID is unset or names another process (the variables
// were inherited from a parent). Each must be a listening TCP socket; it
// is made close-on-exec.
func Sockets(getenv func(string) string, pid int) ([]Socket, error) {
	if p := getenv(EnvPID); p == "" || p != strconv.Itoa(pid) {
		return nil, nil
	}
	n, err := strconv.Atoi(getenv(EnvFDs))
	if err != nil || n < 0 || n > maxFDs {
		return nil, fmt.Errorf("socket activation: %s=%q: not a count of descriptors", EnvFDs, getenv(EnvFDs))
	}
	var names []string
	if s := getenv(EnvNames); s != "" {
		names = strings.Split(s, ":")
	}
	out := make([]Socket, 0, n)
	for i := range n {
		name := ""
		if i < len(names) {
			name = names[i]
		}
		s, err := inspect(firstFD+i, name)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// inspect checks that fd is a listening TCP socket, makes it
// close-on-exec and returns it.
func inspect(fd int, name string) (Socket, error) {
	addr, err := listeningAddr(fd)
	if err != nil {
		if name != "" {
			return Socket{}, fmt.Errorf("socket activation: inherited fd %d (%s): %w", fd, name, err)
		}
		return Socket{}, fmt.Errorf("socket activation: inherited fd %d: %w", fd, err)
	}
	unix.CloseOnExec(fd)
	return Socket{FD: fd, Name: name, Addr: addr}, nil
}

// listeningAddr returns the local address of fd, a listening TCP socket.
func listeningAddr(fd int) (netip.AddrPort, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("not a socket: %w", err)
	}
	if typ != unix.SOCK_STREAM {
		return netip.AddrPort{}, fmt.Errorf("not a stream socket (type %d)", typ)
	}
	if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on == 0 {
		return netip.AddrPort{}, fmt.Errorf("not a listening socket")
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("getsockname: %w", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), nil
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				ip = ip.WithZone(ifi.Name)
			} else {
				ip = ip.WithZone(strconv.Itoa(int(sa.ZoneId)))
			}
		}
		return netip.AddrPortFrom(ip, uint16(sa.Port)), nil
	}
	return netip.AddrPort{}, fmt.Errorf("not a TCP socket (%T)", sa)
}

// Match gives each of addrs (host:port, the host an IP address) the
// socket bound to exactly that address, if there is one: the result maps
// those addresses to descriptors. Every socket must match one address,
// else the error names it. 0.0.0.0:80 and a dual-stack [::]:80 are
// different addresses.
func Match(socks []Socket, addrs []string) (map[string]int, error) {
	out := map[string]int{}
	taken := map[int]string{}
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			continue // not an IP address: never inherited
		}
		for _, s := range socks {
			if s.Addr != ap {
				continue
			}
			if prev, dup := out[a]; dup {
				return nil, fmt.Errorf("socket activation: inherited sockets fd %d and %v are both bound to %s", prev, s, a)
			}
			out[a] = s.FD
			taken[s.FD] = a
		}
	}
	for _, s := range socks {
		if _, ok := taken[s.FD]; !ok {
			return nil, fmt.Errorf("socket activation: inherited socket %v matches no listen address (%s)", s, strings.Join(addrs, ", "))
		}
	}
	return out, nil
}
