package memcachedtest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// set stores key=value through the raw protocol.
func set(t *testing.T, s *Server, key, value string) {
	t.Helper()
	err := withConn(s.Addr, func(rw *bufio.ReadWriter) error {
		line, err := command(rw, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(value), value))
		if err != nil {
			return err
		}
		if line != "STORED" {
			return fmt.Errorf("set: %q", line)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStartStatsDump(t *testing.T) {
	s := Start(t, WithMemory(16))
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q, want a loopback address", s.Addr)
	}
	before := s.Stats(t)
	if before["pid"] == 0 {
		t.Fatalf("stats lack pid: %v", before)
	}
	set(t, s, "a", "1")
	set(t, s, "b:x", strings.Repeat("v", 5000))
	after := s.Stats(t)
	if got := after["cmd_set"] - before["cmd_set"]; got != 2 {
		t.Errorf("cmd_set rose by %d, want 2", got)
	}
	dump := s.Dump(t)
	if len(dump) != 2 || string(dump["a"]) != "1" || len(dump["b:x"]) != 5000 {
		t.Errorf("Dump = %d items, a=%q, len(b:x)=%d", len(dump), dump["a"], len(dump["b:x"]))
	}
	s.FlushAll(t)
	if dump := s.Dump(t); len(dump) != 0 {
		t.Errorf("Dump after FlushAll has %d items", len(dump))
	}
}

func TestStopRestart(t *testing.T) {
	s := Start(t)
	addr := s.Addr
	set(t, s, "k", "v")
	s.Stop(t)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("dial after Stop succeeded")
	}
	s.Stop(t) // idempotent
	s.Restart(t)
	if s.Addr != addr {
		t.Fatalf("Addr after Restart = %q, want %q", s.Addr, addr)
	}
	if dump := s.Dump(t); len(dump) != 0 {
		t.Errorf("restarted server is not empty: %v", dump)
	}
	s.Restart(t) // while running
	set(t, s, "k", "v")
}

func TestMaxItemSize(t *testing.T) {
	s := Start(t, WithMaxItemSize(64*1024))
	if got := s.Stats(t)["limit_maxbytes"]; got == 0 {
		t.Fatalf("limit_maxbytes missing")
	}
	err := withConn(s.Addr, func(rw *bufio.ReadWriter) error {
		v := strings.Repeat("x", 100*1024)
		line, err := command(rw, fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(v), v))
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "SERVER_ERROR") {
			return fmt.Errorf("oversized set: %q, want SERVER_ERROR", line)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStartMain(t *testing.T) {
	s, stop, err := StartMain()
	if err != nil {
		SkipOrFail(t, err)
	}
	set(t, s, "k", "v")
	stop()
	stop()
}

func TestMetadump(t *testing.T) {
	s := Start(t)
	err := withConn(s.Addr, func(rw *bufio.ReadWriter) error {
		_, err := command(rw, "set forever 0 0 1\r\nx\r\nset soon 0 100 1\r\ny\r\n")
		if err != nil {
			return err
		}
		_, err = readLine(rw)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	exp := map[string]int64{}
	for _, m := range s.Metadump(t) {
		exp[m.Key] = m.Exp
		if m.Size <= 0 {
			t.Errorf("%s: size %d", m.Key, m.Size)
		}
	}
	if exp["forever"] != -1 {
		t.Errorf("exp of forever = %d, want -1", exp["forever"])
	}
	if d := exp["soon"] - time.Now().Unix(); d < 98 || d > 102 {
		t.Errorf("exp of soon is %ds from now, want about 100", d)
	}
}

func TestPauseResume(t *testing.T) {
	s := Start(t)
	s.Pause(t)
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		t.Fatalf("a paused server still accepts connections: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatal("a paused server answered")
	}
	s.Resume(t)
	set(t, s, "k", "v")
	s.Pause(t) // Stop in Cleanup kills a paused server
}

func TestRestartWaitsForPort(t *testing.T) {
	s := Start(t)
	s.Stop(t)
	// Another process holds the port for a while: Restart retries, and
	// must not mistake that listener for its server.
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		t.Fatalf("take the port: %v", err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		l.Close()
	}()
	start := time.Now()
	s.Restart(t)
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("Restart returned after %v, while the port was taken", waited)
	}
	set(t, s, "k", "v")
}
