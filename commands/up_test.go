package commands

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/internal/scalertest/expect"
	"github.com/opengris/scaler/internal/scalertest/tempfile"
)

var updateUp = flag.Bool("update", false, "rewrite testdata/up/*.golden from scaler up's plan and dump")

// checkGolden compares got with testdata/up/NAME (rewritten with -update).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "up", name)
	if *updateUp {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./commands -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the plan (go test ./commands -run %s -update rewrites it)\n--- got\n%s--- want\n%s", path, t.Name(), got, want)
	}
}

func writeStack(t *testing.T, text string) string {
	t.Helper()
	return tempfile.Write(t, "stack.toml", text)
}

// TestPlanSeedFile: the seed's Scenario 1 file, unchanged, gives its four
// roles in dependency order with the seed's own command lines.
func TestPlanSeedFile(t *testing.T) {
	const seed = "../testdata/example_config.toml"
	steps, notes, err := planStack(seed)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "example_config.plan", strings.ReplaceAll(renderPlan(steps, notes), seed, "FILE"))
	checkGolden(t, "example_config.dump", strings.ReplaceAll(dumpStack(seed, steps), seed, "FILE"))
}

// TestDumpIsAConfigFile: the whole --dump-config output, given back with
// -c, plans the same stack.
func TestDumpIsAConfigFile(t *testing.T) {
	steps, _, err := planStack("../testdata/example_config.toml")
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := planStack(writeStack(t, dumpStack("x", steps)))
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(steps) {
		t.Fatalf("%d roles from the dump, %d from the file", len(again), len(steps))
	}
	for i := range steps {
		if a, b := config.Dump(steps[i].Config), config.Dump(again[i].Config); a != b {
			t.Errorf("%s differs after a round trip:\n%s\nvs\n%s", steps[i].Name(), a, b)
		}
	}
}

// TestPlanBuiltin: the image's default stack listens on every interface and
// is waited for on the loopback address.
func TestPlanBuiltin(t *testing.T) {
	steps, notes, err := planStack(writeStack(t, builtinStack))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range steps {
		got = append(got, s.Name()+" "+strings.Join(s.Wait, ","))
	}
	want := []string{
		"object_storage_server 127.0.0.1:8517",
		"scheduler 127.0.0.1:8516,127.0.0.1:8518",
		"cluster ",
		"webui 127.0.0.1:8081",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(notes) != 0 {
		t.Errorf("built-in plan:\n%s\nnotes %q\nwant:\n%s", strings.Join(got, "\n"), notes, strings.Join(want, "\n"))
	}
	if !strings.Contains(builtinStack, `"tcp://0.0.0.0:8516"`) || !strings.Contains(builtinStack, `web_host = "0.0.0.0"`) {
		t.Error("the built-in stack must listen on 0.0.0.0 (docker run -p)")
	}
}

func TestPlanTable(t *testing.T) {
	cases := []struct {
		name  string
		file  string
		plan  string // expected "name:wait" list, or
		err   string // a fragment of the error
		notes string // a fragment of the notes
	}{
		{
			name: "scheduler alone: in-process storage and monitor are waited for",
			file: "[scheduler]\nscheduler_address = \"tcp://127.0.0.1:7000\"\n",
			plan: "scheduler:127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002",
		},
		{
			name: "order does not follow the file; adapter before cluster; ipc monitor not waited for",
			file: "[webui]\nmonitor_address = \"ipc:///tmp/m\"\nweb_port = 9000\n" +
				"[cluster]\nscheduler_address = \"tcp://127.0.0.1:7000\"\nnum_of_workers = 2\n" +
				"[native_worker_adapter]\nscheduler_address = \"tcp://127.0.0.1:7000\"\nadapter_web_port = 9001\n" +
				"[scheduler]\nscheduler_address = \"tcp://127.0.0.1:7000\"\nmonitor_address = \"ipc:///tmp/m\"\n",
			plan: "scheduler:127.0.0.1:7000,127.0.0.1:7001 native_worker_adapter:localhost:9001 cluster: webui:127.0.0.1:9000",
		},
		{
			name: "the Slurm adapter starts after the scheduler, before the cluster",
			file: "[cluster]\nscheduler_address = \"tcp://127.0.0.1:7000\"\n" +
				"[slurm_worker_adapter]\nscheduler_address = \"tcp://127.0.0.1:7000\"\nadapter_web_port = 9002\n" +
				"[scheduler]\nscheduler_address = \"tcp://127.0.0.1:7000\"\n",
			plan: "scheduler:127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002 slurm_worker_adapter:localhost:9002 cluster:",
		},
		{
			name:  "[top] is not started, and says why",
			file:  "[scheduler]\nscheduler_address = \"tcp://127.0.0.1:7000\"\n[top]\nmonitor_address = \"tcp://127.0.0.1:7002\"\n",
			plan:  "scheduler:127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002",
			notes: "scaler_top draws on a terminal",
		},
		{
			name:  "an unknown section is named",
			file:  "[scheduler]\nscheduler_address = \"tcp://127.0.0.1:7000\"\n[shceduler]\nx = 1\n",
			plan:  "scheduler:127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002",
			notes: "[shceduler] is not a section of any scaler role",
		},
		{name: "no role at all", file: "[top]\nmonitor_address = \"tcp://127.0.0.1:7002\"\n", err: "no section of a role scaler up starts"},
		{name: "port 0", file: "[scheduler]\nscheduler_address = \"tcp://127.0.0.1:0\"\n", err: "port 0"},
		{name: "a bad key names file and line", file: "[scheduler]\nscheduler_address = \"tcp://127.0.0.1:7000\"\nprotectd = true\n", err: ":3: [scheduler] protectd: unknown key"},
		{name: "a missing required key", file: "[cluster]\nnum_of_workers = 2\n", err: "scheduler_address: is required"},
		{name: "bad TOML", file: "[scheduler\n", err: "invalid TOML"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			steps, notes, err := planStack(writeStack(t, tc.file))
			if expect.Err(t, err, tc.err) {
				return
			}
			var got []string
			for _, s := range steps {
				got = append(got, s.Name()+":"+strings.Join(s.Wait, ","))
				if s.Args[0] != s.Role.sub || s.Args[1] != "--config" {
					t.Errorf("%s runs %q, want the seed's ROLE --config FILE", s.Name(), s.Args)
				}
			}
			if g := strings.Join(got, " "); g != tc.plan {
				t.Errorf("plan %q, want %q", g, tc.plan)
			}
			if n := strings.Join(notes, "\n"); !strings.Contains(n, tc.notes) || (tc.notes == "" && n != "") {
				t.Errorf("notes %q, want %q", n, tc.notes)
			}
		})
	}
}

