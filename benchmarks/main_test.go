package benchmarks

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestMain puts every library on the same footing and starts the shared
// memcached server:
//
//   - gin runs in release mode, as in production;
//   - the default slog logger discards its records: gin-contrib/sessions
//     logs an ERROR for every cookie it cannot decode and every session
//     missing from its store, and those writes are not what is measured;
//   - one memcached on a free loopback port serves every memcached case,
//     and is stopped at the end.
func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	slog.SetDefault(slog.New(slog.DiscardHandler))
	sharedMC, sharedMCErr = startMemcached()
	code := m.Run()
	if sharedMC != nil {
		sharedMC.stop()
	}
	os.Exit(code)
}

// skipOrFail ends a memcached case when the server could not be started:
// a skip on a developer machine without memcached, a failure in CI
// (CI=true), where a silent skip would prove nothing.
func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, errNoMemcached) && os.Getenv("CI") != "true" {
		tb.Skip(err.Error())
	}
	tb.Fatal(fmt.Sprint("memcached: ", err))
}
