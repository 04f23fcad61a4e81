package gincontrib

import (
	"context"
	"errors"
	"fmt"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"

	"github.com/securestack/ginsession"
)

// instruction is what a Login or Rotate call asks of the Save it runs.
type instruction struct {
	login   bool
	userID  string
	reached bool // set by Save
}

// Login logs the user in on the request's session named name (the name
// given to sessions.Sessions or SessionsMany): it creates a new session
// for userID carrying the session's current values, unsaved changes
// included, deletes the session the request carried, and sets the new
// cookie. The old ID is worthless afterwards, so an ID planted before the
// login (session fixation) gains nothing, and the new session is in the
// user's index (Manager.ListUserSessions, DeleteUserSessions and the
// per-user cap see it). Sessions the adapter creates otherwise are
// anonymous. With WithCreateLimiter, the Manager's limiter is asked first,
// per userID: a refused Login returns an error matching
// ginsession.ErrRateLimited and changes nothing (Manager.Replace).
//
// Login saves the session: call it before writing the response body. It
// fails, changing nothing, if the session could not be loaded (the store
// is down) or its values cannot be stored; and if the new session cannot
// be created after the old one was deleted, the cookie is expired.
func Login(c *gin.Context, name, userID string) error {
	return run(c, name, &instruction{login: true, userID: userID})
}

// Rotate gives the request's session named name a new ID, keeping its
// data, user, handle and absolute deadline (Manager.RotateSession), and
// sets the new cookie. It saves the handler's changes first. Rotate after
// any change of privilege. It returns an error matching
// ginsession.ErrNoSession when the request has no stored session yet (a
// new session gets a fresh ID when it is first saved anyway).
func Rotate(c *gin.Context, name string) error {
	return run(c, name, &instruction{})
}

// run saves the session named name through gin-contrib, with in for the
// store's Save to carry out.
func run(c *gin.Context, name string, in *instruction) error {
	sess, gs, st, err := lookup(c, name)
	if err != nil {
		return err
	}
	st.pending.Store(gs, in)
	defer st.pending.Delete(gs)
	// gin-contrib reaches the store's Save only for a session marked
	// written: setting its options, unchanged, marks it.
	partitioned := gs.Options != nil && gs.Options.Partitioned
	sess.Options(optionsOf(gs, st))
	gs.Options.Partitioned = partitioned
	if err := sess.Save(); err != nil {
		return err
	}
	if !in.reached {
		return fmt.Errorf("gincontrib: session %q: gin-contrib did not save it", name)
	}
	return nil
}

// lookup finds the gin-contrib session named name in c, and the store and
// gorilla session behind it.
func lookup(c *gin.Context, name string) (sessions.Session, *gsessions.Session, *store, error) {
	var sess sessions.Session
	v, _ := c.Get(sessions.DefaultKey)
	switch v := v.(type) {
	case map[string]sessions.Session:
		sess = v[name]
	case sessions.Session:
		sess = v
	}
	if sess == nil {
		return nil, nil, nil, fmt.Errorf("gincontrib: no session %q in the request (use sessions.Sessions or SessionsMany): %w", name, ginsession.ErrNoSession)
	}
	g, ok := sess.(interface{ Session() *gsessions.Session })
	if !ok {
		return nil, nil, nil, errors.New("gincontrib: the request's session is not gin-contrib's")
	}
	gs := g.Session() // loads it, if no handler used it yet
	if gs == nil || gs.Name() != name {
		return nil, nil, nil, fmt.Errorf("gincontrib: no session %q in the request: %w", name, ginsession.ErrNoSession)
	}
	st, ok := gs.Store().(*store)
	if !ok {
		return nil, nil, nil, fmt.Errorf("gincontrib: session %q does not come from gincontrib.NewStore", name)
	}
	return sess, gs, st, nil
}

// optionsOf returns gs's cookie options in gin-contrib's form.
func optionsOf(gs *gsessions.Session, st *store) sessions.Options {
	o := gs.Options
	if o == nil {
		o = st.opts.Load()
	}
	return sessions.Options{
		Path: o.Path, Domain: o.Domain, MaxAge: o.MaxAge,
		Secure: o.Secure, HttpOnly: o.HttpOnly, SameSite: o.SameSite,
	}
}

// writerKey is the request-context key of the response writer, set by
// Renewals.
type writerKey struct{}

// Renewals returns an optional middleware that lets the store set the
// session cookie while it loads a session, before the handler writes the
// body. It matters only with ginsession.WithRenewalInterval: when a load
// renews a session's ID, the new cookie must reach the browser, and
// gin-contrib calls the store's Save only for requests that change the
// session. Without Renewals the new cookie goes out with the next Save, so
// a renewal on a read-only request is lost and the session ends with the
// old ID (at once, or after WithRotationGrace). Use it anywhere before the
// handlers:
//
//	r.Use(gincontrib.Renewals(), sessions.Sessions("mysession", store))
func Renewals() gin.HandlerFunc {
	return func(c *gin.Context) {
		// Overwrite the request in place, so that gin-contrib, which may
		// already hold the pointer, sees the value too.
		*c.Request = *c.Request.WithContext(context.WithValue(c.Request.Context(), writerKey{}, c.Writer))
		c.Next()
	}
}
