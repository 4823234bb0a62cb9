// Package config holds one struct per TOML section of Scaler's configuration
// file, with every default written once, and the rules that check a loaded
// configuration. It knows nothing of command lines: the struct tags describe
// each key (long flag name, short forms, help text, choices) and the commands
// package builds its flags from them.
//
// Tags on each field:
//
//	toml:"key"        the TOML key; the long flag is the key with "-" for "_"
//	short:"a,b"       short flag spellings (without the leading "-")
//	alias:"k"         other TOML keys and long flags accepted for this field
//	help:"..."        help text
//	choices:"a,b"     allowed values (case-sensitive unless the field is a level)
//	pos:"true"        the field is the command's positional argument
//	arg:"NAME"        placeholder shown in help for the value
package config

import (
	"runtime"
	"strings"
)

// Section is implemented by every section struct.
type Section interface {
	// SectionName is the TOML table this struct is read from.
	SectionName() string
	// Validate checks the whole section after all sources are merged.
	Validate() error
}

// defaultWorkerCount mirrors upstream's "one worker per core but one", but
// never below one: a 1-core host still gets a worker.
func defaultWorkerCount() int {
	if n := runtime.NumCPU() - 1; n > 0 {
		return n
	}
	return 1
}

var defaultLoggingPaths = []string{"/dev/stdout"}

// Logging is shared by the roles that log.
type Logging struct {
	LoggingPaths      []string `toml:"logging_paths" short:"lp" arg:"PATH..." help:"where to write logs: one or more paths; /dev/stdout or - is the console; files are appended to"`
	LoggingLevel      string   `toml:"logging_level" short:"ll" arg:"LEVEL" choices:"DEBUG,INFO,WARNING,ERROR,CRITICAL,NOTSET" help:"lowest level logged (any case)"`
	LoggingConfigFile string   `toml:"logging_config_file" short:"lc,lcf" arg:"FILE" help:"accepted for compatibility and not applied: it is a Python logging .conf file in upstream; scaler logs through --logging-paths and --logging-level (see README)"`
}

// WorkerSettings are a section's options for the workers it starts, under
// one set of names whatever the section calls its keys (upstream names
// them differently per program); worker.FromSettings is the one mapping
// from them to a worker's configuration. Zero fields are options the
// section does not have.
type WorkerSettings struct {
	SchedulerAddress     string
	ObjectStorageAddress string
	CapabilitiesKey      string // the section's key, for errors
	Capabilities         string // unparsed, as written
	QueueSize            int
	HeartbeatSeconds     int
	TaskTimeoutSeconds   int
	DeathTimeoutSeconds  int
	GCIntervalSeconds    int
	TrimMemoryThreshold  int64
	HardSuspend          bool
	Preload              string
	Logging              Logging
}

// LoggingSettings returns the settings; every section that embeds Logging
// has this method, so callers need not list the sections that log.
func (l *Logging) LoggingSettings() Logging { return *l }

func defaultLogging() Logging {
	return Logging{LoggingPaths: append([]string(nil), defaultLoggingPaths...), LoggingLevel: "INFO"}
}

func (l *Logging) validate() error {
	if _, err := NormalizeLevel(l.LoggingLevel); err != nil {
		return fieldError("logging_level", err)
	}
	lvl, _ := NormalizeLevel(l.LoggingLevel)
	l.LoggingLevel = lvl
	return nil
}

