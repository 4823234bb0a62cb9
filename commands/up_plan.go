package commands

import (
	_ "embed"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/opengris/scaler/config"
)

// builtinStack is the configuration scaler up runs without -c, and the
// container image's default command: every port on the wildcard address so
// that "docker run -p 8516-8518:8516-8518 -p 8081:8081" reaches them. Peers
// that are told a wildcard storage address use the host they reached the
// scheduler at (docs/scheduler.md), so clients outside the container work.
//
//go:embed up_builtin.toml
var builtinStack string

// upStep is one role of a stack, as scaler up starts it.
type upStep struct {
	Role   *role
	Config config.Section // effective configuration, as the role itself will load it
	Args   []string       // command line after the executable: the seed's "ROLE --config FILE"
	Wait   []string       // host:port it must accept TCP connections on before the next starts
	Shows  string         // what the ready line says: its addresses
}

// Name is the label of the role's log lines and messages: its TOML section.
func (s upStep) Name() string { return s.Config.SectionName() }

// upOrder is the dependency order: object storage before the scheduler that
// uses it; the scheduler before everything that connects to it; adapters
// before the cluster so that an autoscaling scheduler finds its webhook;
// the web UI last, once there is something to show. Stopping goes the
// other way. [top] is absent on purpose: it is a terminal program.
var upOrder = []string{
	"object_storage_server",
	"scheduler",
	"worker_adapter_native",
	"worker_adapter_symphony",
	"worker_adapter_slurm",
	"cluster",
	"ui",
}

// upNotStarted says why a known section does not become a role of the stack.
var upNotStarted = map[string]string{
	"top": "[top] is not started: scaler_top draws on a terminal; run scaler_top --config FILE in one",
}

// planStack decides which roles the file at path asks for, in what order,
// with which command lines and addresses. It reads only the file; nothing
// is started. notes are lines to print (sections that are not started).
func planStack(path string) (steps []upStep, notes []string, err error) {
	sections, err := config.SectionsIn(path)
	if err != nil {
		return nil, nil, err
	}
	present := map[string]bool{}
	for _, s := range sections {
		present[s] = true
	}
	known := map[string]bool{}
	for _, sub := range upOrder {
		r := roleByName(sub)
		section := r.newSection().SectionName()
		known[section] = true
		if !present[section] {
			continue
		}
		cfg := r.newSection()
		fromFile, err := config.LoadFile(path, cfg)
		if err != nil {
			return nil, nil, err
		}
		if err := cfg.Validate(); err != nil {
			return nil, nil, explain(err, path, section, fromFile, nil)
		}
		wait, shows, err := upEndpoints(cfg)
		if err != nil {
			return nil, nil, &config.FileError{Path: path, Section: section, Err: err}
		}
		steps = append(steps, upStep{Role: r, Config: cfg, Args: []string{r.sub, "--config", path}, Wait: wait, Shows: shows})
	}
	for _, s := range sections {
		if why, ok := upNotStarted[s]; ok {
			notes = append(notes, why)
		} else if !known[s] {
			notes = append(notes, fmt.Sprintf("[%s] is not a section of any scaler role; ignored", s))
		}
	}
	if len(steps) == 0 {
		return nil, notes, fmt.Errorf("%s: no section of a role scaler up starts ([%s])", path, strings.Join(upSections(), "], ["))
	}
	return steps, notes, nil
}

func upSections() []string {
	var out []string
	for _, sub := range upOrder {
		out = append(out, roleByName(sub).newSection().SectionName())
	}
	sort.Strings(out)
	return out
}

