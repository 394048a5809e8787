package e2e

import (
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/node"
)

// goNode is an in-process backend node on a real DEALER socket. Its
// handler runs on the node's goroutine, which owns the socket.
type goNode struct {
	stop chan struct{}
	done chan struct{}
}

// handlerFunc answers one message (pings are answered by the node).
type handlerFunc func(n *node.Node, m node.Message)

// startGoNode connects a node with the identity to endpoint and serves
// every message with h until the test ends.
func startGoNode(t testing.TB, endpoint, identity string, h handlerFunc) *goNode {
	t.Helper()
	n, err := node.Dial(identity, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	g := &goNode{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		defer n.Close()
		poller := zmq.NewPoller()
		poller.Add(n.Socket(), zmq.POLLIN)
		for {
			select {
			case <-g.stop:
				return
			default:
			}
			polled, err := poller.Poll(20 * time.Millisecond)
			if err != nil || len(polled) == 0 {
				continue
			}
			// Never block in a receive: Stop must be seen within a poll.
			for {
				parts, err := n.Socket().RecvMessageBytes(zmq.DONTWAIT)
				if err != nil {
					break
				}
				if len(parts) != 3 {
					continue
				}
				m := node.Message{SID: parts[0], Type: string(parts[1]), Body: parts[2]}
				if m.Type == "ping" {
					_ = n.Send(m.SID, "pong", n.PongBody())
					continue
				}
				h(n, m)
			}
		}
	}()
	var once sync.Once
	t.Cleanup(func() { once.Do(g.Stop) })
	return g
}

// Stop ends the node and closes its socket.
func (g *goNode) Stop() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	<-g.done
}

// helloHandler answers every request with a 13-byte body.
func helloHandler(n *node.Node, m node.Message) {
	if m.Type == "uwsgi" || m.Type == "headers" {
		_ = n.Send(m.SID, "headers", []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"))
		_ = n.Send(m.SID, "body", []byte("Hello, World!"))
	}
}
