package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// maxPayload bounds a message the client sends and the reply it buffers.
const maxPayload = 1 << 20

var errPeerClosed = errors.New("peer sent a close frame")

// client is one WebSocket connection of the load tool. Its frames are
// prepared once, so an echo round trip allocates nothing.
type client struct {
	conn  net.Conn
	br    *bufio.Reader
	frame []byte // one masked text frame carrying the payload
	mask  [4]byte
	hdr   [ws.MaxHeaderSize - 2]byte
	buf   []byte
}

// dial opens one WebSocket connection to url from the local address src
// (nil: the kernel's choice); a wss:// URL is dialled with tlsConf.
func dial(ctx context.Context, url string, src net.Addr, tlsConf *tls.Config, timeout time.Duration) (*client, error) {
	d := ws.Dialer{
		Timeout:   timeout,
		TLSConfig: tlsConf,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{LocalAddr: src, Timeout: timeout, Control: bindNoPort}
			return nd.DialContext(ctx, network, addr)
		},
	}
	conn, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	if br == nil {
		br = bufio.NewReaderSize(conn, 512)
	}
	c := &client{conn: conn, br: br}
	binaryMask := rand.Uint32()
	c.mask = [4]byte{byte(binaryMask), byte(binaryMask >> 8), byte(binaryMask >> 16), byte(binaryMask >> 24)}
	return c, nil
}

// setPayload prepares the masked text frame that send writes.
func (c *client) setPayload(p []byte) error {
	var b bytes.Buffer
	h := ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: c.mask, Length: int64(len(p))}
	if err := ws.WriteHeader(&b, h); err != nil {
		return err
	}
	masked := append([]byte(nil), p...)
	ws.Cipher(masked, c.mask, 0)
	b.Write(masked)
	c.frame = b.Bytes()
	c.buf = make([]byte, 0, len(p))
	return nil
}

func (c *client) send() error {
	_, err := c.conn.Write(c.frame)
	return err
}

// recv reads the next data message (fragments joined) and returns its
// length. It answers pings and skips pongs; a close frame ends it with
// errPeerClosed.
func (c *client) recv() (int, error) {
	c.buf = c.buf[:0]
	for {
		h, err := ws.ReadHeaderBuffer(c.br, c.hdr[:])
		if err != nil {
			return 0, err
		}
		if h.Length > maxPayload || int64(len(c.buf))+h.Length > maxPayload {
			return 0, fmt.Errorf("frame of %d bytes is over the %d-byte limit", h.Length, maxPayload)
		}
		start := len(c.buf)
		need := start + int(h.Length)
		if cap(c.buf) < need {
			grown := make([]byte, start, 2*need)
			copy(grown, c.buf)
			c.buf = grown
		}
		c.buf = c.buf[:need]
		if _, err := io.ReadFull(c.br, c.buf[start:]); err != nil {
			return 0, err
		}
		if h.Masked {
			ws.Cipher(c.buf[start:], h.Mask, 0)
		}
		switch {
		case h.OpCode == ws.OpClose:
			return 0, errPeerClosed
		case h.OpCode == ws.OpPing:
			payload := append([]byte(nil), c.buf[start:]...)
			c.buf = c.buf[:start]
			if err := c.control(ws.OpPong, payload); err != nil {
				return 0, err
			}
			continue
		case h.OpCode == ws.OpPong:
			c.buf = c.buf[:start]
			continue
		}
		if h.Fin {
			return len(c.buf), nil
		}
	}
}

// control writes one masked control frame.
func (c *client) control(op ws.OpCode, p []byte) error {
	f := ws.NewFrame(op, true, p)
	f = ws.MaskFrameInPlace(f)
	return ws.WriteFrame(c.conn, f)
}

func (c *client) close() {
	_ = c.control(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	_ = c.conn.Close()
}

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT: binding to a source IP then
// reserves no ephemeral port machine-wide; the port is picked at connect
// time, unique per 4-tuple. Without it, N connections bound to 127.0.0.x
// and a proxy's N upstream connections from 127.0.0.1 share one range of
// ~28k ports and run out.
func bindNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
