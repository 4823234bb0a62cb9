// Package top is scaler_top: a full-screen terminal view of a scheduler's
// status feed (monitor/feed), redrawn about once a second and at once on a
// key press. What it shows is Render's job (pure, golden-tested); this file
// owns the terminal, through tcell.
package top

import (
	"context"
	"fmt"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rs/zerolog"

	"github.com/opengris/scaler/monitor/feed"
)

// Options configure Run.
type Options struct {
	Address string        // the scheduler's monitor address, tcp://HOST:P+2
	Timeout time.Duration // no message for this long: the feed is shown as stopped
	Log     zerolog.Logger
	// Screen is drawn on, initialised and owned by the caller (tests pass
	// a tcell simulation screen); nil opens the process's terminal, which
	// Run restores before it returns.
	Screen tcell.Screen
}

// Redraw pacing: the clock on the status line moves once a second; feed
// changes (many per second under load) are coalesced to at most five
// redraws a second so a busy feed cannot eat a core.
const (
	tick       = 200 * time.Millisecond
	clockEvery = time.Second
	// feedStopTimeout bounds the wait for the feed to close its socket
	// when Run returns.
	feedStopTimeout = 5 * time.Second
)

// Run shows the feed until ctx is done or the user quits (q, Q, Ctrl-C),
// and restores the terminal before it returns. Neither a missing scheduler
// nor one that goes away is an error: the screen says so and waits.
func Run(ctx context.Context, o Options) error {
	screen := o.Screen
	if screen == nil {
		var err error
		if screen, err = tcell.NewScreen(); err != nil {
			return fmt.Errorf("open the terminal: %w", err)
		}
		if err := screen.Init(); err != nil {
			return fmt.Errorf("open the terminal: %w", err)
		}
		defer screen.Fini() // leaves the alternate screen, restores the tty mode
	}
	screen.HideCursor()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mon := feed.New(feed.Options{Address: o.Address, Timeout: o.Timeout, Log: o.Log})
	feedDone := make(chan error, 1)
	go func() { feedDone <- mon.Run(ctx) }()
	// The feed and its SUB socket must not outlive Run: cancel it and
	// wait, bounded in case closing the socket hangs.
	feedEnded := false
	defer func() {
		if feedEnded {
			return
		}
		cancel()
		select {
		case <-feedDone:
		case <-time.After(feedStopTimeout):
			o.Log.Warn().Str("address", o.Address).Msgf("the status feed did not stop within %v", feedStopTimeout)
		}
	}()

	events := make(chan tcell.Event, 64)
	quitEvents := make(chan struct{})
	go screen.ChannelEvents(events, quitEvents)
	defer close(quitEvents)

	w, h := screen.Size()
	view := NewView(w, h)
	var last time.Time
	draw := func() {
		last = time.Now()
		paint(screen, Render(mon.State(), view, last))
	}
	draw()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	dirty := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-feedDone:
			feedEnded = true
			// Only a socket that cannot be made at all ends the feed.
			if err != nil {
				return err
			}
			return nil
		case ev, ok := <-events:
			if !ok { // the screen was finalised under us
				return nil
			}
			switch ev := ev.(type) {
			case *tcell.EventKey:
				if quits(ev) {
					return nil
				}
				if ev.Key() == tcell.KeyRune && view.Press(ev.Rune()) {
					draw() // at once, not at the next status
				}
				if step, ok := scrollKeys[ev.Key()]; ok {
					moved := view
					moved.Left += step
					view.Left = ClampLeft(mon.State(), moved)
					draw()
				}
				if ev.Key() == tcell.KeyCtrlL {
					screen.Sync()
					draw()
				}
			case *tcell.EventResize:
				view.Width, view.Height = ev.Size()
				screen.Sync()
				draw()
			}
		case <-mon.Changed():
			dirty = true
		case now := <-ticker.C:
			if dirty || now.Sub(last) >= clockEvery {
				dirty = false
				draw()
			}
		}
	}
}

// scrollKeys move the worker table's numbers by so many columns.
var scrollKeys = map[tcell.Key]int{tcell.KeyRight: 8, tcell.KeyLeft: -8, tcell.KeyEnd: 1 << 20, tcell.KeyHome: -(1 << 20)}

func quits(ev *tcell.EventKey) bool {
	switch ev.Key() {
	case tcell.KeyCtrlC:
		return true
	case tcell.KeyRune:
		return ev.Rune() == 'q' || ev.Rune() == 'Q'
	}
	return false
}

var styles = map[Style]tcell.Style{
	StyleNormal: tcell.StyleDefault,
	StyleTitle:  tcell.StyleDefault.Reverse(true),
	StyleAlert:  tcell.StyleDefault.Reverse(true).Bold(true).Foreground(tcell.ColorYellow),
	StyleHeader: tcell.StyleDefault.Bold(true),
}

// paint replaces the screen's content with lines.
func paint(s tcell.Screen, lines []Line) {
	s.Clear()
	for y, l := range lines {
		x := 0
		for _, r := range l.Text {
			s.SetContent(x, y, r, nil, styles[l.Style])
			x++
		}
	}
	s.Show()
}
