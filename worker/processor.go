package worker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The agent and each processor talk over a Unix stream socket pair created
// when the processor is spawned (the processor gets its end as fd 3). Each
// message is a 4-byte little-endian length followed by one frame (kind byte
// + msgpack body). It is private to the two processes, needs no address or
// identity, and reads go through Go's netpoller instead of a zmq socket's
// owner goroutine, which matters at thousands of tasks per second.

// maxProcessorFrame bounds a frame from a processor (results are object ids
// plus at most a small inline copy).
const maxProcessorFrame = 64 << 20

// procMsg is one frame read from a processor.
type procMsg struct {
	p     *processor
	frame []byte
}

// processor is one Python processor process, owned by the agent loop.
type processor struct {
	ident string // its zmq identity on the agent's ROUTER
	cmd   *exec.Cmd
	pid   int

	initialized bool
	task        *task // running or suspended task; nil when idle
	suspended   bool
	killed      bool // the agent asked it to die; its exit is expected
	exited      bool

	conn     net.Conn // agent's end of the channel
	deferred [][]byte // cache evictions held back while suspended
	stat     *procStat
	cpu      cpuMeter
}

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
	cmd.Env = append(os.Environ(), "SCALER_WORKER_ID="+a.cfg.WorkerID)
	return cmd
}

// spawn starts a new processor; its exit is reported on a.exits.
func (a *agent) spawn() (*processor, error) {
	a.procSeq++
	p := &processor{ident: "p" + strconv.FormatUint(a.procSeq, 10)}
	p.cmd = a.processorCommand(p.ident)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("processor channel: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "processor-channel"), os.NewFile(uintptr(fds[1]), "processor-channel")
	p.conn, err = net.FileConn(mine)
	_ = mine.Close()
	if err != nil {
		_ = theirs.Close()
		return nil, fmt.Errorf("processor channel: %w", err)
	}
	p.cmd.ExtraFiles = []*os.File{theirs}
	err = startChild(p.cmd, syscall.SIGKILL)
	_ = theirs.Close()
	if err != nil {
		_ = p.conn.Close()
		return nil, fmt.Errorf("starting processor %s: %w", a.cfg.Python, err)
	}
	p.pid = p.cmd.Process.Pid
	go a.readProcessor(p)
	p.stat = openProcStat(p.pid)
	a.procs[p.ident] = p
	exits, quit := a.exits, a.quit
	go func() {
		err := p.cmd.Wait()
		select {
		case exits <- procExit{p: p, err: err}:
		case <-quit:
		}
	}()
	a.log.Debug().Int("pid", p.pid).Msg("processor started")
	return p, nil
}

// readProcessor delivers p's frames to the loop until the channel closes.
func (a *agent) readProcessor(p *processor) {
	r := bufio.NewReaderSize(p.conn, 64<<10)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n == 0 || n > maxProcessorFrame {
			a.log.Warn().Int("pid", p.pid).Uint32("length", n).Msg("bad frame length from a processor; dropping its channel")
			_ = p.conn.Close()
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		select {
		case a.procMsgs <- procMsg{p: p, frame: frame}:
		case <-a.quit:
			return
		}
	}
}

// writeProcessor sends one frame to p. The channel's socket buffer holds
// far more than the few small messages a processor is ever sent, so this
// only blocks if the processor is wedged; the deadline bounds that.
func (a *agent) writeProcessor(p *processor, frame []byte) {
	if p.exited || p.conn == nil {
		return
	}
	buf := make([]byte, 4+len(frame))
	binary.LittleEndian.PutUint32(buf, uint32(len(frame)))
	copy(buf[4:], frame)
	_ = p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.conn.Write(buf); err != nil && !errors.Is(err, net.ErrClosed) {
		// Part of the frame may have gone out, so the stream is no longer
		// in step: the processor cannot be trusted with another message.
		a.log.Warn().Err(err).Int("pid", p.pid).Msg("send to processor failed; replacing it")
		a.kill(p)
	}
}

// kill stops a processor: SIGTERM (plus SIGCONT, so that a stopped one can
// act on it), then SIGKILL after the kill delay if it is still there.
func (a *agent) kill(p *processor) {
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

// suspend pauses a processor's running task.
func (a *agent) suspendProc(p *processor) {
	p.suspended = true
	sig := syscall.SIGUSR1
	if a.cfg.HardSuspend {
		sig = syscall.SIGSTOP
	}
	_ = p.cmd.Process.Signal(sig)
}

// resumeProc continues a suspended processor.
func (a *agent) resumeProc(p *processor) {
	p.suspended = false
	sig := syscall.SIGUSR2
	if a.cfg.HardSuspend {
		sig = syscall.SIGCONT
	}
	_ = p.cmd.Process.Signal(sig)
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
