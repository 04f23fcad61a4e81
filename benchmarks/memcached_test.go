package benchmarks

import (
	"testing"

	"github.com/securestack/ginsession/internal/memcachedtest"
)

// mcServer is the memcached server started by TestMain and shared by
// every memcached case, with 256 MB of item memory.
type mcServer struct {
	*memcachedtest.Server
	stop func()
}

// startMemcached starts the shared memcached server.
func startMemcached() (*mcServer, error) {
	srv, stop, err := memcachedtest.StartMain(memcachedtest.WithMemory(256))
	if err != nil {
		return nil, err
	}
	return &mcServer{Server: srv, stop: stop}, nil
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
	st := s.Stats(tb)
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
