package logging

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestLineFormat(t *testing.T) {
	fixed := time.Date(2026, 1, 2, 13, 13, 15, 0, time.UTC)
	cases := []struct {
		name string
		log  func(zerolog.Logger)
		want string
	}{
		{"info", func(l zerolog.Logger) { l.Info().Msg("listening on tcp://127.0.0.1:8516") },
			"[INFO]2026-01-02 13:13:15+0000: scheduler: listening on tcp://127.0.0.1:8516\n"},
		{"fields sorted and quoted", func(l zerolog.Logger) { l.Warn().Str("worker", "1|Worker|a b").Int("n", 3).Msg("worker timed out") },
			"[WARN]2026-01-02 13:13:15+0000: scheduler: worker timed out n=3 worker=\"1|Worker|a b\"\n"},
		{"error", func(l zerolog.Logger) { l.Error().Msg("boom") }, "[EROR]2026-01-02 13:13:15+0000: scheduler: boom\n"},
		{"debug", func(l zerolog.Logger) { l.Debug().Msg("d") }, "[DEBG]2026-01-02 13:13:15+0000: scheduler: d\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := &LineWriter{Out: &buf, Now: func() time.Time { return fixed }}
			tc.log(zerolog.New(w).With().Str(ComponentKey, "scheduler").Logger())
			if buf.String() != tc.want {
				t.Fatalf("got  %q\nwant %q", buf.String(), tc.want)
			}
		})
	}
}

func TestOpenWritesFilesAndFiltersLevels(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "sub", "a.log")
	b := filepath.Join(dir, "b.log")
	log, closer, err := Open("cluster", []string{a, b}, "warning")
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("hidden")
	log.Warn().Msg("shown")
	closer.Close()
	for _, p := range []string{a, b} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if s := string(data); strings.Contains(s, "hidden") || !strings.HasPrefix(s, "[WARN]") || !strings.HasSuffix(s, ": cluster: shown\n") {
			t.Errorf("%s: %q", p, s)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	if _, _, err := Open("x", nil, "LOUD"); err == nil {
		t.Error("unknown level accepted")
	}
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, nil, 0o644)
	if _, _, err := Open("x", []string{filepath.Join(blocker, "a.log")}, "INFO"); err == nil || !strings.Contains(err.Error(), "a.log") {
		t.Errorf("unwritable path: %v", err)
	}
	// No paths: logging off, and the logger is usable.
	log, closer, err := Open("x", nil, "INFO")
	if err != nil {
		t.Fatal(err)
	}
	log.Error().Msg("nowhere")
	closer.Close()
}

func TestLevel(t *testing.T) {
	tests := []struct {
		name string
		want zerolog.Level
		ok   bool
	}{
		{"NOTSET", zerolog.TraceLevel, true},
		{"DEBUG", zerolog.DebugLevel, true},
		{"info", zerolog.InfoLevel, true},
		{"Warning", zerolog.WarnLevel, true},
		{"ERROR", zerolog.ErrorLevel, true},
		{"CRITICAL", zerolog.FatalLevel, true},
		{"WARN", zerolog.NoLevel, false}, // Python's alias is not a configuration name
		{"", zerolog.NoLevel, false},
	}
	for _, tc := range tests {
		if got, ok := Level(tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("Level(%q) = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
