package servers

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// quiet discards go-redis's own log lines (one per failed dial while
// servers start).
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	os.Exit(m.Run())
}
