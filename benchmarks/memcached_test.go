package benchmarks

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memcachedBinary is the server the harness runs (the Debian package
// "memcached"; the main module's `make test` installs it).
const memcachedBinary = "/usr/bin/memcached"

// mcServer is a memcached process on a free loopback port, started once by
// TestMain and shared by every memcached case.
type mcServer struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// errNoMemcached is returned by startMemcached when the binary is missing.
var errNoMemcached = errors.New("benchmarks: " + memcachedBinary + " not installed (apt-get install memcached)")

// startMemcached starts memcached on a free loopback port with 256 MB of
// item memory and waits until it answers.
func startMemcached() (*mcServer, error) {
	if _, err := os.Stat(memcachedBinary); err != nil {
		return nil, errNoMemcached
	}
	var lastErr error
	for range 5 { // the free port may be taken before memcached binds it
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		args := []string{"-l", "127.0.0.1", "-p", port, "-U", "0", "-m", "256"}
		if os.Geteuid() == 0 {
			args = append(args, "-u", "nobody")
		}
		s := &mcServer{addr: net.JoinHostPort("127.0.0.1", port), cmd: exec.Command(memcachedBinary, args...), done: make(chan struct{})}
		if err := s.cmd.Start(); err != nil {
			return nil, err
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		if lastErr = s.waitReady(); lastErr == nil {
			return s, nil
		}
		s.stop()
	}
	return nil, lastErr
}

// waitReady polls the server until it reports this process's pid.
func (s *mcServer) waitReady() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := s.stats()
		if err == nil && st["pid"] == uint64(s.cmd.Process.Pid) {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("benchmarks: memcached on %s exited", s.addr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("benchmarks: memcached on %s did not answer: %v", s.addr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop kills the server and waits for it to exit.
func (s *mcServer) stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// stats returns the numeric values of the server's `stats`, read on a fresh
// connection.
func (s *mcServer) stats() (map[string]uint64, error) {
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("stats\r\n")); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	st := make(map[string]uint64)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		f := strings.Fields(line)
		if len(f) == 1 && f[0] == "END" {
			return st, nil
		}
		if len(f) == 3 && f[0] == "STAT" {
			if n, err := strconv.ParseUint(f[2], 10, 64); err == nil {
				st[f[1]] = n
			}
		}
	}
}

// mcCounts are the server's command counters that a request can move.
type mcCounts struct {
	get, set, touch, del uint64
}

// counts reads the counters: cmd_get counts keys fetched by get and gets,
// cmd_set counts set, add, replace and cas, cmd_touch counts touch, and
// deletes count as hits plus misses.
func (s *mcServer) counts(tb testing.TB) mcCounts {
	tb.Helper()
	st, err := s.stats()
	if err != nil {
		tb.Fatalf("memcached stats: %v", err)
	}
	return mcCounts{
		get:   st["cmd_get"],
		set:   st["cmd_set"],
		touch: st["cmd_touch"],
		del:   st["delete_hits"] + st["delete_misses"],
	}
}

// report adds the commands per operation between before and after to b's
// results.
func reportCommands(b *testing.B, before, after mcCounts) {
	n := float64(b.N)
	b.ReportMetric(float64(after.get-before.get)/n, "mcget/op")
	b.ReportMetric(float64(after.set-before.set)/n, "mcset/op")
	b.ReportMetric(float64(after.touch-before.touch)/n, "mctouch/op")
	b.ReportMetric(float64(after.del-before.del)/n, "mcdel/op")
}
