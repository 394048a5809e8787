// Command hello is the net/http backend that nginx proxy_pass forwards to
// in the bench: the same routes as bench/node (`/` 13 bytes, `/post`
// reads the body then answers 13 bytes, `/stream` 16 chunks of 1 KiB) and a
// WebSocket echo at `/ws` (github.com/gobwas/ws).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

const (
	streamChunkSize  = 1024
	streamChunkCount = 16
)

var (
	hello       = []byte("Hello, World!")
	streamChunk = bytes.Repeat([]byte("x"), streamChunkSize)
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", handleHello)
	mux.HandleFunc("/post", handlePost)
	mux.HandleFunc("/stream", handleStream)
	mux.HandleFunc("/ws", handleWS)
	srv := &http.Server{
		Addr:              *addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
		os.Exit(0)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
}

func writeHello(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	h["Content-Length"] = []string{"13"}
	_, _ = w.Write(hello)
}

func handleHello(w http.ResponseWriter, r *http.Request) {
	writeHello(w)
}

func handlePost(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	writeHello(w)
}

func handleStream(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = []string{"text/plain"}
	// The chunks go as fast as net/http's buffer takes them, as the
	// node's go as fast as libzmq batches them: a Flush per chunk made
	// one write (and one TCP segment into nginx) each, which the node's
	// batched messages do not cost.
	for range streamChunkCount {
		_, _ = w.Write(streamChunk)
	}
}

// handleWS upgrades and echoes every data message back with its opcode
// until the peer closes.
func handleWS(w http.ResponseWriter, r *http.Request) {
	conn, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	defer conn.Close()
	// Bytes the client sent right after its handshake may sit in rw.Reader.
	src := struct {
		io.Reader
		io.Writer
	}{rw.Reader, conn}
	for {
		msg, op, err := wsutil.ReadClientData(src)
		if err != nil {
			return
		}
		if err := wsutil.WriteServerMessage(conn, op, msg); err != nil {
			return
		}
	}
}
