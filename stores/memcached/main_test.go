package memcached

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/securestack/ginsession/internal/memcachedtest"
)

// The package's tests share one server; each test's store has a key
// prefix of its own. Tests that stop the server or read its statistics
// start a server of their own.
var (
	shared    *memcachedtest.Server
	sharedErr error
)

func TestMain(m *testing.M) {
	s, stop, err := memcachedtest.StartMain()
	shared, sharedErr = s, err
	code := m.Run()
	stop()
	os.Exit(code)
}

// sharedServer returns the package's server, or skips (fails in CI) when
// memcached is not installed.
func sharedServer(tb testing.TB) *memcachedtest.Server {
	tb.Helper()
	if sharedErr != nil {
		memcachedtest.SkipOrFail(tb, sharedErr)
	}
	return shared
}

var prefixSeq atomic.Int64

// uniquePrefix returns a key prefix no other test uses.
func uniquePrefix() string {
	return fmt.Sprintf("t%d:", prefixSeq.Add(1))
}

// testTimeout is the timeout of the tests' clients: generous, because
// tests under -race with dozens of goroutines on two cores can leave a
// goroutine waiting for a CPU for longer than DefaultTimeout.
const testTimeout = 3 * time.Second

// newClient returns a client for addr that the test closes.
func newClient(tb testing.TB, addr string) *memcache.Client {
	tb.Helper()
	c := memcache.New(addr)
	c.Timeout = testTimeout
	c.MaxIdleConns = DefaultMaxIdleConns
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// newStore returns a store on srv (the shared server if nil) with a unique
// prefix, closed when the test ends.
func newStore(tb testing.TB, srv *memcachedtest.Server, opts ...Option) *Store {
	tb.Helper()
	if srv == nil {
		srv = sharedServer(tb)
	}
	s := New(newClient(tb, srv.Addr), append([]Option{WithPrefix(uniquePrefix())}, opts...)...)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// soon bounds how long a test waits for something that should be quick.
const soon = 5 * time.Second
