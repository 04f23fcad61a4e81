// Package memcachedtest starts real memcached servers for tests.
//
// Start runs /usr/bin/memcached (the Debian package "memcached") on a free
// loopback port, waits until it answers, and stops it when the test ends.
// StartMain does the same for a TestMain that shares one server between the
// tests of a package.
//
// When the binary is missing, tests are skipped with a message telling to
// run `make test` (which installs it), except in CI (CI=true in the
// environment), where a missing server is a failure: tests that silently
// skip there would prove nothing.
//
// The package talks to the server over the raw text protocol and depends on
// the standard library only.
package memcachedtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
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

// Binary is the path of the memcached executable that Start runs.
const Binary = "/usr/bin/memcached"

// ErrNotInstalled is returned (wrapped) by StartMain when Binary does not
// exist.
var ErrNotInstalled = errors.New("memcachedtest: " + Binary + " not installed (run `make test`, which installs it)")

const (
	// startTimeout bounds the wait for a started server to answer.
	startTimeout = 10 * time.Second
	// startAttempts bounds the retries when the chosen port was taken
	// between picking it and the server binding it.
	startAttempts = 5
	// ioTimeout bounds each raw protocol exchange.
	ioTimeout = 5 * time.Second
)

// Option configures a server started by Start or StartMain.
type Option func(*config)

type config struct {
	maxItemSize int
	memoryMB    int
	args        []string
}

// WithMaxItemSize sets the server's item size limit in bytes (memcached's
// -I flag; at least 2048). The default is memcached's, 1 MiB.
func WithMaxItemSize(bytes int) Option {
	return func(c *config) { c.maxItemSize = bytes }
}

// WithMemory sets the server's item memory in megabytes (memcached's -m
// flag). The default is memcached's, 64 MB.
func WithMemory(megabytes int) Option {
	return func(c *config) { c.memoryMB = megabytes }
}

// WithArgs appends raw command-line arguments for memcached.
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Server is a running memcached process listening on the loopback
// interface. Its methods are safe for concurrent use.
type Server struct {
	// Addr is the server's address as host:port. It stays the same
	// across Restart.
	Addr string

	port string
	cfg  config

	mu   sync.Mutex
	proc *servertest.Process // nil while stopped
}

// Start starts a memcached server for the test and registers a cleanup
// that stops it. When the binary is missing it skips the test, or fails it
// when the environment has CI=true.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := start(opts)
	if err != nil {
		SkipOrFail(tb, err)
	}
	tb.Cleanup(func() { _ = s.stop() })
	return s
}

// StartMain starts a memcached server without a testing.TB, for a TestMain
// that shares one server between the tests of a package. It returns the
// server and a function that stops it. When the binary is missing the error
// wraps ErrNotInstalled; hand it to SkipOrFail in each test that needs the
// server.
func StartMain(opts ...Option) (*Server, func(), error) {
	s, err := start(opts)
	if err != nil {
		return nil, func() {}, err
	}
	return s, func() { _ = s.stop() }, nil
}

// SkipOrFail ends the test because of an error from StartMain: it skips
// when the error is ErrNotInstalled outside CI, and fails it otherwise.
func SkipOrFail(tb testing.TB, err error) {
	tb.Helper()
	servertest.SkipOrFail(tb, err, ErrNotInstalled, "memcached")
}

