// Package ginsession is session management for Gin that is secure by
// default, fast, and ready to scale out.
//
// A Manager runs the session lifecycle on a store (in memory by default,
// memcached for several instances: package stores/memcached). The
// middleware returned by New loads each request's session and binds it to
// the gin.Context:
//
//	m := ginsession.NewManager(nil) // in-memory store
//	defer m.Close()
//	r := gin.New()
//	r.Use(ginsession.New(m))
//	r.POST("/login", func(c *gin.Context) {
//		// ... check credentials ...
//		if _, err := ginsession.Login(c, userID, map[string]any{"role": "user"}); err != nil { ... }
//	})
//	r.GET("/profile", ginsession.Required(), func(c *gin.Context) {
//		s := c.MustGet(ginsession.SessionKey).(*ginsession.Session)
//		...
//	})
//
// Session IDs are 256-bit random tokens; stores see only their hash. The
// cookie defaults to __Host-session with HttpOnly, Secure, SameSite=Lax and
// Path=/. Login rotates away any session the request carried (session
// fixation), idle and absolute timeouts are both enforced, and updates merge
// atomically so concurrent requests never lose each other's writes.
package ginsession

import (
	"errors"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Context keys under which the middleware stores the session and the
// Manager.
const (
	// SessionKey holds the request's *Session when it has a live one:
	// c.MustGet(SessionKey).(*Session). Behind Required, MustGet is safe.
	SessionKey = "session"
	// ManagerKey holds the *Manager that served the request; it is always set.
	ManagerKey = "sessionManager"
)

// New returns the Gin middleware that loads each request's session:
//
//  1. It sets ManagerKey to m.
//  2. It reads the session cookie. A value that is not a well-formed ID is
//     treated as no session, without any store call, and the cookie is
//     cleared. Such cookies are counted (Manager.Stats), not logged.
//  3. It looks the session up. A missing or expired session is no session,
//     and the stale cookie is cleared. A store error goes to the error
//     handler (WithErrorHandler; by default 503).
//  4. If the idle deadline has gone stale by at least the refresh interval,
//     it extends it with a store touch; most requests write nothing.
//  5. It sets SessionKey to the *Session and calls the next handler. Nothing
//     happens after the handler returns: cookies are only ever set by Login,
//     Logout and Rotate, before the response body is written.
func New(m *Manager) gin.HandlerFunc {
	if m == nil {
		panic("ginsession.New expects a non-nil *Manager")
	}
	return m.handle
}

func (m *Manager) handle(c *gin.Context) {
	c.Set(ManagerKey, m)
	id, ok := m.cookie.read(c.Request.Header)
	if !ok {
		return
	}
	if !wellFormed(id) {
		m.stats.malformed.Add(1)
		m.unknown(c)
		return
	}
	now := m.now()
	s, err := m.load(c.Request.Context(), id, now)
	if err == nil {
		s, err = m.maintain(c, s, now)
	}
	switch {
	case err == nil:
		c.Set(SessionKey, s)
	case errors.Is(err, ErrNotFound):
		m.stats.unknown.Add(1)
		m.unknown(c)
	default:
		m.stats.storeErrors.Add(1)
		m.cfg.errorHandler(c, err)
	}
}

// unknown handles a cookie that names no live session: the ID is never
// adopted, the cookie is cleared and the hook, if any, is told.
func (m *Manager) unknown(c *gin.Context) {
	m.cookie.clear(c)
	if m.cfg.unknownHook != nil {
		m.cfg.unknownHook(c)
	}
}

// maintain applies automatic renewal (WithRenewalInterval) and sliding
// expiry to a session just loaded for a request at now.
func (m *Manager) maintain(c *gin.Context, s *Session, now time.Time) (*Session, error) {
	if m.cfg.renewal > 0 && !s.forwarded && now.Sub(s.renewedAt) >= m.cfg.renewal {
		r, err := m.rotateKey(c.Request.Context(), s.key)
		if err != nil {
			return nil, err
		}
		m.cookie.set(c, r)
		return r, nil
	}
	next := m.idleDeadline(now, s.AbsoluteExpiresAt)
	if next.Sub(s.item.ExpiresAt) < max(m.cfg.refresh, 1) {
		return s, nil
	}
	if err := m.store.Touch(c.Request.Context(), s.key, next); err != nil {
		return nil, m.storeErr("refresh session", err)
	}
	m.stats.refreshes.Add(1)
	s.ExpiresAt = next
	return s, nil
}

// Current returns the request's session, if the middleware loaded a live
// one or a helper (Login, Rotate) created one during the request.
func Current(c *gin.Context) (*Session, bool) {
	v, ok := c.Get(SessionKey)
	if !ok {
		return nil, false
	}
	s, ok := v.(*Session)
	return s, ok && s != nil
}

// ErrNoManager is returned by the helpers when the request did not pass
// through the middleware (New or Manager.Middleware).
var ErrNoManager = errors.New("ginsession: no Manager in context; use the ginsession middleware")

func managerOf(c *gin.Context) (*Manager, error) {
	v, ok := c.Get(ManagerKey)
	if !ok {
		return nil, ErrNoManager
	}
	m, ok := v.(*Manager)
	if !ok || m == nil {
		return nil, ErrNoManager
	}
	return m, nil
}

// Login creates a session for userID holding data, sets the session cookie
// and makes the new session the request's current one. Any session the
// request already carried is deleted first, so an ID planted by an attacker
// before login is worthless after it (session fixation).
//
// Call Login before writing the response body. It returns the new session,
// or the error of CreateSession (for example a *RateLimitError).
func Login(c *gin.Context, userID string, data map[string]any) (*Session, error) {
	m, err := managerOf(c)
	if err != nil {
		return nil, err
	}
	ctx := c.Request.Context()
	if old, ok := Current(c); ok {
		if err := m.DeleteSession(ctx, old.ID); err != nil {
			return nil, err
		}
		c.Delete(SessionKey)
	}
	s, err := m.CreateSession(ctx, userID, data)
	if err != nil {
		return nil, err
	}
	m.cookie.set(c, s)
	c.Set(SessionKey, s)
	return s, nil
}

// Logout deletes the request's session and clears the cookie. It returns
// ErrNoSession if the request has no live session.
func Logout(c *gin.Context) error {
	m, err := managerOf(c)
	if err != nil {
		return err
	}
	s, ok := Current(c)
	if !ok {
		return ErrNoSession
	}
	if err := m.DeleteSession(c.Request.Context(), s.ID); err != nil {
		return err
	}
	m.cookie.clear(c)
	c.Delete(SessionKey)
	return nil
}

// Rotate gives the request's session a new ID (see Manager.RotateSession),
// sets the new cookie and returns the session. Rotate after any change of
// privilege. It returns ErrNoSession if the request has no live session.
func Rotate(c *gin.Context) (*Session, error) {
	m, err := managerOf(c)
	if err != nil {
		return nil, err
	}
	old, ok := Current(c)
	if !ok {
		return nil, ErrNoSession
	}
	s, err := m.rotateKey(c.Request.Context(), old.key)
	if err != nil {
		return nil, err
	}
	m.cookie.set(c, s)
	c.Set(SessionKey, s)
	return s, nil
}

// Update merges data into the request's session, atomically (see
// Manager.UpdateSession), and makes the updated session the request's
// current one, so later handlers see the change. On memcached it costs a
// single compare-and-swap when nothing changed the session since the
// middleware read it. It returns ErrNoSession if the request has no live
// session.
func Update(c *gin.Context, data map[string]any) error {
	m, err := managerOf(c)
	if err != nil {
		return err
	}
	s, ok := Current(c)
	if !ok {
		return ErrNoSession
	}
	next, err := m.update(c.Request.Context(), s.key, s, data)
	if err != nil {
		return err
	}
	next.ID, next.forwarded = s.ID, s.forwarded
	c.Set(SessionKey, next)
	return nil
}

// Required returns a middleware that aborts with 401 Unauthorized and the
// JSON body {"error": "Not authenticated"} when the request has no live
// session, so that handlers after it may call c.MustGet(SessionKey).
func Required() gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, ok := Current(c); !ok {
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "Not authenticated"})
		}
	}
}