// Scheduler is the [scheduler] section of scaler_scheduler.
type Scheduler struct {
	SchedulerAddress        string `toml:"scheduler_address" pos:"true" arg:"ADDRESS" help:"address to listen on for clients and workers, e.g. tcp://127.0.0.1:6378"`
	IOThreads               int    `toml:"io_threads" arg:"N" help:"zmq I/O threads of the scheduler process"`
	MaxNumberOfTasksWaiting int    `toml:"max_number_of_tasks_waiting" short:"mt" arg:"N" help:"most tasks that may wait in the scheduler while all workers are full; -1 for no limit"`
	ClientTimeoutSeconds    int    `toml:"client_timeout_seconds" short:"ct" arg:"SECONDS" help:"drop a client that sent no heartbeat for this long"`
	WorkerTimeoutSeconds    int    `toml:"worker_timeout_seconds" short:"wt" arg:"SECONDS" help:"drop a worker that sent no heartbeat for this long and re-place its tasks"`
	ObjectRetentionSeconds  int    `toml:"object_retention_seconds" short:"ot" arg:"SECONDS" help:"keep objects of a departed client this long before freeing them"`
	LoadBalanceSeconds      int    `toml:"load_balance_seconds" short:"ls" arg:"SECONDS" help:"interval between load-balance checks"`
	LoadBalanceTriggerTimes int    `toml:"load_balance_trigger_times" short:"lbt" arg:"N" help:"number of identical consecutive balance advices before tasks are moved"`
	EventLoop               string `toml:"event_loop" short:"e" arg:"LOOP" choices:"builtin,uvloop" help:"accepted for compatibility; the Go runtime has a single event loop"`
	Protected               bool   `toml:"protected" short:"p" help:"refuse shutdown requests from clients; -p False turns it off"`
	AllocatePolicy          string `toml:"allocate_policy" short:"ap" arg:"POLICY" choices:"even,capability" help:"how tasks are placed on workers"`
	ObjectStorageAddress    string `toml:"object_storage_address" short:"osa" arg:"ADDRESS" help:"use this object storage server instead of starting one in-process on the scheduler port + 1"`
	ObjectWaitSeconds       int    `toml:"object_storage_wait_timeout_seconds" arg:"SECONDS" help:"in-process object storage: answer a get or duplicate of an object that does not appear within this long \"not found\" (see [object_storage_server] wait_timeout_seconds)"`
	MonitorAddress          string `toml:"monitor_address" short:"ma" arg:"ADDRESS" help:"where to publish status for scaler_top and scaler_ui; default: scheduler port + 2"`
	LocalAddress            string `toml:"local_address" arg:"ADDRESS" help:"also accept clients and workers at this address, e.g. ipc:///tmp/scaler.sock for workers on this machine (cheaper than TCP loopback)"`
	AdapterWebhookURL       string `toml:"adapter_webhook_url" short:"awu" arg:"URL" help:"worker adapter webhook used to scale workers; unset: no adapter"`
	AdapterWebhookTimeout   int    `toml:"adapter_webhook_timeout_seconds" arg:"SECONDS" help:"give up on an adapter webhook call that has not answered within this long (it is retried later)"`
	AdapterStartTimeout     int    `toml:"adapter_start_timeout_seconds" arg:"SECONDS" help:"how long the workers of a group the adapter started may take to connect; until then no other group is asked for, after it a group none of whose workers came is shut down (raise it for batch systems whose jobs wait in a queue, e.g. Slurm)"`
	AdapterIdleSeconds      int    `toml:"adapter_idle_seconds" arg:"SECONDS" help:"shut a worker group the adapter started down only once its workers have had no task for this long"`
	MaxMessageSize          string `toml:"max_message_size" arg:"SIZE" help:"largest message frame a client or worker may send (suffixes K, M, G); a peer that sends a bigger one is disconnected"`
	Logging
}

// DefaultScheduler returns the built-in defaults of [scheduler].
func DefaultScheduler() *Scheduler {
	return &Scheduler{
		IOThreads:               1,
		MaxNumberOfTasksWaiting: -1,
		ClientTimeoutSeconds:    60,
		WorkerTimeoutSeconds:    60,
		ObjectRetentionSeconds:  60,
		ObjectWaitSeconds:       60,
		LoadBalanceSeconds:      1,
		LoadBalanceTriggerTimes: 2,
		AdapterWebhookTimeout:   30,
		AdapterStartTimeout:     60,
		AdapterIdleSeconds:      30,
		EventLoop:               "builtin",
		Protected:               true,
		AllocatePolicy:          "even",
		MaxMessageSize:          defaultSchedulerMaxMessageSize,
		Logging:                 defaultLogging(),
	}
}

func (*Scheduler) SectionName() string { return "scheduler" }

// Monitor is the address of the scheduler's monitor feed: monitor_address,
// else the scheduler's port + 2, where the scheduler binds it; "" when
// neither tells it (no scheduler_address, or not tcp://host:port).
func (c *Scheduler) Monitor() string {
	if c.MonitorAddress != "" {
		return c.MonitorAddress
	}
	a, err := ParseAddress(c.SchedulerAddress)
	if err != nil || a.Scheme != "tcp" {
		return ""
	}
	return a.WithPort(a.Port + 2).String()
}

func (s *Scheduler) Validate() error {
	return firstError(
		requireAddress("scheduler_address", s.SchedulerAddress, "tcp"),
		optionalAddress("object_storage_address", s.ObjectStorageAddress, "tcp"),
		optionalAddress("monitor_address", s.MonitorAddress, "tcp", "ipc", "inproc"),
		optionalAddress("local_address", s.LocalAddress, "ipc", "tcp"),
		atLeast("io_threads", s.IOThreads, 1),
		atLeast("max_number_of_tasks_waiting", s.MaxNumberOfTasksWaiting, -1),
		atLeast("client_timeout_seconds", s.ClientTimeoutSeconds, 1),
		atLeast("worker_timeout_seconds", s.WorkerTimeoutSeconds, 1),
		atLeast("object_retention_seconds", s.ObjectRetentionSeconds, 1),
		atLeast("object_storage_wait_timeout_seconds", s.ObjectWaitSeconds, 1),
		atLeast("load_balance_seconds", s.LoadBalanceSeconds, 1),
		atLeast("load_balance_trigger_times", s.LoadBalanceTriggerTimes, 1),
		oneOf("event_loop", s.EventLoop, "builtin", "uvloop"),
		oneOf("allocate_policy", s.AllocatePolicy, "even", "capability"),
		optionalURL("adapter_webhook_url", s.AdapterWebhookURL),
		atLeast("adapter_webhook_timeout_seconds", s.AdapterWebhookTimeout, 1),
		atLeast("adapter_start_timeout_seconds", s.AdapterStartTimeout, 1),
		atLeast("adapter_idle_seconds", s.AdapterIdleSeconds, 1),
		positiveSize("max_message_size", s.MaxMessageSize),
		s.Logging.validate(),
	)
}

