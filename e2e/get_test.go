package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

const catchAll = "[blastbeat:*]\nnode = n1\n"

func TestGetThroughNode(t *testing.T) {
	p := startProxy(t, "", catchAll)
	startGoNode(t, p.ZMQ, "n1", helloHandler)
	waitRoutable(t, p, "", "/")
	expectHello(t, p.URL("/hello?x=1"))
}

// expectHello GETs url and fails unless helloHandler's answer comes back.
func expectHello(t testing.TB, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Hello, World!" {
		t.Fatalf("GET %s: got %d %q", url, resp.StatusCode, body)
	}
}

// TestSilentNewConnectionSurvivesSweep: a connection that has sent nothing
// yet is not idle-timed-out by the first sweep (it once was: its idle clock
// started at zero).
func TestSilentNewConnectionSurvivesSweep(t *testing.T) {
	p := startProxy(t, "", catchAll)
	startGoNode(t, p.ZMQ, "n1", helloHandler)
	waitRoutable(t, p, "", "/")
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The pause is the stimulus, not a synchronisation: several sweeps
	// (every 250 ms) pass before the request is sent.
	time.Sleep(700 * time.Millisecond)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("connection closed before its first request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "Hello, World!" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}
