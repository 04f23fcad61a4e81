// Package redistest starts real Redis servers for tests.
//
// Start runs /usr/bin/redis-server (the Debian package "redis-server") on a
// free loopback port, without persistence (--save "" --appendonly no),
// waits until it answers PING as the process it started, and stops it when
// the test ends. StartMain does the same for a TestMain that shares one
// server between the tests of a package. StartCluster starts the nodes of a
// Redis Cluster and joins them with redis-cli --cluster create.
//
// When the binary is missing, tests are skipped with a message telling to
// run `make test` (which installs it), except in CI (CI=true in the
// environment), where a missing server is a failure: tests that silently
// skip there would prove nothing.
//
// The package talks to the servers over RESP2 with a small client of its
// own (Server.Do), so tests can inspect and configure a server
// independently of the client under test. It depends on the standard
// library only.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/securestack/ginsession/internal/servertest"
)

// Paths of the executables the package runs.
const (
	// ServerBinary is the Redis server that Start runs.
	ServerBinary = "/usr/bin/redis-server"
	// CLIBinary is the Redis command-line client that StartCluster runs
	// to create a cluster.
	CLIBinary = "/usr/bin/redis-cli"
)

// ErrNotInstalled is returned (wrapped) by StartMain when ServerBinary
// does not exist.
var ErrNotInstalled = errors.New("redistest: " + ServerBinary + " not installed (run `make test`, which installs it)")

const (
	// startTimeout bounds the wait for a started server to answer, and
	// for a cluster to become ready.
	startTimeout = 15 * time.Second
	// startAttempts bounds the retries when a chosen port was taken
	// between picking it and the server binding it.
	startAttempts = 5
	// ioTimeout bounds each exchange of Do.
	ioTimeout = 5 * time.Second
)

// Option configures a server started by Start or StartMain.
type Option func(*config)

type config struct {
	args      []string
	replicaOf *Server
	cluster   bool
}

// WithArgs appends raw command-line arguments for redis-server, such as
// "--maxmemory", "1mb".
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// WithReplicaOf starts the server as a replica of master. Start returns
// once the replica is in sync with it.
func WithReplicaOf(master *Server) Option {
	return func(c *config) { c.replicaOf = master }
}

// Server is a running redis-server process listening on the loopback
// interface. Its methods are safe for concurrent use.
type Server struct {
	// Addr is the server's address as host:port. It stays the same
	// across Restart.
	Addr string

	port    string
	busPort string // cluster bus port, for cluster nodes
	dir     string // working directory (cluster configuration)
	cfg     config

	mu   sync.Mutex
	proc *servertest.Process // nil while stopped
}

// Start starts a Redis server for the test and registers a cleanup that
// stops it. When the binary is missing it skips the test, or fails it when
// the environment has CI=true.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := start(opts)
	if err != nil {
		SkipOrFail(tb, err)
	}
	tb.Cleanup(s.shutdown)
	return s
}

// StartMain starts a Redis server without a testing.TB, for a TestMain
// that shares one server between the tests of a package. It returns the
// server and a function that stops it. When the binary is missing the
// error wraps ErrNotInstalled; hand it to SkipOrFail in each test that
// needs the server.
func StartMain(opts ...Option) (*Server, func(), error) {
	s, err := start(opts)
	if err != nil {
		return nil, func() {}, err
	}
	return s, s.shutdown, nil
}

// SkipOrFail ends the test because of an error from StartMain: it skips
// when the error is ErrNotInstalled outside CI, and fails it otherwise.
func SkipOrFail(tb testing.TB, err error) {
	tb.Helper()
	servertest.SkipOrFail(tb, err, ErrNotInstalled, "Redis")
}

