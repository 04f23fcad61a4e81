package ginsession_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
)

func TestCreateLimiterPerUser(t *testing.T) {
	l := ginsession.NewLimiter(2, time.Minute)
	e := newEnv(t, ginsession.WithCreateLimiter(l))

	for i := 0; i < 2; i++ {
		_, err := e.m.CreateSession(ctx, "alice", nil)
		require.NoError(t, err)
	}
	e.clock.Advance(20 * time.Second)
	_, err := e.m.CreateSession(ctx, "alice", nil)
	require.ErrorIs(t, err, ginsession.ErrRateLimited)
	var rl *ginsession.RateLimitError
	require.True(t, errors.As(err, &rl))
	assert.Equal(t, 40*time.Second, rl.RetryAfter, "the first admission leaves the window at 1:00")

	_, err = e.m.CreateSession(ctx, "bob", nil)
	assert.NoError(t, err, "limits are per user")

	// Through Login: the application maps the error to 429.
	assert.Equal(t, http.StatusTooManyRequests, e.do(http.MethodPost, "/login?user=alice", "").Code)

	e.clock.Advance(40 * time.Second)
	_, err = e.m.CreateSession(ctx, "alice", nil)
	assert.NoError(t, err, "admitted again once the window slides")
}
