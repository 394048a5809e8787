// Command delayrelay is a TCP relay that delays every byte by -d in each
// direction, buffering without bound: a path with a round trip of 2 × d
// whose only window is the protocol's own (an HTTP/2 stream's and
// connection's flow-control windows, not TCP's). It measures what a
// client far away gets, e.g. an HTTP/2 upload through BlastBeat:
//
//	delayrelay -l 127.0.0.1:19901 -t 127.0.0.1:8080 -d 25ms &
//	curl --http2-prior-knowledge --data-binary @20MB.bin -o /dev/null \
//	    -w '%{speed_upload}\n' http://127.0.0.1:19901/post
//
// It listens on 127.0.0.1 unless told otherwise, relays until killed,
// and holds in memory what is in flight (up to a 64 KiB buffer per read
// made during the last d).
package main

import (
	"flag"
	"log"
	"net"
	"time"
)

func main() {
	listen := flag.String("l", "127.0.0.1:19901", "address to listen on")
	to := flag.String("t", "127.0.0.1:8080", "address to relay to")
	d := flag.Duration("d", 25*time.Millisecond, "delay each way")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(serve(ln, *to, *d))
}

// serve relays every connection ln accepts to addr, delayed by d each way.
func serve(ln net.Listener, addr string, d time.Duration) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{})
			go func() {
				relay(u, c, d)
				close(done)
			}()
			relay(c, u, d)
			<-done
		}()
	}
}

type piece struct {
	at time.Time
	b  []byte
}

// relay copies src to dst, each piece written d after it was read; at
// src's end it half-closes dst.
func relay(dst, src net.Conn, d time.Duration) {
	pieces := make(chan piece, 1<<16)
	go func() {
		defer close(pieces)
		for {
			b := make([]byte, 64<<10)
			n, err := src.Read(b)
			if n > 0 {
				pieces <- piece{time.Now().Add(d), b[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for p := range pieces {
		time.Sleep(time.Until(p.at))
		if _, err := dst.Write(p.b); err != nil {
			// dst is gone: so is this direction. Closing src ends the
			// reader, and what it queued meanwhile is dropped.
			_ = src.Close()
			for range pieces {
			}
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
