package ginsession

import (
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/securestack/ginsession/stores"
)

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

// MustCurrent returns the request's session, like Current, and panics when
// the request has none. Use it in handlers behind Required, which answers
// 401 to requests without a session, so the panic marks a route that lacks
// it:
//
//	r.GET("/profile", ginsession.Required(), func(c *gin.Context) {
//		s := ginsession.MustCurrent(c)
//		...
//	})
//
// It is the typed form of c.MustGet(SessionKey).(*Session), which works
// too.
func MustCurrent(c *gin.Context) *Session {
	s, ok := Current(c)
	if !ok {
		panic("ginsession.MustCurrent: the request has no session; put ginsession.Required() in front of this handler")
	}
	return s
}

// current returns the request's Manager and session.
func current(c *gin.Context) (*Manager, *Session, error) {
	m, err := managerOf(c)
	if err != nil {
		return nil, nil, err
	}
	s, ok := Current(c)
	if !ok {
		return nil, nil, ErrNoSession
	}
	return m, s, nil
}

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

// LoginOption configures one Login.
type LoginOption func(*loginConfig)

type loginConfig struct {
	remember bool
}

// RememberMe makes the session's cookie persistent when remember is true:
// it gets a Max-Age reaching the session's absolute deadline, so it
// outlives the browser session ("remember me" on a login form). Other
// logins keep browser-session cookies (unless WithPersistentCookie makes
// every cookie persistent). The choice is stored with the session, so the
// cookies of its rotations and renewals keep it. The default is false.
func RememberMe(remember bool) LoginOption {
	return func(c *loginConfig) { c.remember = remember }
}

// Login creates a session for userID holding data, sets the session cookie
// and makes the new session the request's current one. Any session the
// request already carried is deleted first, so an ID planted by an
// attacker before login is worthless after it (session fixation), and the
// replaced session never counts against WithMaxSessionsPerUser. Options
// (RememberMe) follow the data.
//
// With WithCreateLimiter, the limiter is asked before anything else, keyed
// by userID, or for an anonymous session (an empty userID) by the client IP
// (ClientIPKey): a refused Login returns a *RateLimitError and changes
// nothing. If the new session cannot be created after the old one was
// deleted (a store failure, an unsupported value), the cookie is cleared
// and the request has no session.
//
// Call Login before writing the response body. It returns the new session.
// Manager.Replace is the same without Gin.
func Login(c *gin.Context, userID string, data map[string]any, opts ...LoginOption) (*Session, error) {
	m, err := managerOf(c)
	if err != nil {
		return nil, err
	}
	key := userID
	if userID == "" {
		key = "\x00ip\x00" + ClientIPKey(c)
	}
	old, _ := Current(c)
	s, deleted, err := m.replace(c.Request.Context(), old, key, userID, data, opts)
	if deleted {
		m.clearCurrent(c)
	}
	if err != nil {
		if deleted {
			m.cookie.clear(c)
		}
		return nil, err
	}
	m.cookie.set(c, s)
	m.setCurrent(c, s)
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
	if err := m.deleteKey(c.Request.Context(), s.key, &s.item, true); err != nil {
		return err
	}
	m.cookie.clear(c)
	m.clearCurrent(c)
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
	s, err := m.rotate(c.Request.Context(), old.key, &old.item, true)
	if err != nil {
		return nil, err
	}
	m.cookie.set(c, s)
	m.setCurrent(c, s)
	return s, nil
}

// Update merges data into the request's session, atomically (see
// Manager.UpdateSession: a nil value removes its key), and makes the
// updated session the request's current one, so later handlers see the
// change. On memcached and Redis it costs a single compare-and-swap when
// nothing changed the session since the middleware read it. It returns
// ErrNoSession if the request has no live session.
func Update(c *gin.Context, data map[string]any) error {
	return change(c, func(m *Manager, s *Session) (*Session, error) {
		return m.UpdateLoaded(c.Request.Context(), s, data)
	})
}

