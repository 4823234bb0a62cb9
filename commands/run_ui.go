package commands

import (
	"context"
	"net"
	"os"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/monitor/feed"
	"github.com/opengris/scaler/monitor/metrics"
	"github.com/opengris/scaler/monitor/web"
)

// runWebUI is scaler_ui: it subscribes to the scheduler's monitor address
// and serves the page, and the feed in the Prometheus format at /metrics,
// on web_host:web_port until ctx is done.
func runWebUI(ctx context.Context, cfg *config.WebUI, log zerolog.Logger) error {
	mon := feed.New(feed.Options{Address: cfg.MonitorAddress, Log: log})
	srv := web.New(web.Options{Source: mon, Metrics: metrics.Handler(mon), Log: log})

	addr := net.JoinHostPort(cfg.WebHost, strconv.Itoa(cfg.WebPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Info().Str("monitor", cfg.MonitorAddress).Str("url", pageURL(ln.Addr())).Msg("web ui serving")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feedDone := make(chan error, 1)
	go func() { feedDone <- mon.Run(ctx) }()
	err = srv.Serve(ctx, ln)
	cancel()
	if ferr := <-feedDone; err == nil {
		err = ferr
	}
	return err
}

// pageURL is the address to open in a browser: a wildcard listen address
// (0.0.0.0, the default) is named by the host name instead.
func pageURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil && name != "" {
			host = name
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}