// defaultSchedulerMaxMessageSize: the scheduler's messages are control
// messages with ids and small inline payloads (arguments of at most 64 KiB,
// results of at most 4 KiB, Batches of at most 1 MiB); 64 MiB leaves room for
// a task with many inline arguments or a large graph in one message.
const defaultSchedulerMaxMessageSize = "64M"

// Cluster is the [cluster] section of scaler_cluster.
type Cluster struct {
	SchedulerAddress              string `toml:"scheduler_address" pos:"true" arg:"ADDRESS" help:"scheduler address to connect to, e.g. tcp://127.0.0.1:6378"`
	Preload                       string `toml:"preload" arg:"SPEC" help:"run \"pkg.mod:func(arg1, key=value)\" once in each processor before it takes tasks"`
	NumOfWorkers                  int    `toml:"num_of_workers" short:"n" arg:"N" help:"number of workers to start (default: cores - 1, at least 1)"`
	WorkerNames                   string `toml:"worker_names" short:"wn" arg:"NAMES" help:"comma-separated worker names, one per worker (default: the short host name)"`
	WorkerIDs                     string `toml:"worker_ids" arg:"IDS" help:"comma-separated worker identities with the scheduler, one per worker, used as given, for adapters that must know them in advance (default: \"<pid>|Worker|<name>|<random hex>\")"`
	PerWorkerCapabilities         string `toml:"per_worker_capabilities" short:"pwc" arg:"CAPS" help:"comma-separated capabilities of every worker, e.g. \"linux,cpu=4\""`
	PerWorkerTaskQueueSize        int    `toml:"per_worker_task_queue_size" short:"wtqs" arg:"N" help:"tasks a worker may hold queued"`
	HeartbeatIntervalSeconds      int    `toml:"heartbeat_interval_seconds" short:"hi" arg:"SECONDS" help:"interval between worker heartbeats"`
	TaskTimeoutSeconds            int    `toml:"task_timeout_seconds" short:"tts" arg:"SECONDS" help:"fail a task that runs longer than this; 0 means never"`
	GarbageCollectIntervalSeconds int    `toml:"garbage_collect_interval_seconds" short:"gc" arg:"SECONDS" help:"interval between processor garbage collections"`
	DeathTimeoutSeconds           int    `toml:"death_timeout_seconds" short:"ds,dts" arg:"SECONDS" help:"a worker exits after this long without scheduler contact"`
	TrimMemoryThresholdBytes      int64  `toml:"trim_memory_threshold_bytes" short:"tm" arg:"BYTES" help:"processor memory above which libc is asked to return free memory"`
	EventLoop                     string `toml:"event_loop" short:"el" arg:"LOOP" choices:"builtin,uvloop" help:"accepted for compatibility; the Go runtime has a single event loop"`
	IOThreads                     int    `toml:"io_threads" short:"it" alias:"worker_io_threads" arg:"N" help:"zmq I/O threads of each worker process"`
	HardProcessorSuspend          bool   `toml:"hard_processor_suspend" short:"hps" help:"suspend processors with SIGSTOP instead of cooperatively; may break tasks holding network connections"`
	LogHubAddress                 string `toml:"log_hub_address" short:"la" arg:"ADDRESS" help:"accepted for compatibility and unused: workers log through --logging-paths"`
	ObjectStorageAddress          string `toml:"object_storage_address" short:"osa" alias:"storage_address" arg:"ADDRESS" help:"object storage server address; default: the one the scheduler announces"`
	Python                        string `toml:"python" arg:"PATH" help:"Python interpreter that runs processors (default: $SCALER_PYTHON, else the python beside this executable, else python3)"`
	Relay                         bool   `toml:"relay" help:"the workers reach the scheduler through one connection of the cluster process instead of one each: far fewer messages for a scheduler with many workers, for one local hop more per message"`
	Logging
}

// DefaultCluster returns the built-in defaults of [cluster].
func DefaultCluster() *Cluster {
	return &Cluster{
		NumOfWorkers:                  defaultWorkerCount(),
		PerWorkerTaskQueueSize:        1000,
		HeartbeatIntervalSeconds:      2,
		GarbageCollectIntervalSeconds: 30,
		DeathTimeoutSeconds:           300,
		TrimMemoryThresholdBytes:      1 << 30,
		EventLoop:                     "builtin",
		IOThreads:                     1,
		Logging:                       defaultLogging(),
	}
}

func (*Cluster) SectionName() string { return "cluster" }

