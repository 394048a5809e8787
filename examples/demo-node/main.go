// Command demo-node is an example BlastBeat backend node: an ordinary
// net/http Handler, run by node.Serve. It serves:
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
// SIGINT or SIGTERM stops it cleanly.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/blastbeat/blastbeat/node"
)

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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("demo-node %q serving %s", *identity, strings.Join(endpoints, " "))
	cfg := node.ServeConfig{Identity: *identity, Endpoints: endpoints, WebSocket: echoWebSocket}
	if err := node.Serve(ctx, cfg, newHandler()); err != nil {
		log.Fatal(err)
	}
}

// newHandler is the demo's HTTP side; any path it does not know gets the
// hello page.
func newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", hello)
	mux.HandleFunc("/stream", stream)
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/download", download)
	return mux
}

const helloPage = "<h1>Hello from BlastBeat</h1>\n"

func hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html")
	io.WriteString(w, helloPage) // small: one message, with its Content-Length
}

// stream sends ten lines, each flushed as a chunk of its own.
func stream(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html")
	flusher, _ := w.(http.Flusher)
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(w, "i am the number %d<br/>\n", i)
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// echo streams the request body back as it arrives: with the request's
// Content-Length when it has one, chunked when it has none.
func echo(w http.ResponseWriter, r *http.Request) {
	ctype := r.Header.Get("Content-Type")
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	if r.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF: all of it
		}
	}
}

// download sends ?size=N bytes of 'x' (1 MiB by default).
func download(w http.ResponseWriter, r *http.Request) {
	size, err := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
	if err != nil || size < 0 {
		size = 1 << 20
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	piece := []byte(strings.Repeat("x", 64<<10))
	for size > 0 {
		k := min(size, int64(len(piece)))
		if _, err := w.Write(piece[:k]); err != nil {
			return // the client went away
		}
		size -= k
	}
}

// echoWebSocket sends every message back, of the same kind, until the
// client closes the session.
func echoWebSocket(ws *node.WebSocket) {
	ctx := ws.Context()
	for {
		msg, binary, err := ws.Receive(ctx)
		if err != nil {
			return
		}
		if err := ws.Send(ctx, msg, binary); err != nil {
			return
		}
	}
}
