// Command node is the BlastBeat bench backend: one ZeroMQ DEALER whose
// identity is the node name, ONE receive loop, no goroutine per message.
//
// It answers `ping` with `pong`; `/` with 13 bytes in one `headers`
// message; `/post` after CONTENT_LENGTH bytes of `body` messages; `/stream`
// with a chunked response of 16 × 1 KiB; and echoes `websocket` and
// `websocket-binary` messages. With -credits it speaks the proxy's flow
// control (PROTOCOL.md, "Flow control"): it answers `pong` with "credits"
// and never sends a session more body bytes than it was granted; what does
// not fit waits in that session until its next `credit` message, while the
// loop goes on serving the others. On SIGTERM/SIGINT it prints its own CPU
// time and message counts to stderr and exits.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/internal/yield"
	"github.com/blastbeat/blastbeat/internal/zmqio"
)

func main() {
	endpoint := flag.String("zmq", "tcp://127.0.0.1:15000", "the proxy's ROUTER endpoint to connect to")
	name := flag.String("name", "bench", "node name (DEALER identity)")
	hwm := flag.Int("hwm", 100000, "ZeroMQ send and receive high-water marks")
	credits := flag.Bool("credits", false, "speak credits (per-session flow control): announce them in pongs and send no more than granted")
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

	// Messages cross cgo in batches (internal/zmqio), one call per batch
	// each way, so the node costs as little CPU as the proxy's bridge.
	io, err := zmqio.New(sock, 3)
	if err != nil {
		fatal(err)
	}
	n := newNode(func(sid []byte, typ string, body []byte) error {
		io.AddMessage(sid, typ, body)
		return nil
	}, *credits)
	poller := zmq.NewPoller()
	poller.Add(sock, zmq.POLLIN)

	start := time.Now()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		report(start, &n.stats)
		os.Exit(0)
	}()

	var yielder yield.Yielder // the loop never parks: see internal/yield
	for {
		if yielder.Due(time.Now()) {
			runtime.Gosched()
		}
		// handle keeps nothing it is handed (it copies what waits for
		// credit), so one receive buffer serves every batch.
		got, dropped, more := io.RecvReuse(zmqio.MaxMessages, func(f [][]byte) { _ = n.handle(f) })
		n.stats.dropped.Add(uint64(dropped))
		flush(io, &n.stats)
		if got+dropped == 0 && !more {
			// Nothing came: wait (zmq_poll reads ZMQ_EVENTS itself).
			if _, err := poller.Poll(-1); err != nil && zmq.AsErrno(err) != zmq.Errno(syscall.EINTR) {
				fatal(err)
			}
		}
	}
}

// flush sends the replies of a batch; at the high-water mark it waits
// until the socket can take more.
func flush(io *zmqio.Batcher, st *stats) {
	for {
		if msgs, _ := io.Pending(); msgs == 0 {
			return
		}
		if _, err := io.Send(); err != nil {
			st.dropped.Add(1) // the rest of the batch is lost: count it
			fmt.Fprintln(os.Stderr, "node: send:", err)
			return
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
	fmt.Fprintf(os.Stderr, "node: requests=%d bodies=%d ws=%d pings=%d ends=%d dropped=%d credits=%d waits=%d overflows=%d\n",
		st.requests.Load(), st.bodies.Load(), st.wsMessages.Load(), st.pings.Load(), st.ends.Load(), st.dropped.Load(),
		st.credits.Load(), st.waits.Load(), st.overflows.Load())
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