// upEndpoints returns the TCP endpoints a role listens on (to wait for) and
// the addresses its ready line shows.
func upEndpoints(section config.Section) (wait []string, shows string, err error) {
	tcp := func(key, addr string) (config.Address, error) {
		a, err := config.ParseAddress(addr)
		if err != nil {
			return a, fmt.Errorf("%s: %v", key, err)
		}
		if a.Scheme == "tcp" && a.Port == 0 {
			return a, fmt.Errorf("%s %s: port 0 (any free port) cannot be used in a stack, whose roles must find each other; give a port", key, addr)
		}
		return a, nil
	}
	switch c := section.(type) {
	case *config.ObjectStorageServer:
		a, err := tcp("object_storage_address", c.ObjectStorageAddress)
		if err != nil {
			return nil, "", err
		}
		return []string{dialHostPort(a.Host, a.Port)}, a.String(), nil
	case *config.Scheduler:
		a, err := tcp("scheduler_address", c.SchedulerAddress)
		if err != nil {
			return nil, "", err
		}
		wait = []string{dialHostPort(a.Host, a.Port)}
		storage := "object storage in-process " + a.WithPort(a.Port+1).String()
		if c.ObjectStorageAddress != "" {
			storage = "object storage " + c.ObjectStorageAddress
		} else {
			wait = append(wait, dialHostPort(a.Host, a.Port+1))
		}
		monitor, err := tcp("monitor_address", c.Monitor())
		if err != nil {
			return nil, "", err
		}
		if monitor.Scheme == "tcp" {
			wait = append(wait, dialHostPort(monitor.Host, monitor.Port))
		}
		return wait, fmt.Sprintf("%s (%s, monitor %s)", a, storage, monitor), nil
	case *config.Cluster:
		// A cluster listens on nothing: its workers connect to the scheduler.
		return nil, fmt.Sprintf("%d workers -> %s", c.NumOfWorkers, c.SchedulerAddress), nil
	case *config.WebUI:
		return []string{dialHostPort(c.WebHost, c.WebPort)}, fmt.Sprintf("http://%s/ (monitor %s)", net.JoinHostPort(c.WebHost, strconv.Itoa(c.WebPort)), c.MonitorAddress), nil
	case *config.NativeWorkerAdapter:
		return []string{dialHostPort(c.AdapterWebHost, c.AdapterWebPort)}, fmt.Sprintf("http://%s/ (workers -> %s)", net.JoinHostPort(c.AdapterWebHost, strconv.Itoa(c.AdapterWebPort)), c.SchedulerAddress), nil
	case *config.SlurmWorkerAdapter:
		return []string{dialHostPort(c.AdapterWebHost, c.AdapterWebPort)}, fmt.Sprintf("http://%s/ (Slurm jobs' workers -> %s)", net.JoinHostPort(c.AdapterWebHost, strconv.Itoa(c.AdapterWebPort)), c.SchedulerAddress), nil
	case *config.SymphonyWorkerAdapter:
		return []string{dialHostPort(c.ServerHTTPHost, c.ServerHTTPPort)}, fmt.Sprintf("http://%s/ (worker -> %s)", net.JoinHostPort(c.ServerHTTPHost, strconv.Itoa(c.ServerHTTPPort)), c.SchedulerAddress), nil
	}
	return nil, "", fmt.Errorf("scaler up cannot start section [%s]", section.SectionName())
}

// dialHostPort is where to connect to reach a listener: a wildcard host is
// reached on the loopback address.
func dialHostPort(host string, port int) string {
	switch host {
	case "", "*", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// renderPlan is the plan as text (the golden files of the plan tests): one
// block per role with its command line, what it waits for and shows.
func renderPlan(steps []upStep, notes []string) string {
	var b strings.Builder
	for i, s := range steps {
		fmt.Fprintf(&b, "%d. %s\n   run:   scaler %s\n", i+1, s.Name(), strings.Join(s.Args, " "))
		if len(s.Wait) > 0 {
			fmt.Fprintf(&b, "   wait:  tcp %s\n", strings.Join(s.Wait, ", "))
		} else {
			fmt.Fprintf(&b, "   wait:  nothing (listens on no port)\n")
		}
		fmt.Fprintf(&b, "   shows: %s\n", s.Shows)
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}

// dumpStack is --dump-config of scaler up: the effective configuration of
// every role, in start order; the whole output is a valid --config file.
func dumpStack(source string, steps []upStep) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# scaler up: effective configuration of every role, from %s, in start order\n", source)
	for _, s := range steps {
		fmt.Fprintf(&b, "\n# %s\n%s", s.Role.Program(), config.Dump(s.Config))
	}
	return b.String()
}