func (c *Cluster) Validate() error {
	err := firstError(
		requireAddress("scheduler_address", c.SchedulerAddress, "tcp", "ipc", "inproc"),
		optionalAddress("object_storage_address", c.ObjectStorageAddress, "tcp"),
		atLeast("num_of_workers", c.NumOfWorkers, 1),
		atLeast("per_worker_task_queue_size", c.PerWorkerTaskQueueSize, 1),
		atLeast("heartbeat_interval_seconds", c.HeartbeatIntervalSeconds, 1),
		atLeast("task_timeout_seconds", c.TaskTimeoutSeconds, 0),
		atLeast("garbage_collect_interval_seconds", c.GarbageCollectIntervalSeconds, 1),
		atLeast("death_timeout_seconds", c.DeathTimeoutSeconds, 1),
		atLeast64("trim_memory_threshold_bytes", c.TrimMemoryThresholdBytes, 0),
		atLeast("io_threads", c.IOThreads, 1),
		oneOf("event_loop", c.EventLoop, "builtin", "uvloop"),
		c.Logging.validate(),
	)
	if err != nil {
		return err
	}
	if _, err := ParseCapabilities(c.PerWorkerCapabilities); err != nil {
		return fieldError("per_worker_capabilities", err)
	}
	if c.Preload != "" {
		if _, err := ParsePreload(c.Preload); err != nil {
			return fieldError("preload", err)
		}
	}
	if names := SplitNames(c.WorkerNames); len(names) > 0 && len(names) != c.NumOfWorkers {
		return fieldError("worker_names", errorf("%d names given for %d workers (num_of_workers); give one name per worker", len(names), c.NumOfWorkers))
	}
	if ids := SplitNames(c.WorkerIDs); len(ids) > 0 {
		if len(ids) != c.NumOfWorkers {
			return fieldError("worker_ids", errorf("%d ids given for %d workers (num_of_workers); give one id per worker", len(ids), c.NumOfWorkers))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				return fieldError("worker_ids", errorf("%q is given twice; every worker needs its own id", id))
			}
			seen[id] = true
		}
	}
	return nil
}

// ObjectStorageServer is the [object_storage_server] section.
type ObjectStorageServer struct {
	ObjectStorageAddress string `toml:"object_storage_address" pos:"true" arg:"ADDRESS" help:"address to listen on, e.g. tcp://127.0.0.1:6379"`
	MaxMemory            string `toml:"max_memory" arg:"SIZE" help:"refuse writes beyond this many bytes in total (suffixes K, M, G, T); 0 means no limit"`
	WaitTimeoutSeconds   int    `toml:"wait_timeout_seconds" arg:"SECONDS" help:"answer a get or duplicate of an object that does not appear within this long \"not found\" (a get waits only for a set still in flight on another connection)"`
	MaxMessageSize       string `toml:"max_message_size" arg:"SIZE" help:"largest message frame (an object's bytes) a client may send; a peer that sends a bigger one is disconnected; 0: the machine's memory (a set over max_memory is refused with an error instead)"`
	Logging
}

// DefaultObjectStorageServer returns the built-in defaults.
func DefaultObjectStorageServer() *ObjectStorageServer {
	return &ObjectStorageServer{MaxMemory: "0", MaxMessageSize: "0", WaitTimeoutSeconds: 60, Logging: defaultLogging()}
}

func (*ObjectStorageServer) SectionName() string { return "object_storage_server" }

func (o *ObjectStorageServer) Validate() error {
	if _, err := ParseSize(o.MaxMemory); err != nil {
		return fieldError("max_memory", err)
	}
	if _, err := ParseSize(o.MaxMessageSize); err != nil && o.MaxMessageSize != "" {
		return fieldError("max_message_size", err) // "" is 0: derived
	}
	return firstError(
		requireAddress("object_storage_address", o.ObjectStorageAddress, "tcp"),
		atLeast("wait_timeout_seconds", o.WaitTimeoutSeconds, 1),
		o.Logging.validate(),
	)
}

// MaxMemoryBytes is max_memory in bytes (0: no limit). Valid after Validate.
func (o *ObjectStorageServer) MaxMemoryBytes() int64 {
	n, _ := ParseSize(o.MaxMemory)
	return n
}

// MaxMessageSizeBytes is max_message_size in bytes, 0 when it is to be
// derived from max_memory (storage.Config). Valid after Validate.
func (o *ObjectStorageServer) MaxMessageSizeBytes() int64 {
	n, _ := ParseSize(o.MaxMessageSize)
	return n
}

// WebUI is the [webui] section of scaler_ui.
type WebUI struct {
	MonitorAddress string `toml:"monitor_address" pos:"true" arg:"ADDRESS" help:"scheduler monitor address to subscribe to, e.g. tcp://127.0.0.1:6380"`
	WebHost        string `toml:"web_host" arg:"HOST" help:"host the web server listens on"`
	WebPort        int    `toml:"web_port" alias:"port" arg:"PORT" help:"port the web server listens on"`
}

// DefaultWebUI returns the built-in defaults of [webui].
func DefaultWebUI() *WebUI { return &WebUI{WebHost: "0.0.0.0", WebPort: 50001} }

func (*WebUI) SectionName() string { return "webui" }

func (w *WebUI) Validate() error {
	return firstError(
		requireAddress("monitor_address", w.MonitorAddress, "tcp", "ipc", "inproc"),
		nonEmpty("web_host", w.WebHost),
		port("web_port", w.WebPort),
	)
}

