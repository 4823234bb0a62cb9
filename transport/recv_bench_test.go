package transport

import (
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// BenchmarkRouterRecv: receiving queued two-part messages (identity and a
// 200-byte payload, like a Task) on a ROUTER Socket, with recvParts against
// pebbe/zmq4's RecvMessageBytes.
func BenchmarkRouterRecv(b *testing.B) {
	for _, mode := range []string{"pebbe", "parts", "parts-watched"} {
		b.Run(mode, func(b *testing.B) {
			// parts-watched: with WatchClosed, as the scheduler's ROUTER
			// (the source descriptor of each message is read and checked).
			router := openSocket(b, Router, "tcp://127.0.0.1:0", true, Options{WatchClosed: mode == "parts-watched"})
			dealer := openSocket(b, Dealer, router.Addr(), false, Options{Identity: []byte("client-identity-0123456789")})
			payload := make([]byte, 200)
			recv := func() [][]byte {
				if mode == "pebbe" {
					msg, err := router.sock.RecvMessageBytes(zmq.DONTWAIT)
					if err != nil {
						return nil
					}
					return msg
				}
				msg, _ := router.TryRecv()
				return msg
			}
			const batch = 1000
			for done := 0; done < b.N; {
				b.StopTimer()
				n := min(batch, b.N-done)
				for i := 0; i < n; i++ {
					_ = dealer.Send(payload)
				}
				time.Sleep(5 * time.Millisecond) // let them all arrive
				b.StartTimer()
				for got := 0; got < n; {
					if msg := recv(); msg != nil {
						got++
					}
				}
				done += n
			}
		})
	}
}
