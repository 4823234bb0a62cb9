package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeTOML(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
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
	cases := []struct {
		in   string
		want map[string]int64
		bad  bool
	}{
		{"", map[string]int64{}, false},
		{"linux,cpu=8", map[string]int64{"linux": -1, "cpu": 8}, false},
		{" gpu=2, linux ", map[string]int64{"gpu": 2, "linux": -1}, false},
		{"linux,cpu=8,", map[string]int64{"linux": -1, "cpu": 8}, false},
		{"b=", map[string]int64{"b": -1}, false},
		{"gpu=two", nil, true},
		{"=3", nil, true},
	}
	for _, tc := range cases {
		got, err := ParseCapabilities(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("ParseCapabilities(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"0", 0, false}, {"1024", 1024, false}, {"64K", 64 << 10, false}, {"512m", 512 << 20, false},
		{"2G", 2 << 30, false}, {"1T", 1 << 40, false}, {"512MiB", 512 << 20, false}, {"10B", 10, false},
		{"", 0, true}, {"-1", 0, true}, {"12Q", 0, true}, {"G", 0, true},
	}
	for _, tc := range cases {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestParseAddress(t *testing.T) {
	cases := []struct {
		in   string
		want Address
		bad  bool
	}{
		{"tcp://127.0.0.1:8516", Address{"tcp", "127.0.0.1", 8516}, false},
		{"tcp://localhost:1", Address{"tcp", "localhost", 1}, false},
		{"tcp://[::1]:5", Address{"tcp", "::1", 5}, false},
		{"tcp://*:0", Address{"tcp", "*", 0}, false},
		{"ipc:///tmp/x", Address{"ipc", "/tmp/x", 0}, false},
		{"inproc://a", Address{"inproc", "a", 0}, false},
		{"127.0.0.1:1", Address{}, true},
		{"tcp://127.0.0.1", Address{}, true},
		{"tcp://127.0.0.1:99999", Address{}, true},
		{"udp://1.2.3.4:5", Address{}, true},
		{"tcp://:5", Address{}, true},
		{"ipc://", Address{}, true},
	}
	for _, tc := range cases {
		got, err := ParseAddress(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseAddress(%q) = %+v, %v", tc.in, got, err)
		}
		if !tc.bad && got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
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
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("error %v, want it to mention %q", err, tc.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
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
