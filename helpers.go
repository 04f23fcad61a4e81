package ginsession

import (
	"net/http"

	"github.com/gin-gonic/gin"
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
// request already carried is deleted first, so an ID planted by an
// attacker before login is worthless after it (session fixation), and the
// replaced session never counts against WithMaxSessionsPerUser.
//
// With WithCreateLimiter, the limiter is asked before anything else, keyed
// by userID, or for an anonymous session (an empty userID) by the client IP
// (ClientIPKey): a refused Login returns a *RateLimitError and changes
// nothing. If the new session cannot be created after the old one was
// deleted (a store failure, an unsupported value), the cookie is cleared
// and the request has no session.
//
// Call Login before writing the response body. It returns the new session.
func Login(c *gin.Context, userID string, data map[string]any) (*Session, error) {
	m, err := managerOf(c)
	if err != nil {
		return nil, err
	}
	ctx := c.Request.Context()
	key := userID
	if userID == "" {
		key = "\x00ip\x00" + ClientIPKey(c)
	}
	if err := m.limit(ctx, key, m.now()); err != nil {
		return nil, err
	}
	old, hadOld := Current(c)
	if hadOld {
		if err := m.deleteKey(ctx, old.key, &old.item); err != nil {
			return nil, err
		}
		m.clearCurrent(c)
	}
	s, err := m.create(ctx, userID, data, false)
	if err != nil {
		if hadOld {
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
	if err := m.deleteKey(c.Request.Context(), s.key, &s.item); err != nil {
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
// Manager.UpdateSession), and makes the updated session the request's
// current one, so later handlers see the change. On memcached and Redis it
// costs a single compare-and-swap when nothing changed the session since
// the middleware read it. It returns ErrNoSession if the request has no
// live session.
func Update(c *gin.Context, data map[string]any) error {
	m, err := managerOf(c)
	if err != nil {
		return err
	}
	s, ok := Current(c)
	if !ok {
		return ErrNoSession
	}
	next, err := m.update(c.Request.Context(), s.key, &s.item, data)
	if err != nil {
		return err
	}
	next.ID, next.forwarded = s.ID, s.forwarded
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
