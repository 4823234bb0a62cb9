package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opengris/scaler/internal/scalertest/expect"
	"github.com/opengris/scaler/internal/scalertest/tempfile"
)

func writeTOML(t *testing.T, text string) string {
	t.Helper()
	return tempfile.Write(t, "c.toml", text)
}

// allSections returns a fresh default instance of every section.
func allSections() []Section {
	return []Section{
		DefaultScheduler(), DefaultCluster(), DefaultObjectStorageServer(), DefaultWebUI(),
		DefaultTop(), DefaultNativeWorkerAdapter(), DefaultSymphonyWorkerAdapter(), DefaultSlurmWorkerAdapter(),
	}
}

func TestExampleConfigLoadsForEverySectionItHas(t *testing.T) {
	cases := []struct {
		section Section
		check   func(Section) bool
	}{
		{DefaultScheduler(), func(s Section) bool {
			c := s.(*Scheduler)
			return c.SchedulerAddress == "tcp://127.0.0.1:6378" && c.MonitorAddress == "tcp://127.0.0.1:6380" &&
				reflect.DeepEqual(c.LoggingPaths, []string{"/dev/stdout", "/var/log/scaler/scheduler.log"})
		}},
		{DefaultCluster(), func(s Section) bool {
			c := s.(*Cluster)
			return c.NumOfWorkers == 8 && c.PerWorkerCapabilities == "linux,cpu=8" && c.TaskTimeoutSeconds == 600
		}},
		{DefaultObjectStorageServer(), func(s Section) bool {
			return s.(*ObjectStorageServer).ObjectStorageAddress == "tcp://127.0.0.1:6379"
		}},
		{DefaultWebUI(), func(s Section) bool {
			w := s.(*WebUI)
			return w.WebPort == 8081 && w.WebHost == "0.0.0.0"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.section.SectionName(), func(t *testing.T) {
			if _, err := LoadFile("../testdata/example_config.toml", tc.section); err != nil {
				t.Fatal(err)
			}
			if err := tc.section.Validate(); err != nil {
				t.Fatal(err)
			}
			if !tc.check(tc.section) {
				t.Fatalf("unexpected values: %+v", tc.section)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	cases := []struct {
		name, toml string
		want       []string // substrings of the error
	}{
		{"unknown key", "[scheduler]\nscheduler_address = \"tcp://127.0.0.1:1\"\nbogus = 1\n", []string{":3:", "[scheduler]", "bogus", "unknown key"}},
		{"wrong type", "[scheduler]\n\nio_threads = \"2\"\n", []string{":3:", "io_threads", "expected an integer"}},
		{"float for int", "[scheduler]\nio_threads = 2.5\n", []string{":2:", "io_threads", "float"}},
		{"bool type", "[scheduler]\nprotected = \"no\"\n", []string{"protected", "boolean"}},
		{"list of non-strings", "[scheduler]\nlogging_paths = [1]\n", []string{"logging_paths", "list of strings"}},
		{"section not a table", "scheduler = 3\n", []string{":1:", "must be a table"}},
		{"bad toml", "[scheduler]\nio_threads = = 1\n", []string{":2:", "invalid TOML"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTOML(t, tc.toml)
			_, err := LoadFile(path, DefaultScheduler())
			if err == nil {
				t.Fatal("expected an error")
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FileError", err)
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestMissingFileAndMissingSection(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.toml"), DefaultScheduler())
	if err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "nope.toml") {
		t.Fatalf("missing file: %v", err)
	}
	// A file without our section configures other commands: not an error.
	s := DefaultTop()
	set, err := LoadFile(writeTOML(t, "[cluster]\nnum_of_workers = 3\n"), s)
	if err != nil || len(set) != 0 || !reflect.DeepEqual(s, DefaultTop()) {
		t.Fatalf("missing section changed something: %v %v %+v", set, err, s)
	}
}

func TestAliasesFromUpstreamFieldNames(t *testing.T) {
	c := DefaultCluster()
	_, err := LoadFile(writeTOML(t, "[cluster]\nworker_io_threads = 3\nstorage_address = \"tcp://127.0.0.1:7\"\n"), c)
	if err != nil {
		t.Fatal(err)
	}
	if c.IOThreads != 3 || c.ObjectStorageAddress != "tcp://127.0.0.1:7" {
		t.Fatalf("aliases not applied: %+v", c)
	}
	n := DefaultNativeWorkerAdapter()
	if _, err := LoadFile(writeTOML(t, "[native_worker_adapter]\nheartbeat_interval_seconds = 9\n"), n); err != nil || n.HeartbeatInterval != 9 {
		t.Fatalf("native alias: %v %d", err, n.HeartbeatInterval)
	}
}

// A dumped configuration read back through LoadFile is the same
// configuration, for every section, with defaults and with changed values.
func TestDumpRoundTrip(t *testing.T) {
	for _, s := range allSections() {
		t.Run(s.SectionName(), func(t *testing.T) {
			// Change every field so the test covers non-default values too.
			for _, f := range Fields(s) {
				switch f.Kind.String() {
				case "string":
					f.SetString(s, "x \"quoted\" 'value'")
				case "int", "int64":
					f.SetString(s, "7")
				case "bool":
					f.SetString(s, "false")
				case "slice":
					f.SetList(s, []string{"/a b", "c"})
				}
			}
			back := freshLike(s)
			if _, err := LoadFile(writeTOML(t, Dump(s)), back); err != nil {
				t.Fatalf("reading dump back: %v\n%s", err, Dump(s))
			}
			if !reflect.DeepEqual(s, back) {
				t.Fatalf("round trip differs:\n%+v\n%+v", s, back)
			}
			fresh := freshLike(s)
			back = freshLike(s)
			if _, err := LoadFile(writeTOML(t, Dump(fresh)), back); err != nil || !reflect.DeepEqual(fresh, back) {
				t.Fatalf("defaults round trip: %v", err)
			}
		})
	}
}

func freshLike(s Section) Section {
	for _, d := range allSections() {
		if d.SectionName() == s.SectionName() {
			return d
		}
	}
	panic(s.SectionName())
}

func TestDumpListsEveryKey(t *testing.T) {
	for _, s := range allSections() {
		out := Dump(s)
		for _, f := range Fields(s) {
			if !strings.Contains(out, "\n"+f.Key+" = ") {
				t.Errorf("[%s] dump lacks %s:\n%s", s.SectionName(), f.Key, out)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	withAddr := func(f func(*Scheduler)) Section {
		s := DefaultScheduler()
		s.SchedulerAddress = "tcp://127.0.0.1:8516"
		f(s)
		return s
	}
	cluster := func(f func(*Cluster)) Section {
		c := DefaultCluster()
		c.SchedulerAddress = "tcp://127.0.0.1:8516"
		f(c)
		return c
	}
	cases := []struct {
		name    string
		section Section
		wantKey string // "" means valid
	}{
		{"scheduler ok", withAddr(func(*Scheduler) {}), ""},
		{"missing address", DefaultScheduler(), "scheduler_address"},
		{"ipc scheduler refused", withAddr(func(s *Scheduler) { s.SchedulerAddress = "ipc:///tmp/x" }), "scheduler_address"},
		{"io threads 0", withAddr(func(s *Scheduler) { s.IOThreads = 0 }), "io_threads"},
		{"waiting -2", withAddr(func(s *Scheduler) { s.MaxNumberOfTasksWaiting = -2 }), "max_number_of_tasks_waiting"},
		{"policy", withAddr(func(s *Scheduler) { s.AllocatePolicy = "Even" }), "allocate_policy"},
		{"event loop", withAddr(func(s *Scheduler) { s.EventLoop = "tokio" }), "event_loop"},
		{"level any case", withAddr(func(s *Scheduler) { s.LoggingLevel = "debug" }), ""},
		{"level bad", withAddr(func(s *Scheduler) { s.LoggingLevel = "loud" }), "logging_level"},
		{"webhook", withAddr(func(s *Scheduler) { s.AdapterWebhookURL = "nope" }), "adapter_webhook_url"},
		{"monitor ipc ok", withAddr(func(s *Scheduler) { s.MonitorAddress = "ipc:///tmp/m" }), ""},
		{"port range", withAddr(func(s *Scheduler) { s.SchedulerAddress = "tcp://127.0.0.1:70000" }), "scheduler_address"},
		{"cluster ok", cluster(func(*Cluster) {}), ""},
		{"names count", cluster(func(c *Cluster) { c.NumOfWorkers = 3; c.WorkerNames = "a,b" }), "worker_names"},
		{"caps", cluster(func(c *Cluster) { c.PerWorkerCapabilities = "linux,cpu=MostPowerful" }), "per_worker_capabilities"},
		{"preload", cluster(func(c *Cluster) { c.Preload = "nocolon" }), "preload"},
		{"task timeout negative", cluster(func(c *Cluster) { c.TaskTimeoutSeconds = -1 }), "task_timeout_seconds"},
		{"web port", &WebUI{MonitorAddress: "tcp://127.0.0.1:1", WebHost: "h", WebPort: 0}, "web_port"},
		{"oss size", &ObjectStorageServer{ObjectStorageAddress: "tcp://127.0.0.1:1", MaxMemory: "12Q", Logging: defaultLogging()}, "max_memory"},
		{"oss wait 0", &ObjectStorageServer{ObjectStorageAddress: "tcp://127.0.0.1:1", MaxMemory: "0", Logging: defaultLogging()}, "wait_timeout_seconds"},
		{"oss defaults", func() Section {
			o := DefaultObjectStorageServer()
			o.ObjectStorageAddress = "tcp://127.0.0.1:1"
			return o
		}(), ""},
		{"object wait 0", withAddr(func(s *Scheduler) { s.ObjectWaitSeconds = 0 }), "object_storage_wait_timeout_seconds"},
		{"symphony needs service", &SymphonyWorkerAdapter{SchedulerAddress: "tcp://127.0.0.1:1", ObjectStorageAddress: "tcp://127.0.0.1:2", ServerHTTPPort: 80, ServerHTTPHost: "h", BaseConcurrency: 1, IOThreads: 1, WorkerTaskQueueSize: 1, HeartbeatInterval: 1, DeathTimeoutSeconds: 1, EventLoop: "builtin", Logging: defaultLogging()}, "service_name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.section.Validate()
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Key != tc.wantKey {
				t.Fatalf("error %v, want one naming %s", err, tc.wantKey)
			}
		})
	}
}

func TestParseCapabilities(t *testing.T) {
	expect.Parses(t, "ParseCapabilities", ParseCapabilities, []expect.Case[string, map[string]int64]{
		{In: "", Want: map[string]int64{}}, {In: "linux,cpu=8", Want: map[string]int64{"linux": -1, "cpu": 8}},
		{In: " gpu=2, linux ", Want: map[string]int64{"gpu": 2, "linux": -1}},
		{In: "linux,cpu=8,", Want: map[string]int64{"linux": -1, "cpu": 8}},
		{In: "b=", Want: map[string]int64{"b": -1}}, {In: "gpu=two", Bad: true}, {In: "=3", Bad: true},
	})
}

func TestParseSize(t *testing.T) {
	expect.Parses(t, "ParseSize", ParseSize, []expect.Case[string, int64]{
		{In: "0", Want: 0}, {In: "1024", Want: 1024}, {In: "64K", Want: 64 << 10}, {In: "512m", Want: 512 << 20},
		{In: "2G", Want: 2 << 30}, {In: "1T", Want: 1 << 40}, {In: "512MiB", Want: 512 << 20},
		{In: "10B", Want: 10}, {In: "", Bad: true}, {In: "-1", Bad: true}, {In: "12Q", Bad: true},
		{In: "G", Bad: true},
	})
}

func TestParseAddress(t *testing.T) {
	cases := []expect.Case[string, Address]{
		{In: "tcp://127.0.0.1:8516", Want: Address{"tcp", "127.0.0.1", 8516}},
		{In: "tcp://localhost:1", Want: Address{"tcp", "localhost", 1}},
		{In: "tcp://[::1]:5", Want: Address{"tcp", "::1", 5}}, {In: "tcp://*:0", Want: Address{"tcp", "*", 0}},
		{In: "ipc:///tmp/x", Want: Address{"ipc", "/tmp/x", 0}},
		{In: "inproc://a", Want: Address{"inproc", "a", 0}}, {In: "127.0.0.1:1", Bad: true},
		{In: "tcp://127.0.0.1", Bad: true}, {In: "tcp://127.0.0.1:99999", Bad: true},
		{In: "udp://1.2.3.4:5", Bad: true}, {In: "tcp://:5", Bad: true}, {In: "ipc://", Bad: true},
	}
	expect.Parses(t, "ParseAddress", ParseAddress, cases)
	for _, tc := range cases {
		if got, err := ParseAddress(tc.In); err == nil && got.String() != tc.In {
			t.Errorf("String() = %q, want %q", got.String(), tc.In)
		}
	}
}

func TestParsePreload(t *testing.T) {
	cases := []struct {
		in   string
		want *Preload
		bad  string
	}{
		{"mypackage.init:setup", &Preload{Module: "mypackage.init", Function: "setup"}, ""},
		{"mypackage.init:configure('production', debug=False)", &Preload{Module: "mypackage.init", Function: "configure", Call: true,
			Args: []any{"production"}, Kwargs: []KeywordArg{{"debug", false}}}, ""},
		{"m:f(1, -2.5, None, True, [1, 'a'], (1,), {'k': [None]}, {1, 2}, set(), x=\"s\\\"q\")", &Preload{Module: "m", Function: "f", Call: true,
			Args:   []any{int64(1), -2.5, nil, true, []any{int64(1), "a"}, Tuple{int64(1)}, []DictItem{{"k", []any{nil}}}, Set{int64(1), int64(2)}, Set{}},
			Kwargs: []KeywordArg{{"x", "s\"q"}}}, ""},
		{"m:f()  ", &Preload{Module: "m", Function: "f", Call: true}, ""},
		{"m:f(0x10, 1e3, 1_000)", &Preload{Module: "m", Function: "f", Call: true, Args: []any{int64(16), 1000.0, int64(1000)}}, ""},
		{"nocolon", nil, "must look like"},
		{"m:", nil, "function name"},
		{":f", nil, "module path"},
		{"m:a.b()", nil, "simple name"},
		{"m:f(x)", nil, "literal"},
		{"m:f(a=1, 2)", nil, "positional argument follows"},
		{"m:f(1", nil, "missing ')'"},
		{"m:f('open", nil, "unterminated"},
		{"m:f(1) extra", nil, "after the argument list"},
		{"a:b:c", nil, "simple name"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePreload(tc.in)
			if expect.Err(t, err, tc.bad) {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func FuzzParsePreload(f *testing.F) {
	for _, s := range []string{"m:f", "m:f(1, 'a', k=[1,{2:3}])", "m:f((", "m:f({1:", "x:y(-1e-3j)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ParsePreload(s) // must not panic or hang
	})
}

func TestStackMonitorAddress(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"[webui]'s first", "[webui]\nmonitor_address = \"tcp://h:1\"\n[scheduler]\nscheduler_address = \"tcp://h:7000\"\nmonitor_address = \"tcp://h:2\"\n", "tcp://h:1"},
		{"then [scheduler]'s", "[scheduler]\nscheduler_address = \"tcp://h:7000\"\nmonitor_address = \"ipc:///tmp/m\"\n", "ipc:///tmp/m"},
		{"then the scheduler's default", "[scheduler]\nscheduler_address = \"tcp://h:7000\"\n", "tcp://h:7002"},
		{"none", "[cluster]\nscheduler_address = \"tcp://h:7000\"\n", ""},
		{"a scheduler on ipc has no default", "[scheduler]\nscheduler_address = \"ipc:///tmp/s\"\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "stack.toml")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := StackMonitorAddress(path); got != tc.want {
				t.Fatalf("StackMonitorAddress = %q, want %q", got, tc.want)
			}
			top := DefaultTop()
			top.MonitorAddress = "tcp://given:1"
			if top.FromStack(path); top.MonitorAddress != "tcp://given:1" {
				t.Fatalf("FromStack replaced a given address with %q", top.MonitorAddress)
			}
		})
	}
}
