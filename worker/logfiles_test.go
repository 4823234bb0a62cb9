package worker

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// A processor logs to "<path>-<pid>" for each logging path of its worker, in
// the Go side's line format.
func TestProcessorLogsToPathPerPid(t *testing.T) {
	dir := t.TempDir()
	mod := "import logging\ndef setup():\n    logging.getLogger().info('hello from preload')\n"
	if err := os.WriteFile(filepath.Join(dir, "logpreload.py"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYTHONPATH", dir)
	base := filepath.Join(dir, "logs", "w.log")
	e := startWorker(t, func(c *Config) {
		c.Preload = "logpreload:setup()"
		c.LoggingLevel = "INFO"
		c.LoggingPaths = []string{base, "/dev/stdout"}
	})
	fn := e.h.fn("def pid():\n    import os\n    return os.getpid()\n", "pid")
	task := e.h.task(fn, 0)
	e.sched.send(task)
	pid := e.h.result(e.sched.result(task.TaskID, 20*time.Second).Results[0])

	data, err := os.ReadFile(base + "-" + pid)
	if err != nil {
		files, _ := filepath.Glob(base + "*")
		t.Fatalf("processor log: %v (files: %v)", err, files)
	}
	line := regexp.MustCompile(`(?m)^\[INFO\]\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4}: processor: hello from preload$`)
	if !line.Match(data) {
		t.Fatalf("no well-formed preload line in %s:\n%s", base+"-"+pid, data)
	}
	if _, err := os.Stat(base); err == nil {
		t.Fatalf("processor wrote to %s itself, want only %s-<pid>", base, base)
	}
}
