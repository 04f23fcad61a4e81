package benchmarks

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// redisBinary is the server the harness runs (the Debian package
// "redis-server"; the main module's `make test` installs it).
const redisBinary = "/usr/bin/redis-server"

// errNoRedis is returned by startRedis when the binary is missing.
var errNoRedis = errors.New("benchmarks: " + redisBinary + " not installed (apt-get install redis-server, or make redis)")

// sharedRD is the Redis server started by TestMain, or nil.
var (
	sharedRD    *rdServer
	sharedRDErr error
)

// rdServer is a redis-server process on a free loopback port, started once
// by TestMain and shared by every Redis case, with a counting proxy in
// front of it: every Redis client of the harness connects to the proxy's
// address, so that the commands each request sends are counted as the
// client sent them (a Lua script is one EVALSHA), which the server's own
// INFO commandstats cannot tell (it also counts the commands a script runs).
type rdServer struct {
	// addr is the proxy's address, the one clients use.
	addr string
	// serverAddr is redis-server's own address.
	serverAddr string
	cmd        *exec.Cmd
	done       chan struct{}
	proxy      *cmdProxy
}

// startRedis starts redis-server on a free loopback port without
// persistence (--save "" --appendonly no), waits until it reports this
// process's pid, and starts the counting proxy in front of it.
func startRedis() (*rdServer, error) {
	if _, err := os.Stat(redisBinary); err != nil {
		return nil, errNoRedis
	}
	var lastErr error
	for range 5 { // the free port may be taken before redis-server binds it
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		dir, err := os.MkdirTemp("", "benchmarks-redis-")
		if err != nil {
			return nil, err
		}
		args := []string{
			"--port", port, "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no",
			"--dir", dir, "--loglevel", "warning",
		}
		s := &rdServer{serverAddr: net.JoinHostPort("127.0.0.1", port), cmd: exec.Command(redisBinary, args...), done: make(chan struct{})}
		if err := s.cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		go func() { _ = s.cmd.Wait(); os.RemoveAll(dir); close(s.done) }()
		if lastErr = s.waitReady(); lastErr != nil {
			s.stop()
			continue
		}
		if s.proxy, lastErr = startProxy(s.serverAddr); lastErr != nil {
			s.stop()
			return nil, lastErr
		}
		s.addr = s.proxy.addr
		return s, nil
	}
	return nil, lastErr
}

// waitReady polls the server until it reports this process's pid.
func (s *rdServer) waitReady() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pid, err := s.pid()
		if err == nil && pid == s.cmd.Process.Pid {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("benchmarks: redis-server on %s exited", s.serverAddr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("benchmarks: redis-server on %s did not answer: %v", s.serverAddr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pid returns the process_id of INFO server, asked on a fresh connection
// straight to the server (not counted).
func (s *rdServer) pid() (int, error) {
	reply, err := s.do("INFO", "server")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(reply, "\r\n") {
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("benchmarks: INFO server without process_id")
}

// do sends one command on a fresh connection straight to the server (not
// counted) and returns a bulk string, simple string or integer reply.
func (s *rdServer) do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.serverAddr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(respCommand(args...)); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"), strings.HasPrefix(line, ":"):
		return line[1:], nil
	case strings.HasPrefix(line, "-"):
		return "", errors.New("benchmarks: redis: " + line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("benchmarks: redis: reply %q", line)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	}
	return "", fmt.Errorf("benchmarks: redis: reply %q", line)
}

// respCommand encodes a command as a RESP array of bulk strings.
func respCommand(args ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.Bytes()
}

// stop stops the proxy and kills the server, and waits for it to exit.
func (s *rdServer) stop() {
	if s.proxy != nil {
		s.proxy.close()
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// cmdProxy is a TCP proxy in front of a Redis server that counts the
// commands its clients send, by name. It parses the client side of each
// connection as RESP (arrays of bulk strings, as every client library
// sends them, or inline commands) and copies the server's replies back
// untouched.
type cmdProxy struct {
	addr     string
	upstream string
	l        net.Listener

	mu     sync.Mutex
	counts map[string]uint64
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(upstream string) (*cmdProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &cmdProxy{addr: l.Addr().String(), upstream: upstream, l: l, counts: map[string]uint64{}, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *cmdProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.DialTimeout("tcp", p.upstream, time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(c, u) // replies, untouched
			c.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.forward(c, u)
			u.Close()
			p.mu.Lock()
			delete(p.conns, c)
			delete(p.conns, u)
			p.mu.Unlock()
		}()
	}
}

// forward copies the commands read from c to u, counting each, and sends
// what it has whenever nothing more is buffered (so pipelines stay
// pipelined).
func (p *cmdProxy) forward(c, u net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(u, 64<<10)
	for {
		name, err := readCommand(r, w)
		if err != nil {
			_ = w.Flush()
			return
		}
		p.mu.Lock()
		p.counts[name]++
		p.mu.Unlock()
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// readCommand reads one command from r, writes its bytes to w, and returns
// its name in upper case.
func readCommand(r *bufio.Reader, w io.Writer) (string, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	if _, err := w.Write(line); err != nil {
		return "", err
	}
	if len(line) == 0 || line[0] != '*' {
		// An inline command: the name is the first word.
		f := strings.Fields(string(line))
		if len(f) == 0 {
			return "", errors.New("empty inline command")
		}
		return strings.ToUpper(f[0]), nil
	}
	n, err := strconv.Atoi(strings.TrimRight(string(line[1:]), "\r\n"))
	if err != nil || n < 1 {
		return "", fmt.Errorf("bad array header %q", line)
	}
	var name string
	for i := range n {
		h, err := r.ReadSlice('\n')
		if err != nil {
			return "", err
		}
		if _, err := w.Write(h); err != nil {
			return "", err
		}
		if len(h) == 0 || h[0] != '$' {
			return "", fmt.Errorf("bad bulk header %q", h)
		}
		size, err := strconv.Atoi(strings.TrimRight(string(h[1:]), "\r\n"))
		if err != nil || size < 0 {
			return "", fmt.Errorf("bad bulk header %q", h)
		}
		if i == 0 {
			b := make([]byte, size+2)
			if _, err := io.ReadFull(r, b); err != nil {
				return "", err
			}
			if _, err := w.Write(b); err != nil {
				return "", err
			}
			name = strings.ToUpper(string(b[:size]))
			continue
		}
		if _, err := io.CopyN(w, r, int64(size)+2); err != nil {
			return "", err
		}
	}
	return name, nil
}

// snapshot returns a copy of the counts.
func (p *cmdProxy) snapshot() map[string]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]uint64, len(p.counts))
	for k, v := range p.counts {
		m[k] = v
	}
	return m
}

// close stops accepting and closes every proxied connection.
func (p *cmdProxy) close() {
	p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