// cookieCodec reads and writes the session cookie. The attribute string is
// built once, so setting a cookie is one concatenation.
type cookieCodec struct {
	name       string
	attrs      string // "; Path=/; HttpOnly; Secure; SameSite=Lax"
	clearValue string // the whole Set-Cookie value that deletes the cookie
	persistent bool
	now        func() time.Time
}

func newCookieCodec(cfg *config) cookieCodec {
	var b strings.Builder
	b.WriteString("; Path=")
	b.WriteString(cfg.cookiePath)
	if cfg.cookieDomain != "" {
		b.WriteString("; Domain=")
		b.WriteString(cfg.cookieDomain)
	}
	b.WriteString("; HttpOnly")
	if cfg.cookieSecure {
		b.WriteString("; Secure")
	}
	switch cfg.sameSite {
	case http.SameSiteLaxMode:
		b.WriteString("; SameSite=Lax")
	case http.SameSiteStrictMode:
		b.WriteString("; SameSite=Strict")
	case http.SameSiteNoneMode:
		b.WriteString("; SameSite=None")
	}
	attrs := b.String()
	return cookieCodec{
		name:       cfg.cookieName,
		attrs:      attrs,
		clearValue: cfg.cookieName + "=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT" + attrs,
		persistent: cfg.persistent,
		now:        cfg.now,
	}
}

