package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// upSubcommand is "scaler up": the whole stack of one configuration file.
const upSubcommand = "up"

// upOptions bound the supervisor's waits.
type upOptions struct {
	StartTimeout time.Duration // per role: from its start until it accepts connections
	StopTimeout  time.Duration // per role: from SIGTERM until SIGKILL of its process group
}

func upCommand(status *int, stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      upSubcommand,
		Usage:     "start every role that has a section in a configuration file, as one stack; Ctrl-C stops it",
		ArgsUsage: " ",
		Description: "Starts, in dependency order, every role with a section in FILE: [object_storage_server],\n" +
			"[scheduler], [native_worker_adapter], [symphony_worker_adapter], [slurm_worker_adapter], [cluster], [webui].\n" +
			"Each runs as \"scaler ROLE --config FILE\" (the same command line as started by hand), and the\n" +
			"next starts once it accepts connections. Their log lines are prefixed with the role's name.\n" +
			"SIGINT or SIGTERM stops them in reverse order; if one dies, the stack stops and exits 1.\n" +
			"Without --config it runs the built-in configuration (scaler up --dump-config shows it).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "the configuration `FILE` (default: the built-in stack)"},
			&cli.BoolFlag{Name: "dump-config", Usage: "print the effective configuration of every role and exit"},
			&cli.DurationFlag{Name: "start-timeout", Value: 60 * time.Second, Usage: "how long each role may take to accept connections"},
			&cli.DurationFlag{Name: "stop-timeout", Value: 10 * time.Second, Usage: "how long each role may take to stop before its process group is killed"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				*status = exitUsage
				return fmt.Errorf("up takes no arguments, got %s (the file goes after --config)", strings.Join(c.Args().Slice(), " "))
			}
			*status = runUp(c.String("config"), c.Bool("dump-config"),
				upOptions{StartTimeout: c.Duration("start-timeout"), StopTimeout: c.Duration("stop-timeout")}, stdout, stderr)
			return nil
		},
	}
}

// runUp plans the stack of path (or the built-in one) and runs it.
func runUp(path string, dump bool, opt upOptions, stdout, stderr io.Writer) int {
	const prog = "scaler up"
	source := path
	if path == "" {
		// The roles read their configuration from a file, as when started by
		// hand, so the built-in one is written out for them.
		dir, err := os.MkdirTemp("", "scaler-up-")
		if err != nil {
			fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
			return exitFailure
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "builtin.toml")
		if err := os.WriteFile(path, []byte(builtinStack), 0o644); err != nil {
			fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
			return exitFailure
		}
		source = "the built-in configuration"
	} else if abs, err := filepath.Abs(path); err == nil {
		path = abs // the roles may change directory; the file must stay reachable
	}
	steps, notes, err := planStack(path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
		return exitUsage
	}
	if dump {
		fmt.Fprint(stdout, dumpStack(source, steps))
		return exitOK
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: cannot find the scaler executable: %v\n", prog, err)
		return exitFailure
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	out := &lineWriter{w: stdout}
	out.printf("scaler up: starting %s from %s", countRoles(len(steps)), source)
	for _, n := range notes {
		out.printf("scaler up: %s", n)
	}
	return superviseStack(ctx, exe, steps, opt, out, &lineWriter{w: stderr})
}

// lineWriter serialises whole lines from many goroutines onto one writer.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

func (l *lineWriter) write(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Write(p)
}

// upChild is one started role.
type upChild struct {
	step  upStep
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited and been reaped
	state *os.ProcessState
	err   error
	logs  sync.WaitGroup // the goroutines copying its output
}

// exitText says how a process ended, e.g. "exit status 1" or "killed by
// signal SIGKILL".
func (c *upChild) exitText() string {
	if c.state == nil {
		return fmt.Sprintf("could not be waited for: %v", c.err)
	}
	if ws, ok := c.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("killed by signal %s (%d)", strings.ToUpper(unixSignalName(ws.Signal())), int(ws.Signal()))
	}
	return fmt.Sprintf("exit status %d", c.state.ExitCode())
}

func unixSignalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{syscall.SIGKILL: "sigkill", syscall.SIGTERM: "sigterm", syscall.SIGINT: "sigint",
		syscall.SIGSEGV: "sigsegv", syscall.SIGABRT: "sigabrt", syscall.SIGHUP: "sighup", syscall.SIGQUIT: "sigquit"}
	if n, ok := names[s]; ok {
		return n
	}
	return s.String()
}

