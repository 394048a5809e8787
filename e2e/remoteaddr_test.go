package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
)

// TestRemoteAddress checks REMOTE_ADDR and REMOTE_PORT against the
// client socket's own address, for an IPv4 listener, an IPv6 one, and a
// dual-stack one (bind = :port) reached over IPv4 (the peer arrives
// IPv4-mapped, and the node sees the IPv4 address) and over IPv6. gnet
// keeps the peer's address as a compact value since it accepts without
// allocating (third_party/gnet patch 7); this is where that shows.
func TestRemoteAddress(t *testing.T) {
	t.Parallel()
	v6 := true
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		v6 = false
	} else {
		l.Close()
	}
	extra := ""
	var p6, pDual int
	if v6 {
		p6, pDual = freePort(t), freePort(t)
		extra = fmt.Sprintf("bind = [::1]:%d\nbind = :%d\n", p6, pDual)
	}
	p := startProxy(t, extra, hCatchAll)
	hn := hStartNode(t, p.ZMQ, "he", hEcho())
	waitRoutable(t, p, "", "/ready")

	_, port4, _ := net.SplitHostPort(p.Addr)
	cases := []struct{ name, dial, want string }{{"ipv4", "127.0.0.1:" + port4, "127.0.0.1"}}
	if v6 {
		cases = append(cases,
			struct{ name, dial, want string }{"ipv6", fmt.Sprintf("[::1]:%d", p6), "::1"},
			struct{ name, dial, want string }{"dual-stack over ipv4", fmt.Sprintf("127.0.0.1:%d", pDual), "127.0.0.1"},
			struct{ name, dial, want string }{"dual-stack over ipv6", fmt.Sprintf("[::1]:%d", pDual), "::1"})
	} else {
		t.Log("no IPv6 loopback here: only the IPv4 case runs")
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", tc.dial)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			uri := fmt.Sprintf("/remote/%d", i)
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", uri)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			h, ok := hn.Log.headOf(uri)
			if !ok {
				t.Fatalf("node saw no request for %s", uri)
			}
			local := c.LocalAddr().(*net.TCPAddr)
			if got := h.Env["REMOTE_ADDR"]; got != tc.want {
				t.Errorf("REMOTE_ADDR = %q, want %q", got, tc.want)
			}
			if got, want := h.Env["REMOTE_PORT"], strconv.Itoa(local.Port); got != want {
				t.Errorf("REMOTE_PORT = %q, want %q (the client's port)", got, want)
			}
		})
	}
}
