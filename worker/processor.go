package worker

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opengris/scaler/internal/procstat"
)

// The agent and each processor talk over a Unix stream socket pair created
// when the processor is spawned (the processor gets its end as fd 3). Each
// message is a 4-byte little-endian length followed by one frame (kind byte
// + msgpack body). It is private to the two processes and needs no address
// or identity. The agent's end is non-blocking and watched by the agent's
// poller, so frames are read and written by the agent loop itself, with no
// goroutine in between.

// maxProcessorFrame bounds a frame from a processor (results are object ids
// plus at most a small inline copy).
const maxProcessorFrame = 64 << 20

// processor is one Python processor process, owned by the agent loop.
type processor struct {
	ident string // a name for logs and the agent's map
	cmd   *exec.Cmd
	pid   int

	initialized bool
	task        *task         // running or suspended task; nil when idle
	ahead       []*task       // the next tasks, sent before task ended, in order (docs/protocol.md §7.5)
	quick       bool          // its last task took less than aheadBelow, unsuspended: send tasks ahead
	lastRun     time.Duration // how long its last task took
	suspended   bool
	killed      bool // the agent asked it to die; its exit is expected
	exited      bool

	fd       int      // agent's end of the channel, -1 once closed
	in       []byte   // bytes read and not yet handled (a partial frame)
	out      []byte   // bytes not yet written (the socket buffer was full) ...
	outOff   int      // ... from out[outOff:]
	deferred [][]byte // cache evictions held back while suspended
	stat     *procstat.Process
	cpu      procstat.CPUMeter
	rss      uint64    // RSS at the end of its last task (the next task's baseline; see rssFresh)
	rssAt    time.Time // when rss was read
	lastCPU  uint64    // its CPU time then

	writeBlocked bool // p.out is waiting for the channel to become writable

	// Bytes ever queued to and written into the channel: a task whose
	// frame was not wholly written when the processor died never reached
	// it, and goes back to the queue instead of failing (received).
	queued, written uint64
}

// noChannel is a task's sentUpTo when its frame was queued to a processor
// whose channel was already closed: it never reaches that processor.
const noChannel = ^uint64(0)

// received reports whether t's frame went wholly into p's channel while
// p's end of it was open. A task that did not cannot have run there, so
// a death of p is not the task's fault.
func (p *processor) received(t *task) bool { return p.written >= t.sentUpTo }

// procExit reports that a processor process ended.
type procExit struct {
	p   *processor
	err error // from Wait
}

// processorCommand builds the command line of a processor.
func (a *agent) processorCommand(ident string) *exec.Cmd {
	args := []string{
		"-m", "scaler.worker.processor",
		"--fd", "3",
		"--gc-interval", strconv.FormatFloat(a.cfg.GCInterval.Seconds(), 'f', -1, 64),
		"--trim-memory-threshold", strconv.FormatInt(a.cfg.TrimMemoryThreshold, 10),
		"--logging-level", a.cfg.LoggingLevel,
	}
	if a.cfg.Preload != "" {
		args = append(args, "--preload", a.cfg.Preload)
	}
	// The processor logs to "<path>-<pid>" for every path but the console
	// (/dev/stdout or -); no paths: only errors, to stderr.
	args = append(args, "--logging-paths")
	for _, p := range a.cfg.LoggingPaths {
		if strings.HasPrefix(p, "-") && p != "-" {
			p = "./" + p // not an option to argparse
		}
		args = append(args, p)
	}
	cmd := exec.Command(a.cfg.Python, args...)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.Env = processorEnv(os.Environ(), a.cfg.WorkerID)
	return cmd
}

// processorMallocTunables are internal/malloctune's settings (its C
// constructor sets the same with mallopt) in GLIBC_TUNABLES form, which glibc
// applies before the processor's first malloc. A processor moves large
// objects too (pyzmq's io thread receives arguments into malloc'd buffers,
// pickle allocates results), and with glibc's defaults every such block
// over 32 MiB is a fresh mmap that page-faults its whole size in (measured
// in one Python process: pickle.dumps+loads of 64 MiB, 326 ms with the
// defaults, 31 ms with these). The processor gives freed memory back
// itself (--trim-memory-threshold).
const processorMallocTunables = "glibc.malloc.mmap_max=0:glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=268435456"