// superviseStack starts the steps in order, each once it accepts
// connections, and stops them all in reverse order when ctx ends or any of
// them dies. It returns the exit status of scaler up.
func superviseStack(ctx context.Context, exe string, steps []upStep, opt upOptions, out, errw *lineWriter) int {
	width := 0
	for _, s := range steps {
		width = max(width, len(s.Name()))
	}
	died := make(chan *upChild, len(steps))
	var started []*upChild
	status := exitOK
	for _, s := range steps {
		// A port that already answers belongs to someone else: waiting on it
		// would take that process for the role.
		if ep := answering(s.Wait); ep != "" {
			errw.printf("scaler up: error: cannot start %s: %s already accepts connections (another process listens there); stopping the stack", s.Name(), ep)
			status = exitFailure
			break
		}
		c, err := startChild(exe, s, width, out, errw, died)
		if err != nil {
			errw.printf("scaler up: error: cannot start %s: %v; stopping the stack", s.Name(), err)
			status = exitFailure
			break
		}
		started = append(started, c)
		if err := waitListening(ctx, c, opt.StartTimeout); err != nil {
			if ctx.Err() == nil {
				errw.printf("scaler up: error: %v; stopping the stack", err)
				status = exitFailure
			}
			break
		}
		out.printf("scaler up: %-*s  %s  (pid %d)", width, s.Name(), s.Shows, c.cmd.Process.Pid)
	}
	if status == exitOK && ctx.Err() == nil && len(started) == len(steps) {
		out.printf("scaler up: %s running; Ctrl-C or SIGTERM stops them all", countRoles(len(started)))
		select {
		case <-ctx.Done():
		case c := <-died:
			errw.printf("scaler up: error: %s (pid %d) ended by itself: %s; stopping the stack", c.step.Name(), c.cmd.Process.Pid, c.exitText())
			status = exitFailure
		}
	}
	if ctx.Err() != nil {
		out.printf("scaler up: stopping %s (a second Ctrl-C kills them at once)", countRoles(len(started)))
	}
	// The orderly stop is bounded by --stop-timeout per role; a second
	// signal cuts it short.
	again := make(chan os.Signal, 1)
	signal.Notify(again, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(again)
	go func() {
		if _, ok := <-again; ok {
			out.printf("scaler up: second signal: killing every role's process group")
			for _, c := range started {
				_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			}
		}
	}()
	for i := len(started) - 1; i >= 0; i-- {
		stopChild(started[i], opt.StopTimeout, out)
	}
	return status
}

// startChild starts one role as "exe ROLE --config FILE" in a process group
// of its own: a Ctrl-C on the terminal reaches only the supervisor, which
// stops the roles in order, and a role's leftovers can be killed as a group.
// Pdeathsig takes the role down if the supervisor itself is killed.
func startChild(exe string, s upStep, width int, out, errw *lineWriter, died chan<- *upChild) (*upChild, error) {
	cmd := exec.Command(exe, s.Args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c := &upChild{step: s, cmd: cmd, done: make(chan struct{})}
	label := fmt.Sprintf("%-*s | ", width, s.Name())
	var readers []*os.File
	for _, target := range []struct {
		set func(*os.File)
		w   *lineWriter
	}{{func(f *os.File) { cmd.Stdout = f }, out}, {func(f *os.File) { cmd.Stderr = f }, errw}} {
		// Our own pipes, not exec's copying goroutines: Wait then returns
		// when the role exits even if a grandchild still holds the pipe.
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		target.set(w)
		readers = append(readers, r)
		defer w.Close()
		c.logs.Add(1)
		go copyLines(r, label, target.w, &c.logs)
	}
	if err := cmd.Start(); err != nil {
		for _, r := range readers {
			r.Close()
		}
		return nil, err
	}
	go func() {
		c.err = cmd.Wait()
		c.state = cmd.ProcessState
		close(c.done)
		died <- c
	}()
	return c, nil
}

// maxLogLine bounds one log line held in memory; a longer line is passed
// on in pieces, each with the label.
const maxLogLine = 64 << 10

// copyLines writes every line read from r to w with the role's label.
func copyLines(r *os.File, label string, w *lineWriter, wg *sync.WaitGroup) {
	defer wg.Done()
	defer r.Close()
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			buf := make([]byte, 0, len(label)+len(line)+1)
			buf = append(append(buf, label...), line...)
			if buf[len(buf)-1] != '\n' {
				buf = append(buf, '\n')
			}
			w.write(buf)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// answering returns the first endpoint that accepts a TCP connection now.
func answering(endpoints []string) string {
	for _, ep := range endpoints {
		if conn, err := net.DialTimeout("tcp", ep, 500*time.Millisecond); err == nil {
			conn.Close()
			return ep
		}
	}
	return ""
}

// waitListening polls until every endpoint of the role accepts a TCP
// connection. It fails if the role exits first or the timeout passes.
func waitListening(ctx context.Context, c *upChild, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, ep := range c.step.Wait {
		for {
			conn, err := net.DialTimeout("tcp", ep, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case <-c.done:
				return fmt.Errorf("%s (pid %d) ended before it listened on %s: %s", c.step.Name(), c.cmd.Process.Pid, ep, c.exitText())
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s (pid %d) did not listen on %s within %s", c.step.Name(), c.cmd.Process.Pid, ep, timeout)
			}
		}
	}
	return nil
}

// stopChild stops one role: SIGTERM to the role (which stops its own
// children), SIGKILL to its whole process group after the timeout, and
// SIGKILL again to whatever is left in the group once it has exited.
func stopChild(c *upChild, timeout time.Duration, out *lineWriter) {
	pid := c.cmd.Process.Pid
	select {
	case <-c.done:
	default:
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(timeout):
			out.printf("scaler up: %s (pid %d) still running %s after SIGTERM; killing its process group", c.step.Name(), pid, timeout)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			select {
			case <-c.done:
			case <-time.After(5 * time.Second): // SIGKILL cannot be refused; only an unkillable (D-state) process gets here
				out.printf("scaler up: %s (pid %d) did not die after SIGKILL", c.step.Name(), pid)
			}
		}
	}
	// The group outlives its leader while a member lives, so its id cannot
	// have been reused: anything still in it is this role's orphan.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	waitLogs(c, time.Second)
	out.printf("scaler up: stopped %s (pid %d, %s)", c.step.Name(), pid, c.exitText())
}

// waitLogs lets the role's last lines through, but no longer than d: a
// process outside its group may still hold the pipe.
func waitLogs(c *upChild, d time.Duration) {
	done := make(chan struct{})
	go func() { c.logs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// countRoles is "1 role" or "N roles".
func countRoles(n int) string {
	if n == 1 {
		return "1 role"
	}
	return fmt.Sprintf("%d roles", n)
}
