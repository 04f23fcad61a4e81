// Package servertest runs server processes (memcached, redis-server) for
// the test helper packages memcachedtest and redistest and for the load
// runs: it picks free loopback ports, starts a binary and waits until the
// server answers as that very process, freezes and kills it, and decides
// whether a missing binary skips a test or fails it.
//
// It depends on the standard library only.
package servertest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// SkipOrFail ends tb because a server could not be started: it skips when
// err matches notInstalled outside CI, and fails otherwise, for tests that
// silently skip in CI (CI=true) would prove nothing. what names the
// servers in the failure, as in "memcached tests must not be skipped".
func SkipOrFail(tb testing.TB, err, notInstalled error, what string) {
	tb.Helper()
	if errors.Is(err, notInstalled) && os.Getenv("CI") != "true" {
		tb.Skip(err.Error())
	}
	if errors.Is(err, notInstalled) {
		tb.Fatalf("%v; CI=true: %s tests must not be skipped in CI", err, what)
	}
	tb.Fatalf("%v", err)
}

// Process is one run of a server binary.
type Process struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	output syncBuffer
}

// Launch starts cmd, which must not have been started, and waits, for at
// most timeout, until ready reports (with a nil error) that the server
// answers as this process: it is given the process id, for a mere answer on
// the port could come from another process that took it. Launch fails when
// the process exits first, typically because the port was taken, or when
// the time is up; the error holds the end of the server's output. Launch
// sets cmd's Stdout and Stderr. name (for example "memcached on
// 127.0.0.1:11211") names the server in errors.
func Launch(name string, cmd *exec.Cmd, timeout time.Duration, ready func(pid int) error) (*Process, error) {
	p := &Process{cmd: cmd, done: make(chan struct{})}
	p.cmd.Stdout = &p.output
	p.cmd.Stderr = &p.output
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", name, cmd.Path, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := ready(p.Pid())
		if err == nil {
			return p, nil
		}
		if p.Exited() {
			return nil, fmt.Errorf("%s exited: %s", name, p.Output())
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("%s did not answer within %v: %v: %s", name, timeout, err, p.Output())
		}
		time.Sleep(delay)
	}
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns the end of what the process wrote to its standard output
// and error, for error messages.
func (p *Process) Output() string { return Tail(p.output.String()) }

// Kill stops the process (SIGKILL, as a crash would), frozen or not, and
// waits for it to exit. Killing an exited process does nothing.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Freeze stops the process (SIGSTOP) and waits until the kernel reports it
// stopped: the signal is delivered asynchronously, and until then a request
// might still be served. Without procfs it returns once the signal is sent.
func (p *Process) Freeze() error {
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	stat := fmt.Sprintf("/proc/%d/stat", p.Pid())
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			return nil // no procfs: best effort
		}
		// The state follows the command name in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return nil
		}
	}
	return fmt.Errorf("process %d did not stop", p.Pid())
}

// Tail returns the end of a server's output, trimmed, for error messages.
func Tail(out string) string {
	out = strings.TrimSpace(out)
	if len(out) > 2000 {
		out = "…" + out[len(out)-2000:]
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent use, which keeps the
// end of what it is given.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Servers may be verbose over a long run: keep the end.
	if b.buf.Len() > 1<<20 {
		rest := append([]byte(nil), b.buf.Bytes()[b.buf.Len()-(64<<10):]...)
		b.buf.Reset()
		b.buf.Write(rest)
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
