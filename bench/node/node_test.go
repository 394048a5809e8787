package main

import (
	"bytes"
	"strings"
	"testing"
)

type sent struct {
	sid, typ, body string
}

// recorder is a node without credits whose messages are recorded.
func recorder() (*node, *[]sent) { return recorderWith(false) }

func recorderWith(credits bool) (*node, *[]sent) {
	var out []sent
	n := newNode(func(sid []byte, typ string, body []byte) error {
		out = append(out, sent{string(sid), typ, string(body)})
		return nil
	}, credits)
	return n, &out
}

func msg(sid, typ string, body []byte) [][]byte {
	return [][]byte{[]byte(sid), []byte(typ), body}
}

func TestNodePing(t *testing.T) {
	n, out := recorder()
	if err := n.handle(msg("", "ping", nil)); err != nil {
		t.Fatal(err)
	}
	if len(*out) != 1 || (*out)[0] != (sent{"", "pong", ""}) {
		t.Fatalf(
			"ping: got %+v",
			*out)
	}
}

func TestNodeHello(t *testing.T) {
	n, out := recorder()
	_ = n.handle(msg("s1", "uwsgi", packet("PATH_INFO", "/")))
	if len(*out) != 1 || (*out)[0].typ != "headers" || !strings.HasSuffix((*out)[0].body, "\r\n\r\nHello, World!") {
		t.Fatalf(
			"hello: got %+v",
			*out)
	}
}

func TestNodePost(t *testing.T) {
	n, out := recorder()
	_ = n.handle(msg("s1", "uwsgi", packet("PATH_INFO", "/post", "CONTENT_LENGTH", "10")))
	_ = n.handle(msg("s1", "body", []byte("12345")))
	if len(*out) != 0 {
		t.Fatalf(
			"replied before the whole body: %+v",
			*out)
	}
	_ = n.handle(msg("s1", "body", []byte("67890")))
	if len(*out) != 1 || (*out)[0].sid != "s1" || (*out)[0].body != string(helloResponse) {
		t.Fatalf(
			"post: got %+v",
			*out)
	}
	if len(n.sessions) != 0 {
		t.Fatalf(
			"session kept after the reply: %v",
			n.sessions)
	}
}

func TestNodePostChunked(t *testing.T) {
	n, out := recorder()
	_ = n.handle(msg("s1", "uwsgi", packet("PATH_INFO", "/post")))
	_ = n.handle(msg("s1", "body", []byte("abc")))
	if len(*out) != 0 {
		t.Fatalf(
			"replied before the empty body: %+v",
			*out)
	}
	_ = n.handle(msg("s1", "body", nil))
	if len(*out) != 1 {
		t.Fatalf(
			"chunked post: got %+v",
			*out)
	}
}

func TestNodeStream(t *testing.T) {
	n, out := recorder()
	_ = n.handle(msg("s1", "uwsgi", packet("PATH_INFO", "/stream")))
	if len(*out) != streamChunkCount+2 {
		t.Fatalf(
			"stream: %d messages, want %d",
			len(*out), streamChunkCount+2)
	}
	if (*out)[0].typ != "headers" || !strings.Contains((*out)[0].body, "Transfer-Encoding: chunked") {
		t.Fatalf(
			"stream head: %+v",
			(*out)[0])
	}
	for _, m := range (*out)[1 : streamChunkCount+1] {
		if m.typ != "chunk" || len(m.body) != streamChunkSize {
			t.Fatalf(
				"stream chunk: type %q, %d bytes",
				m.typ, len(m.body))
		}
	}
	if last := (*out)[streamChunkCount+1]; last.typ != "chunk" || last.body != "" {
		t.Fatalf(
			"stream end: %+v",
			last)
	}
}

func TestNodeWebSocket(t *testing.T) {
	n, out := recorder()
	_ = n.handle(msg("s1", "uwsgi", packet("PATH_INFO", "/ws", "HTTP_UPGRADE", "websocket")))
	if len(*out) != 0 {
		t.Fatalf(
			"answered an upgrade: %+v",
			*out)
	}
	_ = n.handle(msg("s1", "websocket", []byte("hi")))
	_ = n.handle(msg("s1", "websocket-binary", []byte{0, 1}))
	want := []sent{{"s1", "websocket", "hi"}, {"s1", "websocket-binary", "\x00\x01"}}
	if len(*out) != 2 || (*out)[0] != want[0] || (*out)[1] != want[1] {
		t.Fatalf(
			"echo: got %+v, want %+v",
			*out, want)
	}
}

func TestNodeEndForgets(t *testing.T) {
	n, _ := recorder()
	_ = n.handle(msg("s1", "uwsgi", packet("PATH_INFO", "/post", "CONTENT_LENGTH", "10")))
	_ = n.handle(msg("s1", "end", nil))
	if len(n.sessions) != 0 {
		t.Fatalf(
			"end kept the session: %v",
			n.sessions)
	}
}

func TestNodeDropsBadShapes(t *testing.T) {
	n, out := recorder()
	_ = n.handle([][]byte{[]byte("x")})
	_ = n.handle(msg("s1", "bogus", nil))
	if len(*out) != 0 || n.stats.dropped.Load() != 2 {
		t.Fatalf(
			"bad shapes: out=%+v dropped=%d",
			*out, n.stats.dropped.Load())
	}
	if !bytes.Equal(streamChunk, bytes.Repeat([]byte("x"), streamChunkSize)) {
		t.Fatal("stream chunk changed")
	}
}