// Top is the [top] section of scaler_top.
type Top struct {
	MonitorAddress string `toml:"monitor_address" pos:"true" arg:"ADDRESS" help:"scheduler monitor address to subscribe to, e.g. tcp://127.0.0.1:6380"`
	Timeout        int    `toml:"timeout" short:"t" arg:"SECONDS" help:"after this long without a message, show that the feed stopped (top keeps waiting for it)"`
}

// DefaultTop returns the built-in defaults of [top].
func DefaultTop() *Top { return &Top{Timeout: 5} }

func (*Top) SectionName() string { return "top" }

// FromStack fills a monitor address that neither [top] nor the command line
// gave from the rest of the file (StackMonitorAddress), so that
// "scaler_top -c FILE" works on the file a stack was started with.
func (t *Top) FromStack(path string) {
	if t.MonitorAddress == "" {
		t.MonitorAddress = StackMonitorAddress(path)
	}
}

func (t *Top) Validate() error {
	return firstError(
		requireAddress("monitor_address", t.MonitorAddress, "tcp", "ipc", "inproc"),
		atLeast("timeout", t.Timeout, 1),
	)
}

// NativeWorkerAdapter is the [native_worker_adapter] section.
type NativeWorkerAdapter struct {
	SchedulerAddress              string `toml:"scheduler_address" pos:"true" arg:"ADDRESS" help:"scheduler address the started workers connect to, e.g. tcp://127.0.0.1:6378"`
	AdapterWebHost                string `toml:"adapter_web_host" alias:"host" arg:"HOST" help:"host of the adapter's HTTP server"`
	AdapterWebPort                int    `toml:"adapter_web_port" short:"p" alias:"port" arg:"PORT" help:"port of the adapter's HTTP server"`
	IOThreads                     int    `toml:"io_threads" arg:"N" help:"accepted for compatibility; this adapter does not apply it (see README)"`
	PerWorkerCapabilities         string `toml:"per_worker_capabilities" short:"pwc" arg:"CAPS" help:"comma-separated capabilities of every worker, e.g. \"linux,cpu=4\""`
	WorkerTaskQueueSize           int    `toml:"worker_task_queue_size" short:"wtqs" arg:"N" help:"tasks a worker may hold queued"`
	MaxWorkers                    int    `toml:"max_workers" short:"mw" arg:"N" help:"most workers the adapter starts; -1 for no limit (default: cores - 1, at least 1)"`
	HeartbeatInterval             int    `toml:"heartbeat_interval" short:"hi" alias:"heartbeat_interval_seconds" arg:"SECONDS" help:"interval between worker heartbeats"`
	TaskTimeoutSeconds            int    `toml:"task_timeout_seconds" short:"tt" arg:"SECONDS" help:"fail a task that runs longer than this; 0 means never"`
	DeathTimeoutSeconds           int    `toml:"death_timeout_seconds" short:"dt" arg:"SECONDS" help:"a worker exits after this long without scheduler contact"`
	GarbageCollectIntervalSeconds int    `toml:"garbage_collect_interval_seconds" short:"gc" arg:"SECONDS" help:"interval between processor garbage collections"`
	TrimMemoryThresholdBytes      int64  `toml:"trim_memory_threshold_bytes" short:"tm" arg:"BYTES" help:"processor memory above which libc is asked to return free memory"`
	HardProcessorSuspend          bool   `toml:"hard_processor_suspend" short:"hps" help:"suspend processors with SIGSTOP instead of cooperatively"`
	EventLoop                     string `toml:"event_loop" short:"e" arg:"LOOP" choices:"builtin,uvloop" help:"accepted for compatibility; the Go runtime has a single event loop"`
	ObjectStorageAddress          string `toml:"object_storage_address" short:"osa" alias:"storage_address" arg:"ADDRESS" help:"object storage server address; default: the one the scheduler announces"`
	Preload                       string `toml:"preload" arg:"SPEC" help:"run \"pkg.mod:func(arg1, key=value)\" once in each processor of the started workers before it takes tasks"`
	Python                        string `toml:"python" arg:"PATH" help:"Python interpreter that runs processors (default: $SCALER_PYTHON, else the python beside this executable, else python3)"`
	Logging
}

// DefaultNativeWorkerAdapter returns the built-in defaults.
func DefaultNativeWorkerAdapter() *NativeWorkerAdapter {
	return &NativeWorkerAdapter{
		AdapterWebHost:                "localhost",
		AdapterWebPort:                8080,
		IOThreads:                     1,
		WorkerTaskQueueSize:           10, // what upstream's command line gives (its dataclass says 1000)
		MaxWorkers:                    defaultWorkerCount(),
		HeartbeatInterval:             2,
		DeathTimeoutSeconds:           300,
		GarbageCollectIntervalSeconds: 30,
		TrimMemoryThresholdBytes:      1 << 30,
		EventLoop:                     "builtin",
		Logging:                       defaultLogging(),
	}
}

func (*NativeWorkerAdapter) SectionName() string { return "native_worker_adapter" }

