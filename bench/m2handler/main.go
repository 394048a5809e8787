// Command m2handler is the Mongrel2 backend of the bench: a PULL socket
// for requests, a PUB socket for replies, tnetstrings, one receive loop.
// Routes as bench/node: `/` 13 bytes, `/post` 13 bytes (Mongrel2 delivers
// the whole body in the request), `/stream` 16 chunks of 1 KiB (the
// handler writes the chunked coding itself), and WebSocket echo through
// Mongrel2's WEBSOCKET_HANDSHAKE / WEBSOCKET messages.
//
// The chunked /stream response goes out as ONE message: Mongrel2 1.12
// drops the client connection ("Error sending raw message to HTTP
// listener") when a chunked response arrives in several messages.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	zmq "github.com/pebbe/zmq4"
)

var (
	helloResponse    = []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!")
	notFoundResponse = []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\nNot Found\n")
	streamResponse   = streamed(bytes.Repeat([]byte("x"), 1024), 16)
)

// streamed builds a whole chunked response of n chunks of p.
func streamed(p []byte, n int) []byte {
	b := []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")
	for range n {
		b = strconv.AppendInt(b, int64(len(p)), 16)
		b = append(b, "\r\n"...)
		b = append(b, p...)
		b = append(b, "\r\n"...)
	}
	return append(b, "0\r\n\r\n"...)
}

func main() {
	pullSpec := flag.String("pull", "tcp://127.0.0.1:9997", "Mongrel2's send_spec (we PULL requests)")
	pubSpec := flag.String("pub", "tcp://127.0.0.1:9996", "Mongrel2's recv_spec (we PUB replies)")
	ident := flag.String("ident", "", "PUB socket identity (Mongrel2's recv_ident)")
	flag.Parse()

	pull, err := zmq.NewSocket(zmq.PULL)
	must(err)
	pub, err := zmq.NewSocket(zmq.PUB)
	must(err)
	must(pull.SetLinger(0))
	must(pub.SetLinger(0))
	must(pub.SetSndhwm(100000))
	must(pull.SetRcvhwm(100000))
	if *ident != "" {
		must(pub.SetIdentity(*ident))
	}
	must(pull.Connect(*pullSpec))
	must(pub.Connect(*pubSpec))

	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
		os.Exit(0)
	}()

	h := &handler{send: func(b []byte) error {
		_, err := pub.SendBytes(b, 0)
		return err
	}}
	for {
		msg, err := pull.RecvBytes(0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "m2handler:", err)
			os.Exit(1)
		}
		if err := h.handle(msg); err != nil {
			fmt.Fprintln(os.Stderr, "m2handler:", err)
		}
	}
}

// handler turns requests into replies; driven by one loop.
type handler struct {
	send  func([]byte) error
	buf   []byte // reused reply buffer
	frame []byte // reused WebSocket frame buffer
}

func (h *handler) reply(r *request, data []byte) error {
	h.buf = appendReply(h.buf[:0], r.sender, r.connID, data)
	return h.send(h.buf)
}

func (h *handler) handle(msg []byte) error {
	r, err := parseRequest(msg)
	if err != nil {
		return err
	}
	switch string(r.method) {
	case "JSON":
		return nil // {"type":"disconnect"}: no per-connection state to drop
	case "WEBSOCKET_HANDSHAKE":
		// Mongrel2 hands over the computed Sec-WebSocket-Accept as body.
		return h.reply(&r, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+string(r.body)+"\r\n\r\n"))
	case "WEBSOCKET":
		return h.websocket(&r)
	}
	switch string(r.path) {
	case "/", "/post":
		return h.reply(&r, helloResponse)
	case "/stream":
		return h.reply(&r, streamResponse)
	default:
		return h.reply(&r, notFoundResponse)
	}
}

func (h *handler) websocket(r *request) error {
	flags, ok := parseHexFlags(r.flags)
	if !ok {
		return fmt.Errorf("bad FLAGS %q", r.flags)
	}
	switch op := flags & 0x0f; op {
	case 0x1, 0x2: // text, binary: echo
		h.frame = appendWSFrame(h.frame[:0], 0x80|op, r.body)
	case 0x8: // close: answer it, then close the connection
		h.frame = appendWSFrame(h.frame[:0], 0x88, r.body)
		if err := h.reply(r, h.frame); err != nil {
			return err
		}
		return h.reply(r, nil)
	case 0x9: // ping
		h.frame = appendWSFrame(h.frame[:0], 0x8a, r.body)
	default:
		return nil
	}
	return h.reply(r, h.frame)
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "m2handler:", err)
		os.Exit(1)
	}
}