func start(opts []Option) (*Server, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if _, err := os.Stat(ServerBinary); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	s := &Server{cfg: cfg, dir: dir}
	var lastErr error
	for range startAttempts {
		if lastErr = s.pickPorts(); lastErr != nil {
			break
		}
		p, err := s.launch()
		if err != nil {
			lastErr = err
			continue
		}
		s.proc = p
		if cfg.replicaOf != nil {
			if err := s.waitInSync(); err != nil {
				s.shutdown()
				return nil, err
			}
		}
		return s, nil
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
}

// pickPorts chooses the server's port (and cluster bus port) and address.
func (s *Server) pickPorts() error {
	var err error
	if s.port, err = servertest.FreePort(); err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	if s.cfg.cluster {
		if s.busPort, err = servertest.FreePort(); err != nil {
			return fmt.Errorf("redistest: %w", err)
		}
	}
	s.Addr = net.JoinHostPort("127.0.0.1", s.port)
	return nil
}

// launch runs the binary on s.port and waits until it answers. It fails
// when the process exits first (typically: the port is taken).
func (s *Server) launch() (*servertest.Process, error) {
	args := []string{
		"--port", s.port,
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
		// A replica's first sync starts at once, not after 5 seconds.
		"--repl-diskless-sync-delay", "0",
	}
	if s.cfg.cluster {
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes-"+s.port+".conf",
			"--cluster-port", s.busPort,
			"--cluster-node-timeout", "5000",
		)
	}
	if m := s.cfg.replicaOf; m != nil {
		host, port, _ := net.SplitHostPort(m.Addr)
		args = append(args, "--replicaof", host, port)
	}
	args = append(args, s.cfg.args...)

	return servertest.Launch("redistest: redis-server on "+s.Addr, exec.Command(ServerBinary, args...), startTimeout, func(pid int) error {
		got, err := s.pid()
		if err == nil && got != pid {
			err = fmt.Errorf("another process (pid %d) answers", got)
		}
		return err
	})
}

// pid returns the process id the server at s.Addr reports.
func (s *Server) pid() (int, error) {
	if _, err := s.Do("PING"); err != nil {
		return 0, err
	}
	info, err := s.Info("server")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(info["process_id"])
}

// waitInSync waits until a replica's link to its master is up, the
// initial synchronization is done, and the master streams writes to it:
// Redis 7.0 starts the stream on the replica's first acknowledgement,
// which can take a second, and a WAIT would wait for it.
func (s *Server) waitInSync() error {
	deadline := time.Now().Add(startTimeout)
	for {
		info, err := s.Info("replication")
		if err == nil && info["master_link_status"] == "up" && info["master_sync_in_progress"] == "0" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: replica %s not in sync within %v: %v %v", s.Addr, startTimeout, info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A write that leaves nothing behind, and a WAIT for it on the same
	// connection.
	const marker = "redistest:replica-sync"
	return withConn(s.cfg.replicaOf.Addr, func(rw *bufio.ReadWriter) error {
		var reply any
		var err error
		for _, cmd := range [][]any{{"SET", marker, "1"}, {"DEL", marker}, {"WAIT", 1, (ioTimeout - time.Second).Milliseconds()}} {
			if reply, err = roundTrip(rw, cmd); err != nil {
				return fmt.Errorf("redistest: replica %s: %v: %w", s.Addr, cmd, err)
			}
		}
		if reply != int64(1) {
			return fmt.Errorf("redistest: replica %s did not acknowledge a write within %v: WAIT = %v", s.Addr, ioTimeout-time.Second, reply)
		}
		return nil
	})
}

// Stop kills the server and waits for it to exit. Stopping a stopped
// server does nothing. Restart starts it again.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.stop()
}

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.Kill()
		s.proc = nil
	}
}

// shutdown stops the server and removes its working directory.
func (s *Server) shutdown() {
	s.stop()
	_ = os.RemoveAll(s.dir)
}

// Pause freezes the server (SIGSTOP): it keeps its connections and the
// kernel still accepts new ones, but nothing is answered, as with a hung
// or unreachable host. Resume undoes it; a paused server is resumed before
// it is stopped.
func (s *Server) Pause(tb testing.TB) {
	tb.Helper()
	s.signal(tb, func(p *servertest.Process) error { return p.Freeze() })
}

