package transport

import (
	"testing"
	"time"
)

// One-way throughput of 64-byte messages DEALER -> ROUTER.
func BenchmarkDealerToRouter64B(b *testing.B) {
	r := bind(b, Router, Options{})
	d := connect(b, Dealer, r.Addr(), Options{})
	payload := make([]byte, 64)
	mustSend(b, d, payload) // wait for the connection
	recvWithin(b, r, 5*time.Second)

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() {
		for range b.N {
			if err := d.Send(payload); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	for range b.N {
		<-r.Recv()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// Round trip DEALER -> ROUTER -> DEALER of one small message; ns/op is the
// round-trip latency.
func BenchmarkRoundTripRouterDealer(b *testing.B) {
	r := bind(b, Router, Options{})
	echo(r)
	d := connect(b, Dealer, r.Addr(), Options{})
	payload := make([]byte, 64)
	mustSend(b, d, payload)
	recvWithin(b, d, 5*time.Second)

	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := d.Send(payload); err != nil {
			b.Fatal(err)
		}
		<-d.Recv()
	}
}