func (n *NativeWorkerAdapter) Validate() error {
	err := firstError(
		requireAddress("scheduler_address", n.SchedulerAddress, "tcp", "ipc", "inproc"),
		optionalAddress("object_storage_address", n.ObjectStorageAddress, "tcp"),
		nonEmpty("adapter_web_host", n.AdapterWebHost),
		port("adapter_web_port", n.AdapterWebPort),
		atLeast("io_threads", n.IOThreads, 1),
		atLeast("worker_task_queue_size", n.WorkerTaskQueueSize, 1),
		atLeast("max_workers", n.MaxWorkers, -1),
		atLeast("heartbeat_interval", n.HeartbeatInterval, 1),
		atLeast("task_timeout_seconds", n.TaskTimeoutSeconds, 0),
		atLeast("death_timeout_seconds", n.DeathTimeoutSeconds, 1),
		atLeast("garbage_collect_interval_seconds", n.GarbageCollectIntervalSeconds, 1),
		atLeast64("trim_memory_threshold_bytes", n.TrimMemoryThresholdBytes, 0),
		oneOf("event_loop", n.EventLoop, "builtin", "uvloop"),
		n.Logging.validate(),
	)
	if err != nil {
		return err
	}
	if _, err := ParseCapabilities(n.PerWorkerCapabilities); err != nil {
		return fieldError("per_worker_capabilities", err)
	}
	if n.Preload != "" {
		if _, err := ParsePreload(n.Preload); err != nil {
			return fieldError("preload", err)
		}
	}
	return nil
}

// SymphonyWorkerAdapter is the [symphony_worker_adapter] section. Upstream's
// -h short form of --server-http-host clashed with -h/--help; it is dropped.
type SymphonyWorkerAdapter struct {
	SchedulerAddress     string `toml:"scheduler_address" pos:"true" arg:"ADDRESS" help:"scheduler address to connect to"`
	ServerHTTPHost       string `toml:"server_http_host" arg:"HOST" help:"host of the adapter's HTTP server"`
	ServerHTTPPort       int    `toml:"server_http_port" short:"p" arg:"PORT" help:"port of the adapter's HTTP server (required)"`
	ServiceName          string `toml:"service_name" short:"sn" arg:"NAME" help:"Symphony service name (required)"`
	BaseConcurrency      int    `toml:"base_concurrency" short:"n" arg:"N" help:"base task concurrency (default: cores - 1, at least 1)"`
	IOThreads            int    `toml:"io_threads" short:"it" arg:"N" help:"accepted for compatibility; this adapter does not apply it (see README)"`
	WorkerCapabilities   string `toml:"worker_capabilities" short:"wc" arg:"CAPS" help:"comma-separated capabilities of the worker, e.g. \"linux,cpu=4\""`
	WorkerTaskQueueSize  int    `toml:"worker_task_queue_size" short:"wtqs" arg:"N" help:"tasks the worker may hold queued"`
	HeartbeatInterval    int    `toml:"heartbeat_interval" short:"hi" arg:"SECONDS" help:"interval between heartbeats"`
	DeathTimeoutSeconds  int    `toml:"death_timeout_seconds" short:"ds" arg:"SECONDS" help:"exit after this long without scheduler contact"`
	EventLoop            string `toml:"event_loop" short:"el" arg:"LOOP" choices:"builtin,uvloop" help:"accepted for compatibility; the Go runtime has a single event loop"`
	ObjectStorageAddress string `toml:"object_storage_address" short:"osa" arg:"ADDRESS" help:"object storage server address (required)"`
	Python               string `toml:"python" arg:"PATH" help:"Python interpreter that runs the Symphony worker; it must import soamapi (default: $SCALER_PYTHON, else the python beside this executable, else python3)"`
	Logging
}

// DefaultSymphonyWorkerAdapter returns the built-in defaults.
func DefaultSymphonyWorkerAdapter() *SymphonyWorkerAdapter {
	return &SymphonyWorkerAdapter{
		ServerHTTPHost:      "localhost",
		BaseConcurrency:     defaultWorkerCount(),
		IOThreads:           1,
		WorkerTaskQueueSize: 1000,
		HeartbeatInterval:   2,
		DeathTimeoutSeconds: 300,
		EventLoop:           "builtin",
		Logging:             defaultLogging(),
	}
}

func (*SymphonyWorkerAdapter) SectionName() string { return "symphony_worker_adapter" }

func (s *SymphonyWorkerAdapter) Validate() error {
	err := firstError(
		requireAddress("scheduler_address", s.SchedulerAddress, "tcp", "ipc", "inproc"),
		requireAddress("object_storage_address", s.ObjectStorageAddress, "tcp"),
		nonEmpty("service_name", s.ServiceName),
		nonEmpty("server_http_host", s.ServerHTTPHost),
		port("server_http_port", s.ServerHTTPPort),
		atLeast("base_concurrency", s.BaseConcurrency, 1),
		atLeast("io_threads", s.IOThreads, 1),
		atLeast("worker_task_queue_size", s.WorkerTaskQueueSize, 1),
		atLeast("heartbeat_interval", s.HeartbeatInterval, 1),
		atLeast("death_timeout_seconds", s.DeathTimeoutSeconds, 1),
		oneOf("event_loop", s.EventLoop, "builtin", "uvloop"),
		s.Logging.validate(),
	)
	if err != nil {
		return err
	}
	if _, err := ParseCapabilities(s.WorkerCapabilities); err != nil {
		return fieldError("worker_capabilities", err)
	}
	return nil
}