// Resume lets a paused server run again (SIGCONT).
func (s *Server) Resume(tb testing.TB) {
	tb.Helper()
	s.signal(tb, func(p *servertest.Process) error { return p.Signal(syscall.SIGCONT) })
}

// signal runs fn, which signals the running process, and fails tb if the
// server is stopped or fn fails.
func (s *Server) signal(tb testing.TB, fn func(*servertest.Process) error) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		tb.Fatalf("redistest: server stopped")
	}
	if err := fn(s.proc); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
}

// Restart stops the server if it runs and starts a new, empty one on the
// same address (nothing is persisted, and the script cache starts empty).
// It retries for a while if the port is not free yet.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.Kill()
		s.proc = nil
	}
	deadline := time.Now().Add(startTimeout)
	for {
		p, err := s.launch()
		if err == nil {
			s.proc = p
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Error is an error reply of the server, such as "ERR unknown command".
type Error string

func (e Error) Error() string { return string(e) }

// Do sends one command on a fresh connection and returns the reply: a
// string (simple or bulk string), an int64, a []any, nil (a nil reply), or
// an Error for an error reply. Arguments are formatted with fmt.Sprint.
func (s *Server) Do(args ...any) (any, error) {
	var reply any
	err := withConn(s.Addr, func(rw *bufio.ReadWriter) error {
		var err error
		reply, err = roundTrip(rw, args)
		return err
	})
	if err != nil {
		return nil, err
	}
	if e, ok := reply.(Error); ok {
		return nil, e
	}
	return reply, nil
}

// MustDo is Do that fails the test on any error, error replies included.
func (s *Server) MustDo(tb testing.TB, args ...any) any {
	tb.Helper()
	reply, err := s.Do(args...)
	if err != nil {
		tb.Fatalf("redistest: %v: %v", args, err)
	}
	return reply
}

// Info returns the fields of the INFO command's section (such as
// "server", "replication", "memory", "commandstats").
func (s *Server) Info(section string) (map[string]string, error) {
	reply, err := s.Do("INFO", section)
	if err != nil {
		return nil, err
	}
	text, ok := reply.(string)
	if !ok {
		return nil, fmt.Errorf("redistest: INFO: unexpected reply %T", reply)
	}
	info := make(map[string]string)
	for line := range strings.SplitSeq(text, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			info[k] = v
		}
	}
	return info, nil
}

// Dump returns every key of the server's database 0 with its value, as
// listed by SCAN and read with GET; keys that are not strings, or expire
// in between, are left out. Security tests use it to scan the store's
// contents for secrets.
func (s *Server) Dump(tb testing.TB) map[string][]byte {
	tb.Helper()
	items := make(map[string][]byte)
	cursor := "0"
	for {
		reply, ok := s.MustDo(tb, "SCAN", cursor, "COUNT", 1000).([]any)
		if !ok || len(reply) != 2 {
			tb.Fatalf("redistest: SCAN: unexpected reply %v", reply)
		}
		keys, _ := reply[1].([]any)
		for _, k := range keys {
			key, _ := k.(string)
			if v, err := s.Do("GET", key); err == nil && v != nil {
				items[key] = []byte(v.(string))
			}
		}
		if cursor, _ = reply[0].(string); cursor == "0" {
			return items
		}
	}
}

// withConn runs fn on a fresh connection to addr.
func withConn(addr string, fn func(rw *bufio.ReadWriter) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		return err
	}
	return fn(bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)))
}

// roundTrip sends one command as a RESP array of bulk strings and reads
// its reply.
func roundTrip(rw *bufio.ReadWriter, args []any) (any, error) {
	fmt.Fprintf(rw, "*%d\r\n", len(args))
	for _, a := range args {
		s := fmt.Sprint(a)
		fmt.Fprintf(rw, "$%d\r\n%s\r\n", len(s), s)
	}
	if err := rw.Flush(); err != nil {
		return nil, err
	}
	return readReply(rw.Reader)
}

// readReply reads one RESP2 reply.
func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("redistest: empty reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return Error(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return arr, nil
	default:
		return nil, fmt.Errorf("redistest: unexpected reply %q", line)
	}
}
