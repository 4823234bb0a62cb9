package commands

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/internal/scalertest/programs"
)

// run calls Main in-process as the given program.
func run(t *testing.T, argv ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(argv, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestSeedCommandLinesParse(t *testing.T) {
	cases := []struct {
		argv []string
		want []string // lines the --dump-config output must contain
	}{
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:8516", "-p", "False"}, []string{"protected = false", "scheduler_address = 'tcp://127.0.0.1:8516'"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:8516", "-p", "false"}, []string{"protected = false"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:8516", "--protected=false"}, []string{"protected = false"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:8516"}, []string{"protected = true"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:8516", "-p"}, []string{"protected = true"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:8516", "-e", "uvloop"}, []string{"event_loop = 'uvloop'"}},
		{[]string{"scaler_cluster", "-n", "10", "tcp://127.0.0.1:8516", "-ds", "300"}, []string{"num_of_workers = 10", "death_timeout_seconds = 300"}},
		{[]string{"scaler_cluster", "-n", "10", "tcp://127.0.0.1:8516", "-dts", "42"}, []string{"death_timeout_seconds = 42"}},
		{[]string{"scaler_cluster", "tcp://127.0.0.1:8516", "--preload", "mypackage.init:setup"}, []string{"preload = 'mypackage.init:setup'"}},
		{[]string{"scaler_cluster", "tcp://127.0.0.1:8516", "--preload", "mypackage.init:configure('production', debug=False)"},
			[]string{`preload = "mypackage.init:configure('production', debug=False)"`}},
		{[]string{"scaler_cluster", "--config", "../testdata/example_config.toml", "--num-of-workers", "12"},
			[]string{"num_of_workers = 12", "per_worker_capabilities = 'linux,cpu=8'", "task_timeout_seconds = 600", "scheduler_address = 'tcp://127.0.0.1:6378'"}},
		{[]string{"scaler_scheduler", "--config", "../testdata/example_config.toml"}, []string{"object_storage_address = 'tcp://127.0.0.1:6379'"}},
		{[]string{"scaler_object_storage_server", "--config", "../testdata/example_config.toml"}, []string{"object_storage_address = 'tcp://127.0.0.1:6379'"}},
		{[]string{"scaler_ui", "--config", "../testdata/example_config.toml"}, []string{"web_port = 8081"}},
		{[]string{"scaler_ui", "tcp://127.0.0.1:2347", "--port", "8081"}, []string{"web_port = 8081"}},
		{[]string{"scaler_top", "tcp://127.0.0.1:2347", "-t", "9"}, []string{"timeout = 9"}},
		// A stack's file without [top]: its [webui] monitor address.
		{[]string{"scaler_top", "--config", "../testdata/example_config.toml"}, []string{"monitor_address = 'tcp://127.0.0.1:6380'"}},
		// argparse conveniences
		{[]string{"scaler_scheduler", "-mt=5", "--io", "3", "tcp://127.0.0.1:1"}, []string{"max_number_of_tasks_waiting = 5", "io_threads = 3"}},
		// A negative number is a value, not an option; "--prot" is a unique prefix.
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:1", "-mt", "-1", "--prot"}, []string{"max_number_of_tasks_waiting = -1", "protected = true"}},
		{[]string{"scaler_cluster", "-n4", "tcp://127.0.0.1:1"}, []string{"num_of_workers = 4"}},
		{[]string{"scaler_scheduler", "-lp", "a.log", "/dev/stdout", "tcp://127.0.0.1:1", "-ll", "debug"}, []string{"logging_paths = ['a.log', '/dev/stdout']", "logging_level = 'DEBUG'"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:1", "-lp"}, []string{"logging_paths = []"}},
		// upstream's broken flags work
		{[]string{"scaler_cluster", "tcp://127.0.0.1:1", "-it", "2", "-osa", "tcp://127.0.0.1:2", "-la", "tcp://x:1"}, []string{"io_threads = 2", "object_storage_address = 'tcp://127.0.0.1:2'"}},
		{[]string{"scaler_worker_adapter_native", "tcp://127.0.0.1:1", "-hi", "5", "-osa", "tcp://127.0.0.1:2"}, []string{"heartbeat_interval = 5"}},
		{[]string{"scaler_worker_adapter_symphony", "tcp://127.0.0.1:1", "-p", "8080", "-sn", "svc", "-osa", "tcp://127.0.0.1:2", "-it", "2"}, []string{"service_name = 'svc'", "io_threads = 2"}},
		{[]string{"scaler_cluster", "tcp://127.0.0.1:1", "-hps", "false"}, []string{"hard_processor_suspend = false"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.argv, " "), func(t *testing.T) {
			out, errOut, code := run(t, append(tc.argv, "--dump-config")...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w+"\n") {
					t.Errorf("dump lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestBadCommandLines(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[scheduler]\nscheduler_address = \"tcp://127.0.0.1:1\"\nio_threads = \"two\"\n"), 0o644)
	unknown := filepath.Join(dir, "unknown.toml")
	os.WriteFile(unknown, []byte("[cluster]\nscheduler_address = \"tcp://127.0.0.1:1\"\nnum_workers = 2\n"), 0o644)
	rangeErr := filepath.Join(dir, "range.toml")
	os.WriteFile(rangeErr, []byte("[scheduler]\nscheduler_address = \"tcp://127.0.0.1:1\"\n\nclient_timeout_seconds = 0\n"), 0o644)
	cases := []struct {
		argv []string
		want []string
	}{
		{[]string{"scaler_scheduler"}, []string{"scheduler_address", "required"}},
		{[]string{"scaler_scheduler", "-c", filepath.Join(dir, "missing.toml")}, []string{"missing.toml", "not found"}},
		{[]string{"scaler_scheduler", "-c", bad}, []string{"bad.toml:3", "[scheduler]", "io_threads", "integer"}},
		{[]string{"scaler_cluster", "-c", unknown}, []string{"unknown.toml:3", "[cluster]", "num_workers", "unknown key"}},
		{[]string{"scaler_scheduler", "-c", rangeErr}, []string{"range.toml:4", "client_timeout_seconds", "at least 1"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:1", "--bogus"}, []string{"unrecognized option --bogus"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:1", "--lo", "x"}, []string{"ambiguous option --lo"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:1", "-e", "tokio"}, []string{"--event-loop", "tokio"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:1", "-p", "maybe"}, []string{"unexpected arguments maybe"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:1", "tcp://127.0.0.1:2"}, []string{"unexpected arguments"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:1", "-mt"}, []string{"-mt expects a value"}},
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:1", "-mt", "many"}, []string{"--max-number-of-tasks-waiting", "not an integer"}},
		// -1 parses as the value of -ls (not as an option), which validation then refuses, naming the flag.
		{[]string{"scaler_scheduler", "tcp://127.0.0.1:1", "-ls", "-1", "--prot"}, []string{"--load-balance-seconds: must be at least 1, got -1"}},
		{[]string{"scaler_scheduler", "localhost:1"}, []string{"scheduler_address", "tcp://"}},
		{[]string{"scaler_cluster", "tcp://127.0.0.1:1", "--preload", "pkg:f(x)"}, []string{"--preload", "literal"}},
		{[]string{"scaler_cluster", "tcp://127.0.0.1:1", "-n", "2", "-wn", "a,b,c"}, []string{"--worker-names", "3 names given for 2 workers"}},
		{[]string{"scaler_cluster", "tcp://127.0.0.1:1", "-n", "2", "--worker-ids", "a"}, []string{"--worker-ids", "1 ids given for 2 workers"}},
		{[]string{"scaler_cluster", "tcp://127.0.0.1:1", "-n", "2", "--worker-ids", "a,a"}, []string{"--worker-ids", "given twice"}},
		{[]string{"scaler_worker_adapter_slurm", "tcp://127.0.0.1:1", "--max-jobs", "0"}, []string{"--max-jobs", "at least 1"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.argv, " "), func(t *testing.T) {
			_, errOut, code := run(t, append(tc.argv, "--dump-config")...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d (usage error); stderr %q", code, exitUsage, errOut)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("error is not one line: %q", errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
}

// The dump of any command line, read back with --config, gives the same dump.
func TestDumpConfigFeedsBack(t *testing.T) {
	for _, r := range roles {
		t.Run(r.sub, func(t *testing.T) {
			argv := []string{r.Program()}
			switch r.sub {
			case "worker_adapter_symphony":
				argv = append(argv, "tcp://127.0.0.1:1", "-p", "1", "-sn", "s", "-osa", "tcp://127.0.0.1:2")
			case "object_storage_server":
				argv = append(argv, "tcp://127.0.0.1:1", "--max-memory", "2G")
			default:
				argv = append(argv, "tcp://127.0.0.1:1")
			}
			first, errOut, code := run(t, append(argv, "--dump-config")...)
			if code != 0 {
				t.Fatalf("%d %s", code, errOut)
			}
			path := filepath.Join(t.TempDir(), "dump.toml")
			os.WriteFile(path, []byte(first), 0o644)
			second, errOut, code := run(t, r.Program(), "--config", path, "--dump-config")
			if code != 0 || second != first {
				t.Fatalf("feeding the dump back changed it (%d %s):\n%s\n---\n%s", code, errOut, first, second)
			}
		})
	}
}

func TestFlagsOverrideFileOverridesDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(path, []byte("[scheduler]\nscheduler_address = \"tcp://127.0.0.1:1\"\nio_threads = 4\nprotected = false\nclient_timeout_seconds = 9\n"), 0o644)
	out, errOut, code := run(t, "scaler_scheduler", "-c", path, "--io-threads", "6", "tcp://127.0.0.1:5", "--dump-config")
	if code != 0 {
		t.Fatal(errOut)
	}
	for _, w := range []string{"io_threads = 6", "protected = false", "client_timeout_seconds = 9", "scheduler_address = 'tcp://127.0.0.1:5'", "worker_timeout_seconds = 60"} {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("lacks %q:\n%s", w, out)
		}
	}
}

func TestNormalize(t *testing.T) {
	opts := newOptionSet(config.Fields(config.DefaultScheduler()))
	cases := []struct {
		in, want []string
	}{
		{[]string{"tcp://a:1", "-p", "False"}, []string{"--protected=false", "--", "tcp://a:1"}},
		{[]string{"-pro", "tcp://a:1"}, []string{"--protected", "--", "tcp://a:1"}},
		{[]string{"-lp", "x", "y", "tcp://a:1", "-ll", "info"}, []string{"--logging-paths=x", "--logging-paths=y", "--logging-level=info", "--", "tcp://a:1"}},
		{[]string{"--", "-weird"}, []string{"--", "-weird"}},
		{[]string{"-mt", "-1"}, []string{"--max-number-of-tasks-waiting=-1", "--"}},
	}
	for _, tc := range cases {
		got, err := opts.normalize(tc.in)
		if tc.in[0] == "-pro" { // single dash never abbreviates
			if err == nil {
				t.Errorf("-pro accepted: %v", got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// buildBinary is the scaler binary for the tests that exec it, built once.
func buildBinary(t *testing.T) string { return programs.Scaler(t) }

// TestMain removes the scaler binary the tests built.
func TestMain(m *testing.M) { programs.Main(m) }

func TestLinksAndSubcommandsPrintTheSameHelp(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go toolchain not on PATH")
	}
	bin := buildBinary(t)
	linkDir := filepath.Join(t.TempDir(), "links")
	if out, err := exec.Command(bin, "install-links", linkDir).CombinedOutput(); err != nil {
		t.Fatalf("install-links: %v %s", err, out)
	}
	shorts := map[string][]string{
		"scheduler":               {"-p, --protected", "-ap, --allocate-policy", "-osa, --object-storage-address", "-ma, --monitor-address", "-e, --event-loop", "-ct,", "-wt,", "-ls,", "-lbt,", "-mt,", "-lp,", "-ll,", "-c, --config", "--dump-config"},
		"cluster":                 {"-n, --num-of-workers", "-wn,", "-pwc,", "-wtqs,", "-hi,", "-tts,", "-gc,", "-ds, -dts, --death-timeout-seconds", "-tm,", "-el,", "-it,", "-hps,", "-la,", "-osa,", "--preload"},
		"object_storage_server":   {"--max-memory", "-c, --config"},
		"ui":                      {"--web-host", "--web-port"},
		"top":                     {"-t, --timeout"},
		"worker_adapter_native":   {"-p, --adapter-web-port", "--adapter-web-host", "-mw,", "-hi,", "-tt,", "-dt,", "-wtqs,"},
		"worker_adapter_symphony": {"-p, --server-http-port", "-sn,", "-n,", "-wc,", "-osa,", "--server-http-host"},
		"worker_adapter_slurm":    {"-p, --adapter-web-port", "-mj, --max-jobs", "-wpj, --workers-per-job", "--partition", "--account", "--time-limit", "--cpus-per-job", "--memory-per-job", "--sbatch-arguments", "--scaler-binary", "--python"},
	}
	for _, r := range roles {
		viaLink, err := exec.Command(filepath.Join(linkDir, r.Program()), "-h").Output()
		if err != nil {
			t.Fatalf("%s -h: %v", r.Program(), err)
		}
		viaSub, err := exec.Command(bin, r.sub, "-h").Output()
		if err != nil {
			t.Fatalf("scaler %s -h: %v", r.sub, err)
		}
		if string(viaLink) != string(viaSub) {
			t.Errorf("%s: link and subcommand help differ:\n%s\n---\n%s", r.sub, viaLink, viaSub)
		}
		for _, s := range shorts[r.sub] {
			if !strings.Contains(string(viaLink), s) {
				t.Errorf("%s -h lacks %q", r.Program(), s)
			}
		}
	}
	top, err := exec.Command(bin, "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if !strings.Contains(string(top), r.sub) {
			t.Errorf("scaler --help does not list %s", r.sub)
		}
	}
	version, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.Contains(string(version), Version) {
		t.Errorf("--version: %q %v", version, err)
	}
}
