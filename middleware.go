package ginsession

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// Middleware returns the Gin middleware that loads each request's session.
// It is the same as New(m).
func (m *Manager) Middleware() gin.HandlerFunc { return New(m) }

func (m *Manager) handle(c *gin.Context) {
	c.Set(ManagerKey, m)
	id, ok := m.cookie.read(c.Request.Header)
	if !ok {
		return
	}
	key, ok := m.parseToken(id)
	if !ok {
		// Junk never reaches the store, so it says nothing of its health.
		m.stats.malformed.Add(1)
		m.unknown(c)
		return
	}
	start := m.now()
	s, err := m.resumeKey(c.Request.Context(), id, key, start)
	switch {
	case err == nil:
		m.failures.ok(c.Request.Context(), m, start)
		if s.ID != id {
			m.cookie.set(c, s) // renewed
		}
		m.setCurrent(c, s)
	case errors.Is(err, ErrNotFound):
		m.failures.ok(c.Request.Context(), m, start)
		m.unknown(c)
	default:
		c.Set(loadStartKey, start)
		m.cfg.errorHandler(c, err)
	}
}

// loadStartKey holds, for the error handler, when the failed load began.
const loadStartKey = "ginsession.loadStart"

// unknown handles a cookie that names no live session: the ID is never
// adopted, the cookie is cleared and the hook, if any, is told.
func (m *Manager) unknown(c *gin.Context) {
	m.cookie.clear(c)
	if m.cfg.unknownHook != nil {
		m.cfg.unknownHook(c)
	}
}

// setCurrent makes s the request's session, in the gin.Context and, when
// the store can use it (see Manager.inContext), in the request's context.
func (m *Manager) setCurrent(c *gin.Context, s *Session) {
	c.Set(SessionKey, s)
	if !m.inContext {
		return
	}
	if b, ok := c.Request.Context().Value(bindingKey{}).(*binding); ok {
		b.s.Store(s)
		return
	}
	b := new(binding)
	b.s.Store(s)
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), bindingKey{}, b))
}

// clearCurrent removes the request's session.
func (m *Manager) clearCurrent(c *gin.Context) {
	c.Delete(SessionKey)
	if b, ok := c.Request.Context().Value(bindingKey{}).(*binding); ok {
		b.s.Store(nil)
	}
}

// bindingKey is the request-context key of a *binding.
type bindingKey struct{}

// binding holds the request's current session in its context. The helpers
// replace it when they change the session, so it is never stale.
type binding struct{ s atomic.Pointer[Session] }

// sessionFromContext returns the session the middleware bound to ctx (a
// request's context, or the *gin.Context itself), or nil.
func sessionFromContext(ctx context.Context) *Session {
	if b, ok := ctx.Value(bindingKey{}).(*binding); ok {
		return b.s.Load()
	}
	s, _ := ctx.Value(SessionKey).(*Session) // a *gin.Context
	return s
}

// defaultErrorHandler logs the error (see failureLog) and answers 503.
func (m *Manager) defaultErrorHandler(c *gin.Context, err error) {
	if !errors.Is(err, context.Canceled) {
		start, ok := c.Value(loadStartKey).(time.Time)
		if !ok {
			start = m.now()
		}
		m.failures.failed(c.Request.Context(), m, start, c.Request.Method, c.FullPath(), err)
	}
	c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"error": "session store unavailable"})
}

// failureLogInterval is the least time between two log records of store
// failures during an outage.
const failureLogInterval = time.Second

// failureLog rate-limits the log records of the store failures that the
// default error handler meets: a store outage under load fails every
// request, and one record each would flood the logs. It writes the first
// failure, then at most one record per failureLogInterval, each with the
// number of failures it stands for, and one record when a load succeeds
// again. Manager.Stats counts every failure exactly.
//
// Each failure and success carries the time its load began, so that the
// requests in flight when the store goes down or comes back, which finish
// in any order, do not flip the log between "down" and "back": a success
// that began before the outage was noticed says nothing of recovery, and a
// failure that began before the recovery was noticed belongs to the outage
// just ended.
type failureLog struct {
	failing atomic.Bool // read on every request: set while an outage is logged

	mu         sync.Mutex
	since      time.Time // when the outage was noticed
	back       time.Time // when the last recovery was noticed
	last       time.Time // when the last record was written
	suppressed uint64    // failures since that record
	total      uint64    // failures since the outage began
}

// failed records a failure of a load begun at start and writes a record
// if one is due.
func (l *failureLog) failed(ctx context.Context, m *Manager, start time.Time, method, path string, err error) {
	now := m.now()
	l.mu.Lock()
	first := !l.failing.Load()
	if first && start.Before(l.back) {
		// In flight when the store came back: part of the outage that
		// the recovery record already counted.
		l.mu.Unlock()
		return
	}
	l.total++
	if !first && now.Sub(l.last) < failureLogInterval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	if first {
		l.since = now
		l.failing.Store(true)
	}
	suppressed := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	m.cfg.logger.ErrorContext(ctx, "ginsession: cannot load session",
		slog.String("method", method),
		slog.String("path", path),
		slog.Any("error", err),
		slog.Uint64("suppressed", suppressed))
}

// ok notes a successful store round trip of a load begun at start; after
// an outage it writes one record saying that the store is back. It costs
// an atomic load otherwise.
func (l *failureLog) ok(ctx context.Context, m *Manager, start time.Time) {
	if !l.failing.Load() {
		return
	}
	now := m.now()
	l.mu.Lock()
	if !l.failing.Load() || start.Before(l.since) {
		// Already noticed, or in flight when the outage began.
		l.mu.Unlock()
		return
	}
	l.failing.Store(false)
	total, since := l.total, l.since
	l.total, l.suppressed, l.back = 0, 0, now
	l.mu.Unlock()
	m.cfg.logger.InfoContext(ctx, "ginsession: session store available again",
		slog.Uint64("failures", total),
		slog.Duration("outage", now.Sub(since)))
}
