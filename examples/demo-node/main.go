// Command demo-node is an example BlastBeat backend node. It serves:
//
//	/            a hello page
//	/stream      a page streamed as chunks
//	/echo        the request body, streamed back as it arrives (POST)
//	/download    ?size=N bytes of 'x' (default 1 MiB)
//
// and echoes every WebSocket message (text or binary) back to its client.
//
// Usage: demo-node [-identity NAME] [-connect EP]...
//
// Each -connect names one BlastBeat instance (default
// tcp://127.0.0.1:5000; a comma-separated list counts as several): the
// node serves every proxy it is given, each reply going back to the proxy
// its request came from. Several demo-node processes need one -identity
// each, all listed in the virtual host (see the node package doc).
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"strconv"
	"strings"

	"github.com/blastbeat/blastbeat/node"
)

// session is what the node remembers of a request whose body streams in.
type session struct {
	chunked bool // echo with chunk messages (request had no length)
	left    int64
}

func main() {
	identity := flag.String("identity", "demo", "node identity (the vhost's node = NAME)")
	var endpoints []string
	flag.Func("connect", "a BlastBeat zmq endpoint; repeat it (or list them comma-separated) to serve several proxies (default tcp://127.0.0.1:5000)", func(v string) error {
		for _, ep := range strings.Split(v, ",") {
			if ep = strings.TrimSpace(ep); ep != "" {
				endpoints = append(endpoints, ep)
			}
		}
		return nil
	})
	flag.Parse()
	if len(endpoints) == 0 {
		endpoints = []string{"tcp://127.0.0.1:5000"}
	}
	n, err := node.Dial(*identity, endpoints...)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("demo-node %q connected to %s", *identity, strings.Join(endpoints, " "))
	echo := map[string]*session{}
	for {
		m, err := n.Recv()
		if err != nil {
			log.Printf("recv: %v", err)
			continue
		}
		sid := string(m.SID)
		switch m.Type {
		case "uwsgi":
			env, err := node.Environ(m.Body)
			if err != nil {
				log.Printf("bad uwsgi packet: %v", err)
				continue
			}
			if s := serve(n, m.SID, env); s != nil {
				echo[sid] = s
			}
		case "body":
			s := echo[sid]
			if s == nil {
				continue
			}
			if s.chunked {
				_ = n.Send(m.SID, "chunk", m.Body) // an empty body ends both
				if len(m.Body) == 0 {
					delete(echo, sid)
				}
				continue
			}
			_ = n.Send(m.SID, "body", m.Body)
			if s.left -= int64(len(m.Body)); s.left <= 0 {
				delete(echo, sid)
			}
		case "websocket", "websocket-binary":
			_ = n.Send(m.SID, m.Type, m.Body) // one message back, same kind
		case "end":
			delete(echo, sid)
		}
	}
}

const hello = "<h1>Hello from BlastBeat</h1>\n"

// serve answers a request head; it returns a session when the request's
// body is to be echoed.
func serve(n *node.Node, sid []byte, env map[string]string) *session {
	if strings.EqualFold(env["HTTP_UPGRADE"], "websocket") {
		// A WebSocket handshake: the proxy answered 101 itself, and an
		// HTTP reply would only be dropped. Its messages come next.
		return nil
	}
	switch env["PATH_INFO"] {
	case "/echo":
		ctype := env["CONTENT_TYPE"]
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		if cl, ok := env["CONTENT_LENGTH"]; ok {
			size, _ := strconv.ParseInt(cl, 10, 64)
			_ = n.Send(sid, "headers", []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", ctype, size)))
			if size == 0 {
				return nil
			}
			return &session{left: size}
		}
		if env["HTTP_TRANSFER_ENCODING"] == "chunked" {
			_ = n.Send(sid, "headers", []byte("HTTP/1.1 200 OK\r\nContent-Type: "+ctype+"\r\nTransfer-Encoding: chunked\r\n\r\n"))
			return &session{chunked: true}
		}
		_ = n.Send(sid, "headers", []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	case "/stream":
		_ = n.Send(sid, "headers", []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"))
		for i := 1; i <= 10; i++ {
			_ = n.Send(sid, "chunk", []byte(fmt.Sprintf("i am the number %d<br/>\n", i)))
		}
		_ = n.Send(sid, "chunk", nil)
	case "/download":
		q, _ := url.ParseQuery(env["QUERY_STRING"])
		size, err := strconv.ParseInt(q.Get("size"), 10, 64)
		if err != nil || size < 0 {
			size = 1 << 20
		}
		_ = n.Send(sid, "headers", []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", size)))
		piece := []byte(strings.Repeat("x", 64<<10))
		for size > 0 {
			k := min(size, int64(len(piece)))
			_ = n.Send(sid, "body", piece[:k])
			size -= k
		}
	default:
		_ = n.Send(sid, "headers", []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s", len(hello), hello)))
	}
	return nil
}
