package ginsession

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/internal/limiter"
	"github.com/securestack/ginsession/stores"
)

// The engine's own tests (steps tables, properties, time going backwards,
// idle keys, compaction, the key cap, concurrency) are in internal/limiter.
// These test the public face: configuration, backends and fail modes.

// limT0 is the fixed instant the limiter tests count from.
var limT0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestLimiterAllowUsesMonotonicClock(t *testing.T) {
	l := NewLimiter(2, time.Hour)
	assert.True(t, l.Allow("k"))
	assert.True(t, l.Reserve("k").Allowed)
	d := l.Reserve("k")
	assert.False(t, d.Allowed)
	assert.InDelta(t, float64(time.Hour), float64(d.RetryAfter), float64(time.Minute))
	assert.Equal(t, 2, l.Limit())
	assert.Equal(t, time.Hour, l.Window())
}

// TestLimiterCapFailMode checks that WithMaxKeys and WithCapFailMode reach
// the in-process table: a new key finding it full is refused or admitted
// untracked.
func TestLimiterCapFailMode(t *testing.T) {
	const window = time.Minute
	tests := []struct {
		name string
		opts []LimiterOption
		want Decision
	}{
		{name: "fail closed by default", want: Decision{RetryAfter: window, ResetAfter: window}},
		{name: "fail closed", opts: []LimiterOption{WithCapFailMode(FailClosed)}, want: Decision{RetryAfter: window, ResetAfter: window}},
		{name: "fail open", opts: []LimiterOption{WithCapFailMode(FailOpen)}, want: Decision{Allowed: true, Remaining: 1, ResetAfter: window}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(2, window, append([]LimiterOption{WithMaxKeys(1)}, tt.opts...)...)
			require.True(t, l.AllowAt("k0", limT0))
			assert.Equal(t, tt.want, l.ReserveAt("new", limT0.Add(time.Second)))
			assert.Equal(t, 1, l.Len(), "the table never exceeds its cap")
		})
	}
}

// TestLimiterAllowAtDoesNotAllocate checks AllowAt's promise through the
// public method, dispatch to the engine included.
func TestLimiterAllowAtDoesNotAllocate(t *testing.T) {
	for _, limit := range []int{5, 1000} {
		l := NewLimiter(limit, time.Minute)
		now := limT0
		l.AllowAt("203.0.113.9", now)
		allocs := testing.AllocsPerRun(1000, func() {
			now = now.Add(time.Millisecond)
			l.AllowAt("203.0.113.9", now)
		})
		assert.Zero(t, allocs, "limit %d", limit)
	}
}

func TestNewLimiterPanics(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		window time.Duration
		opts   []LimiterOption
		want   string
	}{
		{"zero limit", 0, time.Second, nil, "ginsession.NewLimiter expects limit > 0"},
		{"negative limit", -1, time.Second, nil, "ginsession.NewLimiter expects limit > 0"},
		{"zero window", 1, 0, nil, "ginsession.NewLimiter expects window > 0"},
		{"negative window", 1, -time.Second, nil, "ginsession.NewLimiter expects window > 0"},
		{"huge window", 1, limiter.MaxWindow + 1, nil, "ginsession.NewLimiter expects window <= 2^62ns (146 years)"},
		{"zero max keys", 1, time.Second, []LimiterOption{WithMaxKeys(0)}, "ginsession.NewLimiter: WithMaxKeys(0) expects n > 0"},
		{"bad cap mode", 1, time.Second, []LimiterOption{WithCapFailMode(7)}, "ginsession.NewLimiter: WithCapFailMode(FailMode(7)) expects FailClosed or FailOpen"},
		{"bad backend mode", 1, time.Second, []LimiterOption{WithBackendFailMode(-1)}, "ginsession.NewLimiter: WithBackendFailMode(FailMode(-1)) expects FailClosed or FailOpen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, func() { NewLimiter(tt.limit, tt.window, tt.opts...) })
		})
	}
}

func TestFailModeString(t *testing.T) {
	assert.Equal(t, "FailClosed", FailClosed.String())
	assert.Equal(t, "FailOpen", FailOpen.String())
	assert.Equal(t, "FailMode(3)", FailMode(3).String())
}

// limFakeBackend is a LimiterBackend returning canned answers.
type limFakeBackend struct {
	d     Decision
	err   error
	calls []string
}

func (b *limFakeBackend) Admit(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (Decision, error) {
	b.calls = append(b.calls, fmt.Sprintf("%s %d %s %s", key, limit, window, now.Format(time.RFC3339)))
	return b.d, b.err
}

func TestLimiterBackend(t *testing.T) {
	down := fmt.Errorf("memcached: limiter get: %w: %w", stores.ErrUnavailable, errors.New("connection refused"))
	tests := []struct {
		name      string
		backend   *limFakeBackend
		mode      FailMode
		want      Decision
		wantErr   bool
		wantAllow bool
	}{
		{
			name:      "decision passed through",
			backend:   &limFakeBackend{d: Decision{Allowed: true, Remaining: 3, ResetAfter: time.Second}},
			want:      Decision{Allowed: true, Remaining: 3, ResetAfter: time.Second},
			wantAllow: true,
		},
		{
			name:    "error fails closed by default",
			backend: &limFakeBackend{err: down},
			want:    Decision{RetryAfter: time.Second, ResetAfter: time.Second},
			wantErr: true,
		},
		{
			name:      "error fails open",
			backend:   &limFakeBackend{err: down},
			mode:      FailOpen,
			want:      Decision{Allowed: true},
			wantErr:   true,
			wantAllow: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(4, time.Minute, WithLimiterBackend(tt.backend), WithBackendFailMode(tt.mode))
			d, err := l.ReserveAtContext(context.Background(), "user-1", limT0)
			assert.Equal(t, tt.want, d)
			if tt.wantErr {
				var le *LimiterError
				require.ErrorAs(t, err, &le)
				assert.Equal(t, tt.wantAllow, le.Allowed)
				assert.ErrorIs(t, err, stores.ErrUnavailable)
				assert.Contains(t, err.Error(), "ginsession: rate limiter backend failed")
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, l.ReserveAt("user-1", limT0))
			assert.Equal(t, tt.wantAllow, l.AllowAt("user-1", limT0))
			assert.Equal(t, "user-1 4 1m0s 2026-03-04T05:06:07Z", tt.backend.calls[0])
			assert.Len(t, tt.backend.calls, 3)
			assert.Zero(t, l.Len())
		})
	}
}
