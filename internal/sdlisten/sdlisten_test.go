package sdlisten

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fdOf returns a descriptor of the socket behind c (a duplicate, closed
// at cleanup).
func fdOf(t *testing.T, c interface{ File() (*os.File, error) }) int {
	t.Helper()
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

func TestInspect(t *testing.T) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fd := fdOf(t, ln)
	s, err := inspect(fd, "web")
	if want := netip.MustParseAddrPort(ln.Addr().String()); err != nil || s.Addr != want || s.FD != fd || s.Name != "web" {
		t.Fatalf("inspect = %+v, %v; want %v", s, err, want)
	}
	if got, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || got&unix.FD_CLOEXEC == 0 {
		t.Errorf("inspect left fd %d without FD_CLOEXEC (%v)", fd, err)
	}
	if want := fmt.Sprintf("fd %d (web, %s)", fd, ln.Addr()); s.String() != want {
		t.Errorf("String = %q, want %q", s.String(), want)
	}

	ln6, err := net.ListenTCP("tcp6", &net.TCPAddr{IP: net.IPv6loopback})
	if err == nil {
		defer ln6.Close()
		if s, err := inspect(fdOf(t, ln6), ""); err != nil || s.Addr.String() != ln6.Addr().String() {
			t.Errorf("inspect IPv6 = %+v, %v; want %v", s, err, ln6.Addr())
		}
	}

	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	file, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, tt := range []struct {
		name string
		fd   int
		want string
	}{
		{"udp", fdOf(t, udp), "not a stream socket"},
		{"connected", fdOf(t, conn.(*net.TCPConn)), "not a listening socket"},
		{"unix", fdOf(t, ul), "not a TCP socket"},
		{"file", int(file.Fd()), "not a socket"},
	} {
		if _, err := inspect(tt.fd, "x"); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "(x)") {
			t.Errorf("inspect(%s) = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestSocketsEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tt := range []struct {
		name string
		env  map[string]string
		err  string
	}{
		{name: "not activated", env: map[string]string{}},
		{name: "for another process", env: map[string]string{EnvPID: "1", EnvFDs: "1"}},
		{name: "no sockets", env: map[string]string{EnvPID: "100", EnvFDs: "0"}},
		{name: "bad count", env: map[string]string{EnvPID: "100", EnvFDs: "x"}, err: "LISTEN_FDS=\"x\""},
		{name: "negative count", env: map[string]string{EnvPID: "100", EnvFDs: "-1"}, err: "LISTEN_FDS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			socks, err := Sockets(env(tt.env), 100)
			if tt.err == "" && (err != nil || len(socks) != 0) || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("Sockets = %v, %v; want none and error %q", socks, err, tt.err)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	s := func(fd int, addr string) Socket { return Socket{FD: fd, Addr: netip.MustParseAddrPort(addr)} }
	addrs := []string{"127.0.0.1:8080", "0.0.0.0:8443", "[::1]:8080", "localhost:9000"}
	tests := []struct {
		name  string
		socks []Socket
		want  map[string]int
		err   string
	}{
		{name: "none", want: map[string]int{}},
		{name: "some", socks: []Socket{s(3, "[::1]:8080"), s(4, "127.0.0.1:8080")}, want: map[string]int{"[::1]:8080": 3, "127.0.0.1:8080": 4}},
		{name: "dual stack is not 0.0.0.0", socks: []Socket{s(3, "[::]:8443")}, err: "fd 3 ([::]:8443) matches no listen address"},
		{name: "other port", socks: []Socket{s(3, "127.0.0.1:8080"), {FD: 4, Name: "extra", Addr: netip.MustParseAddrPort("127.0.0.1:1")}},
			err: "fd 4 (extra, 127.0.0.1:1) matches no"},
		{name: "twice", socks: []Socket{s(3, "127.0.0.1:8080"), s(4, "127.0.0.1:8080")}, err: "both bound to 127.0.0.1:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Match(tt.socks, addrs)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Match = %v, %v; want error %q", got, err, tt.err)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("Match = %v, %v; want %v", got, err, tt.want)
			}
			for a, fd := range tt.want {
				if got[a] != fd {
					t.Errorf("Match[%s] = %d, want %d", a, got[a], fd)
				}
			}
		})
	}
}