// processorEnv is a processor's environment: the worker's, its id, and
// processorMallocTunables unless GLIBC_TUNABLES already sets a malloc
// tunable (the user's choice then stands, as for the scaler binary itself);
// other tunables in it are kept.
func processorEnv(environ []string, workerID string) []string {
	env := append(slices.Clip(environ), "SCALER_WORKER_ID="+workerID)
	current := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GLIBC_TUNABLES="); ok {
			current = v // the last one counts, as for exec
		}
	}
	switch {
	case strings.Contains(current, "glibc.malloc."):
	case current == "":
		env = append(env, "GLIBC_TUNABLES="+processorMallocTunables)
	default:
		env = append(env, "GLIBC_TUNABLES="+current+":"+processorMallocTunables)
	}
	return env
}

// spawn starts a new processor; its exit is reported on a.exits.
func (a *agent) spawn() (*processor, error) {
	a.procSeq++
	p := &processor{ident: "p" + strconv.FormatUint(a.procSeq, 10), fd: -1}
	p.cmd = a.processorCommand(p.ident)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("processor channel: %w", err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "processor-channel")
	p.cmd.ExtraFiles = []*os.File{theirs}
	err = startChild(p.cmd, syscall.SIGKILL)
	_ = theirs.Close()
	if err == nil {
		err = syscall.SetNonblock(fds[0], true)
	}
	if err == nil {
		err = a.poller.Add(fds[0], false)
	}
	if err != nil {
		_ = syscall.Close(fds[0])
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		return nil, fmt.Errorf("starting processor %s: %w", a.cfg.Python, err)
	}
	p.fd = fds[0]
	p.pid = p.cmd.Process.Pid
	p.stat = procstat.Open(p.pid)
	a.procs[p.ident] = p
	a.byFd[p.fd] = p
	exits, quit, waker := a.exits, a.quit, a.waker
	go func() {
		err := p.cmd.Wait()
		select {
		case exits <- procExit{p: p, err: err}:
			waker.Wake()
		case <-quit:
		}
	}()
	a.log.Debug().Int("pid", p.pid).Msg("processor started")
	return p, nil
}

// closeChannel stops watching and closes p's end of the channel.
func (a *agent) closeChannel(p *processor) {
	if p.fd < 0 {
		return
	}
	a.poller.Remove(p.fd)
	delete(a.byFd, p.fd)
	_ = syscall.Close(p.fd)
	p.fd = -1
	p.in, p.out, p.outOff = nil, nil, 0
}

// readProcessor reads what p has sent and handles every whole frame. At
// end of file the channel is closed; the process's exit is reported
// separately (a.exits).
func (a *agent) readProcessor(p *processor) {
	for p.fd >= 0 {
		if len(p.in) == cap(p.in) {
			grown := make([]byte, len(p.in), max(64<<10, 2*cap(p.in)))
			copy(grown, p.in)
			p.in = grown
		}
		n, err := syscall.Read(p.fd, p.in[len(p.in):cap(p.in)])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return
		}
		if n <= 0 {
			a.closeChannel(p)
			return
		}
		p.in = p.in[:len(p.in)+n]
		if !a.handleProcessorFrames(p) {
			return
		}
		if len(p.in) < cap(p.in) {
			return // the read did not fill the buffer: nothing more waits
		}
	}
}

