package redistest

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestStartDoDump(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q, want a loopback address", s.Addr)
	}
	if got := s.MustDo(t, "PING"); got != "PONG" {
		t.Fatalf("PING = %v", got)
	}
	s.MustDo(t, "SET", "a", "1")
	s.MustDo(t, "SET", "b:x", strings.Repeat("v", 5000), "PX", 100000)
	if got := s.MustDo(t, "INCR", "n"); got != int64(1) {
		t.Errorf("INCR = %#v", got)
	}
	if got := s.MustDo(t, "GET", "missing"); got != nil {
		t.Errorf("GET missing = %#v", got)
	}
	if got := s.MustDo(t, "MGET", "a", "missing"); len(got.([]any)) != 2 {
		t.Errorf("MGET = %#v", got)
	}
	if _, err := s.Do("NOSUCHCOMMAND"); err == nil || !strings.HasPrefix(err.Error(), "ERR ") {
		t.Errorf("unknown command: err = %v", err)
	}
	dump := s.Dump(t)
	if len(dump) != 3 || string(dump["a"]) != "1" || len(dump["b:x"]) != 5000 {
		t.Errorf("Dump = %d items, a=%q, len(b:x)=%d", len(dump), dump["a"], len(dump["b:x"]))
	}
	info, err := s.Info("persistence")
	if err != nil {
		t.Fatal(err)
	}
	if info["aof_enabled"] != "0" {
		t.Errorf("aof_enabled = %q, want 0", info["aof_enabled"])
	}
	if got := s.MustDo(t, "CONFIG", "GET", "save").([]any); got[1] != "" {
		t.Errorf("save = %q, want none", got[1])
	}
}

func TestStopRestart(t *testing.T) {
	s := Start(t)
	addr := s.Addr
	s.MustDo(t, "SET", "k", "v")
	s.MustDo(t, "SCRIPT", "LOAD", "return 1")
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
	if n := s.MustDo(t, "DBSIZE"); n != int64(0) {
		t.Errorf("restarted server holds %v keys", n)
	}
	s.Restart(t) // while running
	s.MustDo(t, "SET", "k", "v")
}

func TestStartMain(t *testing.T) {
	s, stop, err := StartMain()
	if err != nil {
		SkipOrFail(t, err)
	}
	s.MustDo(t, "SET", "k", "v")
	stop()
	stop()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("PING after stop succeeded")
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
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatal("a paused server answered")
	}
	s.Resume(t)
	s.MustDo(t, "SET", "k", "v")
	s.Pause(t) // the cleanup kills a paused server
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
	s.MustDo(t, "SET", "k", "v")
}

func TestWithArgs(t *testing.T) {
	s := Start(t, WithArgs("--maxmemory", "1mb", "--maxmemory-policy", "noeviction"))
	got := s.MustDo(t, "CONFIG", "GET", "maxmemory-policy").([]any)
	if got[1] != "noeviction" {
		t.Errorf("maxmemory-policy = %v", got[1])
	}
	// An idle server uses about 0.9 MB: a few writes fill it.
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = s.Do("SET", i, strings.Repeat("v", 32<<10))
	}
	if err == nil || !strings.HasPrefix(err.Error(), "OOM ") {
		t.Errorf("SET on a full server: err = %v, want OOM", err)
	}
}

func TestReplica(t *testing.T) {
	m := Start(t)
	r := Start(t, WithReplicaOf(m))
	m.MustDo(t, "SET", "k", "v")
	if n := m.MustDo(t, "WAIT", 1, 5000); n != int64(1) {
		t.Fatalf("WAIT = %v, want 1", n)
	}
	if v := r.MustDo(t, "GET", "k"); v != "v" {
		t.Errorf("replica GET = %v", v)
	}
	r.Stop(t)
	m.MustDo(t, "SET", "k", "w")
	if n := m.MustDo(t, "WAIT", 1, 50); n != int64(0) {
		t.Errorf("WAIT without the replica = %v, want 0", n)
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Addrs()) != 3 {
		t.Fatalf("Addrs = %v", c.Addrs())
	}
	// Every node owns slots: keys spread over them, and a node answers
	// MOVED for the others' keys.
	owners := map[string]bool{}
	for _, n := range c.Nodes {
		for i := range 50 {
			key := "k" + string(rune('a'+i%26)) + strings.Repeat("x", i)
			if _, err := n.Do("SET", key, "v"); err == nil {
				owners[n.Addr] = true
			} else if !strings.HasPrefix(err.Error(), "MOVED ") {
				t.Fatalf("SET %s on %s: %v", key, n.Addr, err)
			}
		}
	}
	if len(owners) != 3 {
		t.Errorf("keys landed on %d nodes, want 3", len(owners))
	}
	if len(c.Dump(t)) != 50 {
		t.Errorf("Dump holds %d keys, want 50", len(c.Dump(t)))
	}
}