func start(opts []Option) (*Server, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	s := &Server{cfg: cfg}
	var lastErr error
	for range startAttempts {
		port, err := servertest.FreePort()
		if err != nil {
			return nil, fmt.Errorf("memcachedtest: %w", err)
		}
		s.port = port
		s.Addr = net.JoinHostPort("127.0.0.1", port)
		p, err := s.launch()
		if err == nil {
			s.proc = p
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// launch runs the binary on s.port and waits until it answers. It fails
// when the process exits first (typically: the port is taken).
func (s *Server) launch() (*servertest.Process, error) {
	args := []string{"-l", "127.0.0.1", "-p", s.port, "-U", "0"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	if s.cfg.maxItemSize > 0 {
		args = append(args, "-I", strconv.Itoa(s.cfg.maxItemSize))
		if s.cfg.maxItemSize < 1024*1024 {
			// memcached refuses an item size below its slab chunk
			// size (512 KiB by default); shrink the chunks along.
			args = append(args, "-o", "slab_chunk_max="+strconv.Itoa(max(1, s.cfg.maxItemSize/2048)))
		}
	}
	if s.cfg.memoryMB > 0 {
		args = append(args, "-m", strconv.Itoa(s.cfg.memoryMB))
	}
	args = append(args, s.cfg.args...)
	return servertest.Launch("memcachedtest: memcached on "+s.Addr, exec.Command(Binary, args...), startTimeout, func(pid int) error {
		stats, err := rawStats(s.Addr)
		if err == nil && stats["pid"] != uint64(pid) {
			err = fmt.Errorf("another process (pid %d) answers", stats["pid"])
		}
		return err
	})
}

// Stop kills the server and waits for it to exit. Stopping a stopped
// server does nothing. Restart starts it again.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.stop(); err != nil {
		tb.Fatalf("memcachedtest: stop: %v", err)
	}
}

func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.Kill()
		s.proc = nil
	}
	return nil
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
		tb.Fatalf("memcachedtest: server stopped")
	}
	if err := fn(s.proc); err != nil {
		tb.Fatalf("memcachedtest: %v", err)
	}
}

