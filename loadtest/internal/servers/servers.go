// Package servers starts the store servers of the load and fault runs on
// free loopback ports, and kills them: memcached, Redis (single servers,
// replicas, Sentinels and Cluster nodes, from Debian's redis-server and
// redis-sentinel packages), and a silent listener that accepts connections
// and never answers.
//
// Every process and listener belongs to a Group, whose Close kills them
// all (SIGKILL) and removes their working directory, so a run leaves
// nothing behind; on Linux each child also gets SIGKILL if the Go process
// dies first (Pdeathsig). Unlike the test helpers of internal/memcachedtest
// and internal/redistest, nothing here needs a testing.TB: the load command
// uses it too.
//
// A Group is safe for concurrent use, and so is a Proc.
package servers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/internal/servertest"
)

// Paths of the executables the package runs.
const (
	MemcachedBinary = "/usr/bin/memcached"
	RedisBinary     = "/usr/bin/redis-server"
	SentinelBinary  = "/usr/bin/redis-sentinel"
	RedisCLIBinary  = "/usr/bin/redis-cli"
)

// ErrMissing is returned (wrapped) by Need when a binary is not installed.
var ErrMissing = errors.New("servers: binary not installed (run `make load`, which installs memcached, redis-server and redis-sentinel)")

const (
	// readyTimeout bounds the wait for a started server to answer, and
	// for a cluster or a set of Sentinels to settle.
	readyTimeout = 20 * time.Second
	// startAttempts bounds the retries when a chosen port was taken
	// between picking it and the server binding it.
	startAttempts = 5
	// adminTimeout bounds each administrative command.
	adminTimeout = 2 * time.Second
)

// Need returns an error wrapping ErrMissing that names each of bins that
// does not exist.
func Need(bins ...string) error {
	var missing []string
	for _, b := range bins {
		if _, err := os.Stat(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissing, strings.Join(missing, ", "))
	}
	return nil
}

// Group owns the processes and listeners it started.
type Group struct {
	dir string

	mu      sync.Mutex
	procs   []*Proc
	silents []*Silent
	closed  bool
}

// NewGroup returns an empty Group with a fresh temporary directory for the
// servers' files.
func NewGroup() (*Group, error) {
	dir, err := os.MkdirTemp("", "ginsession-load-")
	if err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	return &Group{dir: dir}, nil
}

// Close kills every process of the group and waits for it to exit, closes
// every silent listener and removes the group's directory. It is
// idempotent.
func (g *Group) Close() {
	g.mu.Lock()
	procs, silents := g.procs, g.silents
	g.procs, g.silents, g.closed = nil, nil, true
	g.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	for _, s := range silents {
		s.Close()
	}
	_ = os.RemoveAll(g.dir)
}

// Pids returns the process ids of the group's running processes.
func (g *Group) Pids() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var pids []int
	for _, p := range g.procs {
		if pid := p.Pid(); pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (g *Group) add(p *Proc) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("servers: group closed")
	}
	g.procs = append(g.procs, p)
	return nil
}

// Proc is one server process on a fixed loopback address, which stays the
// same when it is killed and started again.
type Proc struct {
	// Name says what the process is, for messages ("redis master").
	Name string
	// Addr is the server's host:port.
	Addr string

	bin   string
	args  func(extra []string) []string
	ready func(ctx context.Context, pid int) error
	dir   string

	mu   sync.Mutex
	run  *servertest.Process // nil while stopped
	last *servertest.Process // the last run, nil before the first
}

// Pid returns the running process's id, or 0 when it is stopped.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == nil {
		return 0
	}
	return p.run.Pid()
}

// Running reports whether the process runs.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run != nil && !p.run.Exited()
}

// Kill sends SIGKILL to the process, as a crash would, and waits for it to
// exit. Killing a stopped process does nothing.
func (p *Proc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == nil {
		return
	}
	p.run.Kill()
	p.run = nil
}

// Output returns what the process wrote to stdout and stderr (the last
// run's when it is stopped), truncated to its end.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		return ""
	}
	return p.last.Output()
}