// TestCopyLinesLabelsEveryLine: lines longer than the buffer come through
// whole, in pieces that each carry the label; a last line without a
// newline gets one.
func TestCopyLinesLabelsEveryLine(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", maxLogLine+10)
	go func() {
		w.WriteString("one\n" + long + "\nlast")
		w.Close()
	}()
	var out bytes.Buffer
	lw := &lineWriter{w: &out}
	var wg sync.WaitGroup
	wg.Add(1)
	copyLines(r, "scheduler | ", lw, &wg)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if lines[0] != "scheduler | one" || lines[len(lines)-1] != "scheduler | last" {
		t.Errorf("first/last lines %q / %q", lines[0], lines[len(lines)-1])
	}
	var joined string
	for _, l := range lines[1 : len(lines)-1] {
		if !strings.HasPrefix(l, "scheduler | ") {
			t.Fatalf("unlabelled line %.40q", l)
		}
		joined += strings.TrimPrefix(l, "scheduler | ")
	}
	if joined != long {
		t.Errorf("long line came through as %d bytes, want %d", len(joined), len(long))
	}
}

// TestUpCommandLine: help, the built-in dump, and bad input through Main.
func TestUpCommandLine(t *testing.T) {
	cases := []struct {
		args   []string
		status int
		out    string // fragment of stdout
		err    string // fragment of stderr
	}{
		{[]string{"scaler", "help", "up"}, exitOK, "scaler up - start every role", ""},
		{[]string{"scaler", "up", "-h"}, exitOK, "--stop-timeout", ""},
		{[]string{"scaler", "up", "--dump-config"}, exitOK, "from the built-in configuration", ""},
		{[]string{"scaler", "up", "-c", "../testdata/example_config.toml", "--dump-config"}, exitOK, "# scaler_ui\n[webui]\nmonitor_address = 'tcp://127.0.0.1:6380'", ""},
		{[]string{"scaler", "up", "stray"}, exitUsage, "", "up takes no arguments"},
		{[]string{"scaler", "up", "-c", "no/such.toml"}, exitUsage, "", "no/such.toml: configuration file not found"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		if got := Main(tc.args, &out, &errb); got != tc.status {
			t.Errorf("%q: status %d, want %d (stderr %q)", tc.args, got, tc.status, errb.String())
		}
		if !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%q: stdout %q stderr %q; want %q / %q", tc.args, out.String(), errb.String(), tc.out, tc.err)
		}
	}
	var out bytes.Buffer
	Main([]string{"scaler", "up", "--dump-config"}, &out, &out)
	for _, section := range []string{"[object_storage_server]", "[scheduler]", "[cluster]", "[webui]"} {
		if !strings.Contains(out.String(), "\n"+section+"\n") {
			t.Errorf("built-in dump has no %s:\n%s", section, out.String())
		}
	}
}