// Restart stops the server if it runs and starts a new, empty one on the
// same address. It retries for a while if the port is not free yet.
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
			tb.Fatalf("memcachedtest: restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stats returns the server's numeric general-purpose statistics (the
// `stats` command), read on a fresh connection. The connection itself
// counts in total_connections and curr_connections.
func (s *Server) Stats(tb testing.TB) map[string]uint64 {
	tb.Helper()
	stats, err := rawStats(s.Addr)
	if err != nil {
		tb.Fatalf("memcachedtest: stats: %v", err)
	}
	return stats
}

// FlushAll invalidates every item on the server.
func (s *Server) FlushAll(tb testing.TB) {
	tb.Helper()
	err := withConn(s.Addr, func(rw *bufio.ReadWriter) error {
		line, err := command(rw, "flush_all\r\n")
		if err != nil {
			return err
		}
		if line != "OK" {
			return fmt.Errorf("flush_all: unexpected reply %q", line)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("memcachedtest: %v", err)
	}
}

// Dump returns every live item on the server, key to value. It lists keys
// with `lru_crawler metadump all` (crawling again until it has listed as
// many items as the server counts) and reads each with `get`; items that
// expire in between are left out. Security tests use it to scan the
// store's contents for secrets.
func (s *Server) Dump(tb testing.TB) map[string][]byte {
	tb.Helper()
	items := make(map[string][]byte)
	metas, err := s.metadump()
	if err != nil {
		tb.Fatalf("memcachedtest: dump: %v", err)
	}
	err = withConn(s.Addr, func(rw *bufio.ReadWriter) error {
		for _, m := range metas {
			v, ok, err := get(rw, m.Key)
			if err != nil {
				return err
			}
			if ok {
				items[m.Key] = v
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("memcachedtest: dump: %v", err)
	}
	return items
}

// Meta is what memcached tells of an item without its value.
type Meta struct {
	// Key is the item's key.
	Key string
	// Exp is the item's expiry as a Unix time, or -1 for none.
	Exp int64
	// Size is the item's total size in memory, in bytes.
	Size int
}

// Metadump returns the metadata of every item on the server, as listed by
// `lru_crawler metadump all`.
func (s *Server) Metadump(tb testing.TB) []Meta {
	tb.Helper()
	metas, err := s.metadump()
	if err != nil {
		tb.Fatalf("memcachedtest: metadump: %v", err)
	}
	return metas
}

// metadump lists every item. A crawl can miss an item that the server is
// moving between its LRU queues (right after a read, say), so it crawls
// again until it has listed as many items as the server holds.
func (s *Server) metadump() ([]Meta, error) {
	deadline := time.Now().Add(startTimeout)
	for {
		var metas []Meta
		err := withConn(s.Addr, func(rw *bufio.ReadWriter) error {
			var err error
			metas, err = metadump(rw)
			return err
		})
		switch {
		case errors.Is(err, errBusy):
			// The server's own background crawl is running.
		case err != nil:
			return nil, err
		default:
			stats, serr := rawStats(s.Addr)
			if serr != nil {
				return nil, serr
			}
			if uint64(len(metas)) >= stats["curr_items"] {
				return metas, nil
			}
			err = fmt.Errorf("listed %d items of %d", len(metas), stats["curr_items"])
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(10 * time.Millisecond)
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

// command sends cmd and returns the first reply line without its CRLF.
func command(rw *bufio.ReadWriter, cmd string) (string, error) {
	if _, err := rw.WriteString(cmd); err != nil {
		return "", err
	}
	if err := rw.Flush(); err != nil {
		return "", err
	}
	return readLine(rw)
}

func readLine(rw *bufio.ReadWriter) (string, error) {
	line, err := rw.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// rawStats runs `stats` on a fresh connection and keeps the numeric values.
func rawStats(addr string) (map[string]uint64, error) {
	stats := make(map[string]uint64)
	err := withConn(addr, func(rw *bufio.ReadWriter) error {
		line, err := command(rw, "stats\r\n")
		for ; err == nil && line != "END"; line, err = readLine(rw) {
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "STAT" {
				return fmt.Errorf("stats: unexpected reply %q", line)
			}
			if n, err := strconv.ParseUint(f[2], 10, 64); err == nil {
				stats[f[1]] = n
			}
		}
		return err
	})
	return stats, err
}

// errBusy is the server's answer while its LRU crawler is at work.
var errBusy = errors.New("crawler busy")

// metadump lists all items with `lru_crawler metadump all`.
func metadump(rw *bufio.ReadWriter) ([]Meta, error) {
	var metas []Meta
	line, err := command(rw, "lru_crawler metadump all\r\n")
	for ; err == nil && line != "END"; line, err = readLine(rw) {
		if strings.HasPrefix(line, "BUSY") {
			return nil, fmt.Errorf("%w: %s", errBusy, line)
		}
		if strings.HasPrefix(line, "ERROR") || strings.HasPrefix(line, "CLIENT_ERROR") {
			return nil, fmt.Errorf("metadump: %s", line)
		}
		var m Meta
		for _, field := range strings.Fields(line) {
			name, value, _ := strings.Cut(field, "=")
			var err error
			switch name {
			case "key":
				m.Key, err = url.QueryUnescape(value)
			case "exp":
				m.Exp, err = strconv.ParseInt(value, 10, 64)
			case "size":
				m.Size, err = strconv.Atoi(value)
			}
			if err != nil {
				return nil, fmt.Errorf("metadump: %q: %w", line, err)
			}
		}
		metas = append(metas, m)
	}
	return metas, err
}

// get reads one item's value; ok is false on a miss.
func get(rw *bufio.ReadWriter, key string) (value []byte, ok bool, err error) {
	line, err := command(rw, "get "+key+"\r\n")
	if err != nil {
		return nil, false, err
	}
	if line == "END" {
		return nil, false, nil
	}
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "VALUE" {
		return nil, false, fmt.Errorf("get %q: unexpected reply %q", key, line)
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || n < 0 {
		return nil, false, fmt.Errorf("get %q: bad length in %q", key, line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(rw, buf); err != nil {
		return nil, false, err
	}
	if !bytes.HasSuffix(buf, []byte("\r\n")) {
		return nil, false, fmt.Errorf("get %q: value not followed by CRLF", key)
	}
	if line, err = readLine(rw); err != nil {
		return nil, false, err
	}
	if line != "END" {
		return nil, false, fmt.Errorf("get %q: unexpected reply %q after value", key, line)
	}
	return buf[:n], true, nil
}