// read returns the value of the first session cookie in the request's
// Cookie headers. It scans the header text in place and does not allocate.
func (cc *cookieCodec) read(h http.Header) (string, bool) {
	for _, line := range h[textproto.CanonicalMIMEHeaderKey("Cookie")] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimLeft(part, " \t")
			name, value, ok := strings.Cut(part, "=")
			if ok && strings.TrimRight(name, " \t") == cc.name {
				return strings.TrimRight(value, " \t"), true
			}
		}
	}
	return "", false
}

// set writes the Set-Cookie header for s, with Cache-Control: no-store so
// that no cache keeps a response that carries a session token.
func (cc *cookieCodec) set(c *gin.Context, s *Session) {
	v := cc.name + "=" + s.ID + cc.attrs
	if cc.persistent {
		secs := int64(s.AbsoluteExpiresAt.Sub(cc.now()) / time.Second)
		v += "; Max-Age=" + strconv.FormatInt(max(secs, 1), 10)
	}
	cc.replace(c.Writer.Header(), v)
}

// clear writes a Set-Cookie header that deletes the session cookie.
func (cc *cookieCodec) clear(c *gin.Context) {
	cc.replace(c.Writer.Header(), cc.clearValue)
}

// replace sets the session cookie's Set-Cookie header to v, dropping any
// earlier one for the same cookie in this response (a clear followed by a
// Login, say), and forbids caching the response.
func (cc *cookieCodec) replace(h http.Header, v string) {
	prev := h["Set-Cookie"]
	kept := prev[:0]
	for _, p := range prev {
		if !(strings.HasPrefix(p, cc.name) && strings.HasPrefix(p[len(cc.name):], "=")) {
			kept = append(kept, p)
		}
	}
	h["Set-Cookie"] = append(kept, v)
	h["Cache-Control"] = noStore
}

// noStore is the shared value of the Cache-Control header set with the
// cookie. Its capacity equals its length, so a later Header.Add copies it
// rather than writing into it.
var noStore = []string{"no-store"}
