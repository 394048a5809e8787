// Command node is the BlastBeat bench backend: one ZeroMQ DEALER whose
// identity is the node name, ONE receive loop, no goroutine per message.
//
// It answers `ping` with `pong`; `/` with 13 bytes in one `headers`
// message; `/post` after CONTENT_LENGTH bytes of `body` messages; `/stream`
// with a chunked response of 16 × 1 KiB; and echoes `websocket` and
// `websocket-binary` messages. On SIGTERM/SIGINT it prints its own CPU time
// and message counts to stderr and exits.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"
)

func main() {
	endpoint := flag.String("zmq", "tcp://127.0.0.1:15000", "the proxy's ROUTER endpoint to connect to")
	name := flag.String("name", "bench", "node name (DEALER identity)")
	hwm := flag.Int("hwm", 100000, "ZeroMQ send and receive high-water marks")
	version := flag.Bool("version", false, "print the libzmq version and exit")
	flag.Parse()
	if *version {
		major, minor, patch := zmq.Version()
		fmt.Printf("%d.%d.%d\n", major, minor, patch)
		return
	}

	sock, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		fatal(err)
	}
	must(sock.SetIdentity(*name))
	must(sock.SetLinger(0))
	must(sock.SetSndhwm(*hwm))
	must(sock.SetRcvhwm(*hwm))
	must(sock.Connect(*endpoint))

	n := newNode(func(sid []byte, typ string, body []byte) error {
		_, err := sock.SendMessage(sid, typ, body)
		return err
	})

	start := time.Now()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		report(start, &n.stats)
		os.Exit(0)
	}()

	for {
		msg, err := sock.RecvMessageBytes(0)
		if err != nil {
			fatal(err)
		}
		if err := n.handle(msg); err != nil {
			fmt.Fprintln(os.Stderr, "node: send:", err)
		}
	}
}

// report prints the process's CPU time (getrusage) and its message counts.
func report(start time.Time, st *stats) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	user := time.Duration(ru.Utime.Nano())
	sys := time.Duration(ru.Stime.Nano())
	fmt.Fprintf(os.Stderr, "node: cpu user=%s sys=%s wall=%s\n", user, sys, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(os.Stderr, "node: requests=%d bodies=%d ws=%d pings=%d ends=%d dropped=%d\n",
		st.requests.Load(), st.bodies.Load(), st.wsMessages.Load(), st.pings.Load(), st.ends.Load(), st.dropped.Load())
}

func must(err error) {
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "node:", err)
	os.Exit(1)
}
