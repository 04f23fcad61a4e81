package benchmarks

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/securestack/ginsession/internal/memcachedtest"
	"github.com/securestack/ginsession/internal/redistest"
)

// TestMain puts every library on the same footing and starts the shared
// servers:
//
//   - gin runs in release mode, as in production;
//   - the default slog logger discards its records: gin-contrib/sessions
//     logs an ERROR for every cookie it cannot decode and every session
//     missing from its store, and those writes are not what is measured;
//   - one memcached and one redis-server, each on a free loopback port,
//     serve every memcached and every Redis case, and are stopped at the
//     end.
func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	slog.SetDefault(slog.New(slog.DiscardHandler))
	sharedMC, sharedMCErr = startMemcached()
	sharedRD, sharedRDErr = startRedis()
	code := m.Run()
	if sharedMC != nil {
		sharedMC.stop()
	}
	if sharedRD != nil {
		sharedRD.stop()
	}
	os.Exit(code)
}

// skipOrFail ends a memcached or Redis case when its server could not be
// started: a skip on a developer machine without the binary, a failure in
// CI (CI=true), where a silent skip would prove nothing, and a failure
// whenever an installed server did not start.
func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	missing := errors.Is(err, memcachedtest.ErrNotInstalled) || errors.Is(err, redistest.ErrNotInstalled)
	if missing && os.Getenv("CI") != "true" {
		tb.Skip(err.Error())
	}
	if missing {
		tb.Fatal(fmt.Sprint(err, "; CI=true: the benchmarks' checks must not be skipped in CI"))
	}
	tb.Fatal(err)
}
