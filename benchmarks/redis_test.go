package benchmarks

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/securestack/ginsession/internal/redistest"
)

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
	// Server is redis-server itself; its Do and Addr reach it directly,
	// not counted.
	*redistest.Server
	// addr is the proxy's address, the one clients use.
	addr    string
	proxy   *cmdProxy
	stopSrv func()
}

// startRedis starts redis-server without persistence and the counting
// proxy in front of it.
func startRedis() (*rdServer, error) {
	srv, stop, err := redistest.StartMain(redistest.WithArgs("--loglevel", "warning"))
	if err != nil {
		return nil, err
	}
	proxy, err := startProxy(srv.Addr)
	if err != nil {
		stop()
		return nil, err
	}
	return &rdServer{Server: srv, addr: proxy.addr, proxy: proxy, stopSrv: stop}, nil
}

// stop stops the proxy and the server.
func (s *rdServer) stop() {
	s.proxy.close()
	s.stopSrv()
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