// handleProcessorFrames handles the whole frames at the front of p.in and
// keeps the rest. It returns false if the channel was closed meanwhile.
func (a *agent) handleProcessorFrames(p *processor) bool {
	b := p.in
	for len(b) >= 4 {
		n := binary.LittleEndian.Uint32(b)
		if n == 0 || n > maxProcessorFrame {
			a.log.Warn().Int("pid", p.pid).Uint32("length", n).Msg("bad frame length from a processor; dropping its channel")
			a.closeChannel(p)
			return false
		}
		if uint64(len(b)) < 4+uint64(n) {
			break
		}
		a.onProcessor(p, b[4:4+n]) // decoding copies what it keeps
		b = b[4+n:]
		if p.fd < 0 {
			return false
		}
	}
	if len(b) == 0 {
		p.in = p.in[:0]
	} else if len(b) < len(p.in) {
		p.in = p.in[:copy(p.in, b)]
	}
	return true
}

// writeProcessor sends one frame to p. What the socket does not take now
// waits in p.out and goes out when the loop finds the channel writable, so
// a busy processor never blocks the agent.
func (a *agent) writeProcessor(p *processor, frame []byte) {
	a.queueProcessor(p, frame)
	a.flushProcessor(p)
}

// queueProcessor adds one frame to p.out without sending it: several frames
// queued so go out in one write (flushProcessor), which the processor takes
// in with one read.
// It returns p's count of bytes queued after the frame, or noChannel if
// the channel is closed and the frame dropped.
func (a *agent) queueProcessor(p *processor, frame []byte) uint64 {
	if p.exited || p.fd < 0 {
		return noChannel
	}
	p.out = binary.LittleEndian.AppendUint32(p.out, uint32(len(frame)))
	p.out = append(p.out, frame...)
	p.queued += uint64(4 + len(frame))
	return p.queued
}

// flushProcessor writes as much of p.out as the socket takes.
func (a *agent) flushProcessor(p *processor) {
	for p.outOff < len(p.out) && p.fd >= 0 {
		n, err := syscall.Write(p.fd, p.out[p.outOff:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			break
		}
		if err != nil {
			a.log.Warn().Err(err).Int("pid", p.pid).Msg("send to processor failed; replacing it")
			a.closeChannel(p)
			a.kill(p)
			return
		}
		p.outOff += n
		p.written += uint64(n)
	}
	if p.outOff == len(p.out) {
		p.out, p.outOff = p.out[:0], 0
	}
	if blocked := len(p.out) > 0; blocked != p.writeBlocked && p.fd >= 0 {
		p.writeBlocked = blocked
		_ = a.poller.SetWrite(p.fd, blocked)
	}
}

// kill stops a processor: SIGTERM (plus SIGCONT, so that a stopped one can
// act on it), then SIGKILL after the kill delay if it is still there.
func (a *agent) kill(p *processor) {
	a.requeueAhead(p)
	if p.killed || p.exited {
		p.killed = true
		return
	}
	p.killed = true
	proc := p.cmd.Process
	_ = proc.Signal(syscall.SIGTERM)
	_ = proc.Signal(syscall.SIGCONT)
	time.AfterFunc(a.cfg.KillDelay, func() { _ = proc.Signal(syscall.SIGKILL) })
}

// signalSuspension sends the processor the cooperative signal (the
// processor's handler pauses or resumes the task), or the hard one with
// HardSuspend (the kernel stops or continues the whole process).
func (a *agent) signalSuspension(p *processor, cooperative, hard syscall.Signal) {
	sig := cooperative
	if a.cfg.HardSuspend {
		sig = hard
	}
	_ = p.cmd.Process.Signal(sig)
}

// suspendProc pauses a processor's running task.
func (a *agent) suspendProc(p *processor) {
	p.suspended = true
	a.signalSuspension(p, syscall.SIGUSR1, syscall.SIGSTOP)
}

// resumeProc continues a suspended processor.
func (a *agent) resumeProc(p *processor) {
	p.suspended = false
	a.signalSuspension(p, syscall.SIGUSR2, syscall.SIGCONT)
	for _, frame := range p.deferred {
		a.writeProcessor(p, frame)
	}
	p.deferred = nil
}

// describeExit turns a Wait error into words for logs and results.
func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + ws.Signal().String()
		}
		return "exit status " + strconv.Itoa(ee.ExitCode())
	}
	return err.Error()
}
