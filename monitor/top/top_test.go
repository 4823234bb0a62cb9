package top

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest/wait"
	"github.com/opengris/scaler/transport"
)

// lockedScreen serialises drawing with reading: tcell's GetContents hands
// out the live cell slice, which the next Show or Sync rewrites.
type lockedScreen struct {
	tcell.SimulationScreen
	mu sync.Mutex
}

func (s *lockedScreen) Show() { s.mu.Lock(); s.SimulationScreen.Show(); s.mu.Unlock() }
func (s *lockedScreen) Sync() { s.mu.Lock(); s.SimulationScreen.Sync(); s.mu.Unlock() }
func (s *lockedScreen) SetSize(w, h int) {
	s.mu.Lock()
	s.SimulationScreen.SetSize(w, h)
	s.mu.Unlock()
}

// screenText is what the simulation screen shows, one line per row.
func screenText(s *lockedScreen) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cells, w, h := s.GetContents()
	var b strings.Builder
	for y := range h {
		for x := range w {
			c := cells[y*w+x]
			if len(c.Runes) > 0 {
				b.WriteRune(c.Runes[0])
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// session runs Run on a simulation screen of w x h against addr.
type session struct {
	t      *testing.T
	screen *lockedScreen
	run    *wait.Task
}

func startSession(t *testing.T, addr string, w, h int) *session {
	t.Helper()
	s := &lockedScreen{SimulationScreen: tcell.NewSimulationScreen("UTF-8")}
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Fini)
	s.SetSize(w, h)
	ss := &session{t: t, screen: s}
	ss.run = wait.Go(t, "Run", 10*time.Second, false, func(ctx context.Context) error {
		return Run(ctx, Options{Address: addr, Timeout: 2 * time.Second, Log: zerolog.Nop(), Screen: s})
	})
	return ss
}

// waitFor polls the screen until cond holds (generous: the machine is shared).
func (ss *session) waitFor(what string, cond func(string) bool) string {
	ss.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var text string
	for time.Now().Before(deadline) {
		text = screenText(ss.screen)
		if strings.TrimSpace(text) != "" && cond(text) {
			return text
		}
		time.Sleep(20 * time.Millisecond)
	}
	ss.t.Fatalf("no %s within 20 s; screen:\n%s", what, text)
	return ""
}

func (ss *session) key(k tcell.Key, r rune) {
	ss.screen.InjectKey(k, r, tcell.ModNone)
}

// The whole loop on a simulated terminal and a real PUB socket: waiting,
// live data, a sort key, the feed stopping and coming back, and q.
func TestRunOnSimulatedTerminal(t *testing.T) {
	pub, err := transport.Bind(transport.Pub, "tcp://127.0.0.1:0", transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ss := startSession(t, pub.Addr(), 200, 50)
	ss.waitFor("waiting message", func(s string) bool { return strings.Contains(s, "waiting for the scheduler at "+pub.Addr()) })

	stop := make(chan struct{})
	publishing := make(chan struct{})
	go func() { // the scheduler's 1 s status, faster
		defer close(publishing)
		frame := protocol.MustEncode(status())
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				_ = pub.Send(frame)
			}
		}
	}()
	ss.waitFor("both workers", func(s string) bool {
		return strings.Contains(s, "myhost|…a4b5c6d7e8f9") && strings.Contains(s, "myhost|…567890abcdef") && strings.Contains(s, "[cpu]")
	})
	ss.key(tcell.KeyRune, 'F')
	ss.waitFor("[rss_free] after F", func(s string) bool { return strings.Contains(s, "[rss_free]") && !strings.Contains(s, "[cpu]") })
	ss.key(tcell.KeyRune, 'F')
	ss.waitFor("reversed order", func(s string) bool { return strings.Contains(s, "Sorted by rss_free, ascending") })

	// Too small, then big again.
	ss.screen.SetSize(60, 10)
	ss.screen.PostEvent(tcell.NewEventResize(60, 10))
	ss.waitFor("too small", func(s string) bool { return strings.Contains(s, "Your terminal is too small") })
	ss.screen.SetSize(200, 50)
	ss.screen.PostEvent(tcell.NewEventResize(200, 50))
	ss.waitFor("table again", func(s string) bool { return strings.Contains(s, "[rss_free]") })

	close(stop)
	<-publishing
	ss.waitFor("feed stopped", func(s string) bool { return strings.Contains(s, "feed stopped: nothing from "+pub.Addr()+" since ") })
	_ = pub.Send(protocol.MustEncode(status()))
	ss.waitFor("feed back", func(s string) bool {
		return strings.Contains(s, "scaler_top "+pub.Addr()+"  updated") && strings.Contains(s, "came back 1 time")
	})

	ss.key(tcell.KeyRune, 'q')
	ss.quits("q")
}

func TestCtrlCQuits(t *testing.T) {
	ss := startSession(t, "tcp://127.0.0.1:1", 100, 30)
	ss.waitFor("waiting message", func(s string) bool { return strings.Contains(s, "waiting for the scheduler at tcp://127.0.0.1:1") })
	ss.key(tcell.KeyCtrlC, 0)
	ss.quits("Ctrl-C")
}

// quits checks that Run returned, without error, after the key named and
// left no feed behind.
func (ss *session) quits(key string) {
	ss.t.Helper()
	err, ended := ss.run.Ended(10 * time.Second)
	if !ended {
		ss.t.Fatalf("%s did not quit", key)
	}
	if err != nil {
		ss.t.Fatalf("Run after %s: %v", key, err)
	}
	checkFeedEnded(ss.t)
}

// checkFeedEnded fails if a feed goroutine (and so its SUB socket) is
// still there once Run has returned: Run must wait for it.
func checkFeedEnded(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "monitor/feed.(*Monitor).Run(") {
		t.Errorf("the feed still runs after Run returned:\n%s", stacks)
	}
}