// SlurmWorkerAdapter is the [slurm_worker_adapter] section: a worker
// adapter that submits one Slurm batch job per worker group, running
// "scaler cluster" on the allocated node (docs/slurm.md).
type SlurmWorkerAdapter struct {
	SchedulerAddress      string `toml:"scheduler_address" pos:"true" arg:"ADDRESS" help:"scheduler address the workers on the Slurm nodes connect to, e.g. tcp://login1:6378 (not 127.0.0.1 unless the nodes are this machine)"`
	AdapterWebHost        string `toml:"adapter_web_host" alias:"host" arg:"HOST" help:"host of the adapter's HTTP server"`
	AdapterWebPort        int    `toml:"adapter_web_port" short:"p" alias:"port" arg:"PORT" help:"port of the adapter's HTTP server"`
	MaxJobs               int    `toml:"max_jobs" short:"mj" arg:"N" help:"most Slurm jobs (pending, running or ending) the adapter has at once; -1 for no limit"`
	WorkersPerJob         int    `toml:"workers_per_job" short:"wpj" arg:"N" help:"workers each job runs (default: cpus_per_job)"`
	Partition             string `toml:"partition" arg:"NAME" help:"Slurm partition to submit to (sbatch --partition; default: the cluster's default partition)"`
	Account               string `toml:"account" arg:"NAME" help:"Slurm account to charge (sbatch --account)"`
	TimeLimit             string `toml:"time_limit" arg:"TIME" help:"wall-clock limit of each job in Slurm's format, e.g. 60 or 1-00:00:00 (sbatch --time; default: the partition's)"`
	CPUsPerJob            int    `toml:"cpus_per_job" arg:"N" help:"CPUs of each job (sbatch --cpus-per-task)"`
	MemoryPerJob          string `toml:"memory_per_job" arg:"SIZE" help:"memory of each job in Slurm's format, e.g. 4G (sbatch --mem; default: the partition's)"`
	JobName               string `toml:"job_name" arg:"NAME" help:"name of the jobs in squeue; the adapter adds a suffix of its own to find its jobs"`
	JobOutput             string `toml:"job_output" arg:"PATH" help:"where each job's output goes, with Slurm's %j for the job id (sbatch --output; default: Slurm's slurm-%j.out in the adapter's directory)"`
	SbatchArguments       string `toml:"sbatch_arguments" arg:"ARGS" help:"more sbatch options, split at spaces, e.g. \"--qos=short --exclusive\""`
	ScalerBinary          string `toml:"scaler_binary" arg:"PATH" help:"path of the scaler binary on the nodes (default: this executable's path; put it on a shared file system)"`
	Python                string `toml:"python" arg:"PATH" help:"Python interpreter on the nodes that runs processors and has the scaler package (default: $SCALER_PYTHON, else the python beside this executable, else python3)"`
	PollSeconds           int    `toml:"poll_seconds" arg:"SECONDS" help:"interval between squeue checks for jobs Slurm ended by itself"`
	StopGraceSeconds      int    `toml:"stop_grace_seconds" arg:"SECONDS" help:"a running job being shut down gets SIGTERM to its cluster, which stops its workers in order; still running this long after, it is cancelled outright (scancel)"`
	PerWorkerCapabilities string `toml:"per_worker_capabilities" short:"pwc" arg:"CAPS" help:"comma-separated capabilities of every worker, e.g. \"linux,cpu=4\""`
	WorkerTaskQueueSize   int    `toml:"worker_task_queue_size" short:"wtqs" arg:"N" help:"tasks a worker may hold queued"`
	HeartbeatInterval     int    `toml:"heartbeat_interval" short:"hi" arg:"SECONDS" help:"interval between worker heartbeats"`
	TaskTimeoutSeconds    int    `toml:"task_timeout_seconds" short:"tt" arg:"SECONDS" help:"fail a task that runs longer than this; 0 means never"`
	DeathTimeoutSeconds   int    `toml:"death_timeout_seconds" short:"dt" arg:"SECONDS" help:"a worker exits after this long without scheduler contact"`
	ObjectStorageAddress  string `toml:"object_storage_address" short:"osa" arg:"ADDRESS" help:"object storage server address for the workers; default: the one the scheduler announces"`
	Relay                 bool   `toml:"relay" help:"each job's workers reach the scheduler through one connection of their cluster (scaler_cluster --relay): far fewer messages for a scheduler with many workers, for one local hop more per message"`
	Preload               string `toml:"preload" arg:"SPEC" help:"run \"pkg.mod:func(arg1, key=value)\" once in each processor of the started workers before it takes tasks"`
	Logging
}

