package protocol

//go:generate go tool msgp -tests=false

// Structures shared by several messages. They are not messages themselves
// and have no Kind.

// Resource is a process's resource use.
type Resource struct {
	CPU uint16 `msg:"cpu"` // CPU use in per-mille of one core (1000 = one full core)
	RSS uint64 `msg:"rss"` // resident set size in bytes
}

// Address is a host and TCP port, e.g. where the object storage server
// listens.
type Address struct {
	Host string `msg:"host"` // IP literal or host name
	Port uint16 `msg:"port"`
}

// ProcessorStatus describes one processor of a worker agent.
type ProcessorStatus struct {
	PID         uint32   `msg:"pid"`
	Initialized bool     `msg:"initialized"` // has sent ProcessorInitialized
	HasTask     bool     `msg:"has_task"`    // is bound to a task (running or suspended)
	Suspended   bool     `msg:"suspended"`   // stopped to let a higher-priority task run
	Resource    Resource `msg:"resource"`
}

// TaskProfile is what a worker agent measured while a task ran.
type TaskProfile struct {
	DurationS  float64 `msg:"duration_s"`  // wall time from dispatch to result, seconds
	CPUTimeS   float64 `msg:"cpu_time_s"`  // processor user+system CPU time, seconds
	MemoryPeak uint64  `msg:"memory_peak"` // peak RSS increase over the start, bytes
}