// Set stores value under key in the request's session: Update with one
// key. value must be of a type listed in stores.CheckValue.
func Set(c *gin.Context, key string, value any) error {
	if value == nil {
		return Delete(c, key)
	}
	return Update(c, map[string]any{key: value})
}

// Delete removes keys from the request's session, in one atomic write.
// Removing a missing key is not an error.
func Delete(c *gin.Context, keys ...string) error {
	data := make(map[string]any, len(keys))
	for _, k := range keys {
		data[k] = nil
	}
	return Update(c, data)
}

// Clear removes every key from the request's session data, in one atomic
// write; keys written by concurrent requests before it are removed too.
// The session itself lives on (Logout ends it).
func Clear(c *gin.Context) error {
	return change(c, func(m *Manager, s *Session) (*Session, error) {
		return m.edit(c.Request.Context(), s, func(cur *stores.Record) *stores.Record {
			next := *cur
			next.Data = map[string]any{}
			return &next
		})
	})
}

// FlashKey is the data key under which AddFlash keeps the session's flash
// messages, as a []any. It is the key gin-contrib/sessions uses, so that
// flashes added through package gincontrib read back here and the other
// way round.
const FlashKey = "_flash"

// AddFlash adds a flash message to the request's session: a value, of a
// type listed in stores.CheckValue (typically a string), shown once on a
// later request through Flashes. Appending is one atomic write, so
// messages added by concurrent requests are all kept.
func AddFlash(c *gin.Context, message any) error {
	if err := stores.CheckValue(message); err != nil {
		return fmt.Errorf("ginsession: add flash: %w", err)
	}
	message = stores.CloneValue(message)
	return change(c, func(m *Manager, s *Session) (*Session, error) {
		return m.edit(c.Request.Context(), s, func(cur *stores.Record) *stores.Record {
			next := *cur
			next.Data = maps.Clone(cur.Data)
			if next.Data == nil {
				next.Data = map[string]any{}
			}
			old, _ := cur.Data[FlashKey].([]any)
			next.Data[FlashKey] = append(slices.Clip(old), message)
			return &next
		})
	})
}

// Flashes takes the request's flash messages: it returns them, oldest
// first, and removes them from the session in the same atomic write, so
// that two concurrent requests never both show one. Without messages it
// returns nil and writes nothing.
func Flashes(c *gin.Context) ([]any, error) {
	m, s, err := current(c)
	if err != nil {
		return nil, err
	}
	if _, ok := s.Data[FlashKey]; !ok {
		// The session as loaded has none. One added since by a concurrent
		// request is taken by the next call.
		return nil, nil
	}
	var taken []any
	next, err := m.edit(c.Request.Context(), s, func(cur *stores.Record) *stores.Record {
		taken, _ = cur.Data[FlashKey].([]any)
		next := *cur
		next.Data = maps.Clone(cur.Data)
		delete(next.Data, FlashKey)
		return &next
	})
	if err != nil {
		return nil, err
	}
	m.setCurrent(c, next)
	return taken, nil
}

// Pop returns the value stored under key in the request's session and
// removes it, in one atomic write, so that two concurrent requests never
// both get it. It returns nil when the key is missing, and then writes
// nothing.
func Pop(c *gin.Context, key string) (any, error) {
	m, s, err := current(c)
	if err != nil {
		return nil, err
	}
	if _, ok := s.Data[key]; !ok {
		return nil, nil
	}
	var taken any
	next, err := m.edit(c.Request.Context(), s, func(cur *stores.Record) *stores.Record {
		taken = cur.Data[key]
		next := *cur
		next.Data = maps.Clone(cur.Data)
		delete(next.Data, key)
		return &next
	})
	if err != nil {
		return nil, err
	}
	m.setCurrent(c, next)
	return taken, nil
}

// change applies write to the request's session and makes the result the
// request's current session.
func change(c *gin.Context, write func(m *Manager, s *Session) (*Session, error)) error {
	m, s, err := current(c)
	if err != nil {
		return err
	}
	next, err := write(m, s)
	if err != nil {
		return err
	}
	m.setCurrent(c, next)
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
