package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/blastbeat/blastbeat/node"
)

// The node-decided WebSocket handshake (websocket-handshake = node): the
// node's 101 accepts (with the subprotocol it picks), any other status
// goes to the client as an HTTP response; over HTTP/1.1 and HTTP/2.

// wnHandler accepts /yes (choosing "superchat" when offered), refuses
// /no with 403, and echoes messages.
func wnHandler(hn *hNode, n *node.Node, m hMsg) {
	sid := []byte(m.SID)
	switch m.Type {
	case "uwsgi":
		if m.Env["HTTP_UPGRADE"] == "" {
			hRespond(n, m.SID, 200, "", "plain")
			return
		}
		switch {
		case strings.HasPrefix(m.Env["PATH_INFO"], "/yes"):
			head := "HTTP/1.1 101 Switching Protocols\r\n"
			if strings.Contains(m.Env["HTTP_SEC_WEBSOCKET_PROTOCOL"], "superchat") {
				head += "Sec-WebSocket-Protocol: superchat\r\n"
			}
			_ = n.Send(sid, "headers", []byte(head+"\r\n"))
		case strings.HasPrefix(m.Env["PATH_INFO"], "/h2-version"):
			// a node that puts SERVER_PROTOCOL in its status line
			_ = n.Send(sid, "headers", []byte(m.Env["SERVER_PROTOCOL"]+" 101 Switching Protocols\r\n\r\n"))
		case strings.HasPrefix(m.Env["PATH_INFO"], "/ok200"):
			_ = n.Send(sid, "headers", []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
		case strings.HasPrefix(m.Env["PATH_INFO"], "/bad-proto"):
			_ = n.Send(sid, "headers", []byte("HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Protocol: unoffered\r\n\r\n"))
		default:
			hRespond(n, m.SID, 403, "", "no way")
		}
	case "websocket", "websocket-binary":
		_ = n.Send(sid, m.Type, append([]byte("node says: "), m.Body...))
	}
}

func TestWebSocketNodeHandshake(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:*]\nnode = wn\nwebsocket-handshake = node\n")
	hStartNode(t, p.ZMQ, "wn", wnHandler)
	waitRoutable(t, p, "", "/ready")

	t.Run("http1-accept", func(t *testing.T) {
		c, hs := wDial(t, p, "/yes", ws.Dialer{Protocols: []string{"chat", "superchat"}})
		if hs.Protocol != "superchat" {
			t.Errorf("subprotocol %q, want the node's superchat", hs.Protocol)
		}
		if _, err := c.Write(wFrame(0x81, []byte("hi"))); err != nil {
			t.Fatal(err)
		}
		c.expectFrame(t, ws.OpText, []byte("node says: hi"))
	})
	t.Run("http1-refuse", func(t *testing.T) {
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		if _, err := io.WriteString(conn, wHandshake("/no", "")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 403 || string(body) != "no way" {
			t.Fatalf("refused handshake: %d %q", resp.StatusCode, body)
		}
		// The connection is still HTTP: a next request is answered.
		if _, err := io.WriteString(conn, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "plain" {
			t.Fatalf("after the refusal: %d %q", resp.StatusCode, body)
		}
	})
	t.Run("http1-unoffered-subprotocol", func(t *testing.T) {
		out := rawExchange(t, p.Addr, wHandshake("/bad-proto", "Sec-WebSocket-Protocol: chat\r\n"), 5*time.Second)
		if !strings.HasPrefix(out, "HTTP/1.1 502 ") {
			t.Errorf("a 101 naming a subprotocol the client did not offer: %q, want 502", out)
		}
	})
	t.Run("h2-accept-and-refuse", func(t *testing.T) {
		tr := h2cTransport(t, p.Addr)
		c, resp := h2wsDial(t, tr, "http://x/yes", http.Header{"Sec-Websocket-Protocol": {"superchat"}})
		if resp.StatusCode != 200 || resp.Header.Get("Sec-Websocket-Protocol") != "superchat" {
			t.Fatalf("h2 accept: %d %q", resp.StatusCode, resp.Header.Get("Sec-Websocket-Protocol"))
		}
		if _, err := c.Write(wFrame(0x81, []byte("over h2"))); err != nil {
			t.Fatal(err)
		}
		c.expectFrame(t, ws.OpText, []byte("node says: over h2"))

		req, _ := http.NewRequest("CONNECT", "http://x/no", io.NopCloser(http.NoBody))
		req.Header.Set(":protocol", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		r, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 403 || string(body) != "no way" {
			t.Fatalf("h2 refusal: %d %q", r.StatusCode, body)
		}
	})
	t.Run("h2-status-line-and-2xx", func(t *testing.T) {
		tr := h2cTransport(t, p.Addr)
		// "HTTP/2 101": the status line of a node that echoes
		// SERVER_PROTOCOL (PROTOCOL.md) accepts as "HTTP/1.1 101" does.
		c, resp := h2wsDial(t, tr, "http://x/h2-version", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("h2 accept with an HTTP/2 status line: %d", resp.StatusCode)
		}
		if _, err := c.Write(wFrame(0x81, []byte("v2"))); err != nil {
			t.Fatal(err)
		}
		c.expectFrame(t, ws.OpText, []byte("node says: v2"))

		// A 200 is no refusal to an extended CONNECT but its acceptance
		// (RFC 8441 §5): the client would read "hello" as frames.
		req, _ := http.NewRequest("CONNECT", "http://x/ok200", io.NopCloser(http.NoBody))
		req.Header.Set(":protocol", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		r, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 502 {
			t.Fatalf("a node's 200 to an HTTP/2 WebSocket handshake: %d, want 502", r.StatusCode)
		}
	})
}
