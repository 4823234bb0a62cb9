package transport

import (
	"testing"

	zmq "github.com/pebbe/zmq4"
)

// Baseline: raw blocking zmq4 sockets, each owned by its goroutine, no
// wake-up machinery. Only for comparing BenchmarkRoundTripRouterDealer.
func BenchmarkRawZmqRoundTrip(b *testing.B) {
	r := rawSocket(b, zmq.ROUTER)
	if err := r.Bind("tcp://127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	addr, _ := r.GetLastEndpoint()
	d := rawSocket(b, zmq.DEALER)
	if err := d.Connect(addr); err != nil {
		b.Fatal(err)
	}
	_ = r.SetLinger(0)
	_ = d.SetLinger(0)
	stop := make(chan struct{})
	go func() {
		for {
			msg, err := r.RecvMessageBytes(0)
			if err != nil {
				return
			}
			if len(msg) == 2 && string(msg[1]) == "stop" {
				close(stop)
				return
			}
			_, _ = r.SendMessage(msg)
		}
	}()
	payload := make([]byte, 64)
	b.ResetTimer()
	for range b.N {
		_, _ = d.SendBytes(payload, 0)
		_, _ = d.RecvMessageBytes(0)
	}
	b.StopTimer()
	_, _ = d.Send("stop", 0)
	<-stop
}
