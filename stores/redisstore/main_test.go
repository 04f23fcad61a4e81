package redisstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/internal/redistest"
	"github.com/securestack/ginsession/stores"
)

// The package's tests share one server; each test's store has a key
// prefix of its own. Tests that stop the server, fill its memory or count
// its commands start a server of their own.
var (
	shared    *redistest.Server
	sharedErr error
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; outage tests make many.
	redis.SetLogger(quietLogger{})
	s, stop, err := redistest.StartMain()
	shared, sharedErr = s, err
	code := m.Run()
	stop()
	os.Exit(code)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// sharedServer returns the package's server, or skips (fails in CI) when
// Redis is not installed.
func sharedServer(tb testing.TB) *redistest.Server {
	tb.Helper()
	if sharedErr != nil {
		redistest.SkipOrFail(tb, sharedErr)
	}
	return shared
}

var prefixSeq atomic.Int64

// uniquePrefix returns a key prefix no other test uses.
func uniquePrefix() string {
	return fmt.Sprintf("t%d:", prefixSeq.Add(1))
}

var keySeq atomic.Int64

// testKey returns a key no other test uses.
func testKey() stores.Key {
	return stores.Key(sha256.Sum256(fmt.Appendf(nil, "redisstore-test-%d", keySeq.Add(1))))
}

func record(user string, data map[string]any) *stores.Record {
	return &stores.Record{Kind: stores.KindSession, UserID: user, Data: data, CreatedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()}
}

// testTimeout is the timeout of the tests' clients: generous, because
// tests under -race with dozens of goroutines on two cores can leave a
// goroutine waiting for a CPU for a long while.
const testTimeout = 3 * time.Second

// clientOptions returns the options of a test client for addr: the
// package's recommended settings with testTimeout.
func clientOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		DialTimeout:           testTimeout,
		ReadTimeout:           testTimeout,
		WriteTimeout:          testTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		DialerRetries:         1,
		PoolSize:              64,
	}
}

// newClient returns a client for addr that the test closes.
func newClient(tb testing.TB, addr string) *redis.Client {
	tb.Helper()
	c := redis.NewClient(clientOptions(addr))
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// newStore returns a store on srv (the shared server if nil) with a unique
// prefix, closed when the test ends.
func newStore(tb testing.TB, srv *redistest.Server, opts ...Option) *Store {
	tb.Helper()
	if srv == nil {
		srv = sharedServer(tb)
	}
	s := New(newClient(tb, srv.Addr), append([]Option{WithPrefix(uniquePrefix())}, opts...)...)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// counter is a go-redis hook that counts the commands a client sends, by
// name, leaving out the connection handshake (HELLO, CLIENT SETINFO and
// the like), and the round trips (a pipeline is one).
type counter struct {
	mu     sync.Mutex
	cmds   map[string]int
	trips  int
	replay map[string]bool // commands to send twice (a lost reply)
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if handshake(cmd) {
			return next(ctx, cmd)
		}
		c.mu.Lock()
		if c.cmds == nil {
			c.cmds = map[string]int{}
		}
		c.cmds[cmd.Name()]++
		c.trips++
		replay := c.replay[cmd.Name()]
		c.mu.Unlock()
		err := next(ctx, cmd)
		if replay && err == nil {
			// As if the reply had been lost and the client had sent
			// the command again.
			err = next(ctx, cmd)
		}
		return err
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.mu.Lock()
		counted := false
		for _, cmd := range cmds {
			if handshake(cmd) {
				continue
			}
			if c.cmds == nil {
				c.cmds = map[string]int{}
			}
			c.cmds[cmd.Name()]++
			counted = true
		}
		if counted {
			c.trips++
		}
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

// handshake reports whether cmd is part of go-redis's connection setup.
func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select", "readonly":
		return true
	}
	return false
}

// take returns the counts since the last take, and resets them.
func (c *counter) take() (cmds map[string]int, trips int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmds, trips = c.cmds, c.trips
	if cmds == nil {
		cmds = map[string]int{}
	}
	c.cmds, c.trips = nil, 0
	return cmds, trips
}

// countingStore returns a store on srv whose client counts its commands.
func countingStore(tb testing.TB, srv *redistest.Server, opts ...Option) (*Store, *counter) {
	tb.Helper()
	client := newClient(tb, srv.Addr)
	c := new(counter)
	client.AddHook(c)
	s := New(client, append([]Option{WithPrefix(uniquePrefix())}, opts...)...)
	return s, c
}