// Start starts the process again on the same address, with extra
// arguments for this run only, and waits until it answers. It retries for
// a while if the port is not free yet. Starting a running process is an
// error.
func (p *Proc) Start(extra ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil {
		return fmt.Errorf("servers: %s on %s is running", p.Name, p.Addr)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		r, err := p.launch(extra)
		if err == nil {
			p.run, p.last = r, r
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// launch runs the binary and waits until it answers as the process it
// started. It fails when the process exits first (the port is taken, say).
func (p *Proc) launch(extra []string) (*servertest.Process, error) {
	cmd := exec.Command(p.bin, p.args(extra)...)
	cmd.Dir = p.dir
	cmd.SysProcAttr = sysProcAttr()
	return servertest.Launch("servers: "+p.Name+" on "+p.Addr, cmd, readyTimeout, func(pid int) error {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		return p.ready(ctx, pid)
	})
}

// start picks a free port, builds the Proc with it and starts it, trying
// other ports when the one chosen was taken meanwhile.
func (g *Group) start(name string, mk func(port string, p *Proc)) (*Proc, error) {
	var lastErr error
	for range startAttempts {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		p := &Proc{Name: name, Addr: net.JoinHostPort("127.0.0.1", port)}
		p.dir = g.dir + "/" + strings.ReplaceAll(name, " ", "-") + "-" + port
		if err := os.MkdirAll(p.dir, 0o777); err != nil {
			return nil, fmt.Errorf("servers: %w", err)
		}
		// memcached drops root for nobody, which must be able to
		// enter the directory.
		_ = os.Chmod(p.dir, 0o777)
		mk(port, p)
		r, err := p.launch(nil)
		if err != nil {
			lastErr = err
			continue
		}
		p.run, p.last = r, r
		if err := g.add(p); err != nil {
			p.Kill()
			return nil, err
		}
		return p, nil
	}
	return nil, lastErr
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (string, error) {
	port, err := servertest.FreePort()
	if err != nil {
		return "", fmt.Errorf("servers: %w", err)
	}
	return port, nil
}

// Memcached starts a memcached server with memoryMB megabytes for items.
// As root it runs as nobody (memcached refuses to run as root without -u).
func (g *Group) Memcached(memoryMB int) (*Proc, error) {
	if err := Need(MemcachedBinary); err != nil {
		return nil, err
	}
	return g.start("memcached", func(port string, p *Proc) {
		p.bin = MemcachedBinary
		p.args = func(extra []string) []string {
			args := []string{"-l", "127.0.0.1", "-p", port, "-U", "0", "-m", strconv.Itoa(memoryMB), "-c", "4096"}
			if os.Geteuid() == 0 {
				args = append(args, "-u", "nobody")
			}
			return append(args, extra...)
		}
		p.ready = func(ctx context.Context, pid int) error {
			stats, err := memcachedStats(ctx, p.Addr)
			if err != nil {
				return err
			}
			if stats["pid"] != strconv.Itoa(pid) {
				return fmt.Errorf("another memcached (pid %s) answers", stats["pid"])
			}
			return nil
		}
	})
}

// memcachedStats runs `stats` on a fresh connection.
func memcachedStats(ctx context.Context, addr string) (map[string]string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte("stats\r\n")); err != nil {
		return nil, err
	}
	stats := make(map[string]string)
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "END" {
			return stats, nil
		}
		if f := strings.Fields(line); len(f) == 3 && f[0] == "STAT" {
			stats[f[1]] = f[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("stats: connection closed")
}

// Redis starts a redis-server without persistence (--save "" --appendonly
// no), with extra arguments such as "--replicaof", host, port.
func (g *Group) Redis(name string, extra ...string) (*Proc, error) {
	if err := Need(RedisBinary); err != nil {
		return nil, err
	}
	return g.start(name, func(port string, p *Proc) {
		p.bin = RedisBinary
		p.args = func(more []string) []string {
			args := []string{
				"--port", port, "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no",
				"--daemonize", "no", "--dir", p.dir,
				// A replica's first sync starts at once, not after 5s.
				"--repl-diskless-sync-delay", "0",
			}
			args = append(args, extra...)
			return append(args, more...)
		}
		p.ready = func(ctx context.Context, pid int) error { return checkPid(ctx, p.Addr, pid) }
	})
}

// checkPid checks that the Redis (or Sentinel) at addr is the process pid.
func checkPid(ctx context.Context, addr string, pid int) error {
	info, err := Info(ctx, addr, "server")
	if err != nil {
		return err
	}
	if info["process_id"] != strconv.Itoa(pid) {
		return fmt.Errorf("another Redis (pid %s) answers", info["process_id"])
	}
	return nil
}

// Admin returns a go-redis client for administrative commands on addr:
// short timeouts, no retries, one connection. Close it after use.
func Admin(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                  addr,
		DialTimeout:           adminTimeout,
		ReadTimeout:           adminTimeout,
		WriteTimeout:          adminTimeout,
		MaxRetries:            -1,
		DialerRetries:         1,
		PoolSize:              1,
		Protocol:              2,
		DisableIdentity:       true,
		ContextTimeoutEnabled: true,
	})
}

// Do runs one command on a fresh connection to addr.
func Do(ctx context.Context, addr string, args ...any) (any, error) {
	c := Admin(addr)
	defer c.Close()
	return c.Do(ctx, args...).Result()
}

// Info returns the fields of the INFO section of the server at addr.
func Info(ctx context.Context, addr, section string) (map[string]string, error) {
	c := Admin(addr)
	defer c.Close()
	text, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	return parseFields(text), nil
}

// parseFields parses "key:value" lines, as INFO and CLUSTER INFO print.
func parseFields(text string) map[string]string {
	fields := make(map[string]string)
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			fields[k] = v
		}
	}
	return fields
}

// WaitInSync waits until the replica at addr has finished its initial
// synchronization with its master and the link is up.
func WaitInSync(ctx context.Context, addr string) error {
	return poll(ctx, func(ctx context.Context) error {
		info, err := Info(ctx, addr, "replication")
		if err != nil {
			return err
		}
		if info["role"] != "slave" || info["master_link_status"] != "up" || info["master_sync_in_progress"] != "0" {
			return fmt.Errorf("replica %s not in sync: role %s, link %s", addr, info["role"], info["master_link_status"])
		}
		return nil
	})
}

// poll calls fn every 20ms until it succeeds or readyTimeout passes.
func poll(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, adminTimeout)
		err := fn(cctx)
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("servers: %w (after %v)", err, readyTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
