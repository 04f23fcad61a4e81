package servers

import (
	"net"
	"sync"
)

// Silent is a listener that accepts every connection and never reads
// from it nor writes to it: a store server that hangs, as a frozen
// process, a full accept queue behind a proxy or a black-holed network
// would. Clients connect at once and then wait for replies that never
// come.
type Silent struct {
	// Addr is the listener's host:port.
	Addr string

	ln   net.Listener
	done chan struct{}

	mu       sync.Mutex
	conns    []net.Conn
	accepted int
	closed   bool
}

// Silent starts a silent listener on a free loopback port.
func (g *Group) Silent() (*Silent, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Silent{Addr: ln.Addr().String(), ln: ln, done: make(chan struct{})}
	g.mu.Lock()
	g.silents = append(g.silents, s)
	g.mu.Unlock()
	go s.accept()
	return s, nil
}

func (s *Silent) accept() {
	defer close(s.done)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns = append(s.conns, c)
		s.accepted++
		s.mu.Unlock()
	}
}

// Accepted returns how many connections the listener accepted.
func (s *Silent) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Close stops listening and closes every accepted connection. It is
// idempotent.
func (s *Silent) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	_ = s.ln.Close()
	<-s.done
	for _, c := range conns {
		_ = c.Close()
	}
}
