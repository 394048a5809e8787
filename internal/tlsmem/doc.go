// Package tlsmem terminates TLS for connections that live on an event loop,
// with crypto/tls itself and no goroutine per idle connection.
//
// A Conn is a tls.Server over an in-memory transport. The event loop hands
// it the ciphertext it read from the socket (Feed) and takes plaintext out
// (Read); what it writes (Write, Writev) comes back as ciphertext through
// Options.Out, which the loop writes to the socket.
//
// The handshake runs on a goroutine of its own, started by the first Feed,
// whose transport reads block until the loop feeds more: crypto/tls cannot
// resume a handshake after a failed read (its handshake error is sticky).
// When that goroutine has output or finishes, it calls Options.Wake, and the
// loop answers by calling Read, which sends the output and reports the
// outcome. Once the handshake is done the goroutine exits, the transport
// stops blocking, and every record is decrypted and encrypted on the loop's
// goroutine: crypto/tls keeps its state, including a record half read, when
// the transport's Read fails with a temporary net.Error
// (readRecordOrCCS in crypto/tls/conn.go), so Read simply returns for more.
//
// Concurrency: every method is for the event loop that owns the Conn, except
// State, which is safe from any goroutine. Options.Out is only ever called
// from the loop (inside Read, Write, Writev and Close); Options.Wake is
// called from the handshake goroutine. Handshake output is therefore never
// written from another goroutine, so it cannot overtake or trail the
// loop's own writes (gnet runs AsyncWritev and Wake from different queues,
// so a goroutine-side AsyncWritev followed by Wake would not be ordered).
//
// Use with gnet, roughly:
//
//	OnOpen:    tc := tlsmem.Server(cfg, tlsmem.Options{
//	               Out:  func(b [][]byte) error { _, err := gc.Writev(b); return err },
//	               Wake: func() { _ = gc.Wake(nil) }, // runs OnTraffic on the loop
//	               LocalAddr: gc.LocalAddr(), RemoteAddr: gc.RemoteAddr(),
//	           })
//	OnTraffic: buf, _ := gc.Peek(-1) // also after a Wake, with or without bytes
//	           for {
//	               n, err := tc.Feed(buf) // err: closed
//	               gc.Discard(n); buf = buf[n:]
//	               plain, err := tc.Read(scratch[:0])
//	               // err != nil: io.EOF (close_notify), *HandshakeError, a record error: close.
//	               // tc.State() == StateOpen for the first time: pick the protocol
//	               // machine from tc.ConnectionState().NegotiatedProtocol.
//	               // Hand plain to the machine.
//	               if n == 0 || len(buf) == 0 { break } // n == 0: handshake busy; a Wake follows
//	           }
//	Timeouts:  the caller's (a handshake timeout, an idle timeout): tc.Close().
//	OnClose:   tc.Close()
//
// Memory: an idle Conn holds no goroutine and no buffer of this package
// (both directions use pooled buffers returned as soon as they are empty).
// crypto/tls keeps its own per-connection state; TestIdleMemory measures the
// total.
package tlsmem
