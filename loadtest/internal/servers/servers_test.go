package servers

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// need skips the test when a binary is missing, or fails it under CI=true.
func need(t *testing.T, bins ...string) {
	t.Helper()
	if err := Need(bins...); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true: these tests must not be skipped in CI", err)
		}
		t.Skip(err.Error())
	}
}

func newGroup(t *testing.T) *Group {
	t.Helper()
	g, err := NewGroup()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// gone reports whether no process has pid any more.
func gone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

func TestGroupKillsEverything(t *testing.T) {
	need(t, MemcachedBinary, RedisBinary)
	g := newGroup(t)
	mc, err := g.Memcached(64)
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.Redis("redis")
	if err != nil {
		t.Fatal(err)
	}
	mcPid := mc.Pid()
	mc.Kill()
	if !gone(mcPid) {
		t.Fatalf("memcached %d still runs after Kill", mcPid)
	}
	if err := mc.Start(); err != nil {
		t.Fatalf("restart on the same address: %v", err)
	}
	if _, err := memcachedStats(context.Background(), mc.Addr); err != nil {
		t.Fatalf("restarted memcached does not answer: %v", err)
	}
	pids := g.Pids()
	if len(pids) != 2 {
		t.Fatalf("Pids = %v, want 2", pids)
	}
	if _, err := Do(context.Background(), r.Addr, "PING"); err != nil {
		t.Fatal(err)
	}
	g.Close()
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("process %d still runs after Close", pid)
		}
	}
	if _, err := os.Stat(g.dir); !os.IsNotExist(err) {
		t.Errorf("Close left %s: %v", g.dir, err)
	}
}

func TestSilentNeverAnswers(t *testing.T) {
	g := newGroup(t)
	s, err := g.Silent()
	if err != nil {
		t.Fatal(err)
	}
	c := Admin(s.Addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("PING failed after %v, before the deadline: the listener answered or refused", d)
	}
	if s.Accepted() == 0 {
		t.Fatal("no connection accepted")
	}
}