// DefaultSlurmWorkerAdapter returns the built-in defaults.
func DefaultSlurmWorkerAdapter() *SlurmWorkerAdapter {
	return &SlurmWorkerAdapter{
		AdapterWebHost:      "localhost",
		AdapterWebPort:      8080,
		MaxJobs:             4,
		CPUsPerJob:          1,
		JobName:             "scaler-workers",
		PollSeconds:         5,
		StopGraceSeconds:    30,
		WorkerTaskQueueSize: 10,
		HeartbeatInterval:   2,
		DeathTimeoutSeconds: 300,
		Logging:             defaultLogging(),
	}
}

func (*SlurmWorkerAdapter) SectionName() string { return "slurm_worker_adapter" }

func (s *SlurmWorkerAdapter) Validate() error {
	err := firstError(
		requireAddress("scheduler_address", s.SchedulerAddress, "tcp"),
		optionalAddress("object_storage_address", s.ObjectStorageAddress, "tcp"),
		nonEmpty("adapter_web_host", s.AdapterWebHost),
		port("adapter_web_port", s.AdapterWebPort),
		atLeast("max_jobs", s.MaxJobs, -1),
		atLeast("workers_per_job", s.WorkersPerJob, 0),
		atLeast("cpus_per_job", s.CPUsPerJob, 1),
		nonEmpty("job_name", s.JobName),
		atLeast("poll_seconds", s.PollSeconds, 1),
		atLeast("stop_grace_seconds", s.StopGraceSeconds, 1),
		atLeast("worker_task_queue_size", s.WorkerTaskQueueSize, 1),
		atLeast("heartbeat_interval", s.HeartbeatInterval, 1),
		atLeast("task_timeout_seconds", s.TaskTimeoutSeconds, 0),
		atLeast("death_timeout_seconds", s.DeathTimeoutSeconds, 1),
		s.Logging.validate(),
	)
	if err != nil {
		return err
	}
	if s.MaxJobs == 0 {
		return fieldError("max_jobs", errorf("0 would refuse every start; give at least 1, or -1 for no limit"))
	}
	if strings.ContainsAny(s.JobName, " ,'\"\n") {
		return fieldError("job_name", errorf("%q: no spaces, commas or quotes (squeue --name takes a list)", s.JobName))
	}
	if _, err := ParseCapabilities(s.PerWorkerCapabilities); err != nil {
		return fieldError("per_worker_capabilities", err)
	}
	if s.Preload != "" {
		if _, err := ParsePreload(s.Preload); err != nil {
			return fieldError("preload", err)
		}
	}
	return nil
}

// WorkerSettings are the options of every worker of the cluster.
func (c *Cluster) WorkerSettings() WorkerSettings {
	return WorkerSettings{
		SchedulerAddress:     c.SchedulerAddress,
		ObjectStorageAddress: c.ObjectStorageAddress,
		CapabilitiesKey:      "per_worker_capabilities",
		Capabilities:         c.PerWorkerCapabilities,
		QueueSize:            c.PerWorkerTaskQueueSize,
		HeartbeatSeconds:     c.HeartbeatIntervalSeconds,
		TaskTimeoutSeconds:   c.TaskTimeoutSeconds,
		DeathTimeoutSeconds:  c.DeathTimeoutSeconds,
		GCIntervalSeconds:    c.GarbageCollectIntervalSeconds,
		TrimMemoryThreshold:  c.TrimMemoryThresholdBytes,
		HardSuspend:          c.HardProcessorSuspend,
		Preload:              c.Preload,
		Logging:              c.Logging,
	}
}

// WorkerSettings are the options of every worker the adapter starts.
func (n *NativeWorkerAdapter) WorkerSettings() WorkerSettings {
	return WorkerSettings{
		SchedulerAddress:     n.SchedulerAddress,
		ObjectStorageAddress: n.ObjectStorageAddress,
		CapabilitiesKey:      "per_worker_capabilities",
		Capabilities:         n.PerWorkerCapabilities,
		QueueSize:            n.WorkerTaskQueueSize,
		HeartbeatSeconds:     n.HeartbeatInterval,
		TaskTimeoutSeconds:   n.TaskTimeoutSeconds,
		DeathTimeoutSeconds:  n.DeathTimeoutSeconds,
		GCIntervalSeconds:    n.GarbageCollectIntervalSeconds,
		TrimMemoryThreshold:  n.TrimMemoryThresholdBytes,
		HardSuspend:          n.HardProcessorSuspend,
		Preload:              n.Preload,
		Logging:              n.Logging,
	}
}

// WorkerSettings are the options of the one worker the adapter starts; the
// options upstream's Symphony adapter does not have stay zero.
func (s *SymphonyWorkerAdapter) WorkerSettings() WorkerSettings {
	return WorkerSettings{
		SchedulerAddress:     s.SchedulerAddress,
		ObjectStorageAddress: s.ObjectStorageAddress,
		CapabilitiesKey:      "worker_capabilities",
		Capabilities:         s.WorkerCapabilities,
		QueueSize:            s.WorkerTaskQueueSize,
		HeartbeatSeconds:     s.HeartbeatInterval,
		DeathTimeoutSeconds:  s.DeathTimeoutSeconds,
		Logging:              s.Logging,
	}
}
