package gincontrib_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/gincontrib"
	"github.com/securestack/ginsession/stores"
)

// app is a gin engine with sessions.Sessions(name, NewStore(m)), for the
// tests to add their routes to.
type app struct {
	t     *testing.T
	m     *ginsession.Manager
	store sessions.Store
	r     *gin.Engine
	saves saveErr
}

// newApp builds an app on st (nil: the Manager's own memory store). extra
// middleware runs before sessions.Sessions.
func newApp(t *testing.T, st stores.Store, mopts []ginsession.Option, sopts []gincontrib.Option, extra ...gin.HandlerFunc) *app {
	t.Helper()
	m := newManager(t, st, mopts...)
	store := gincontrib.NewStore(m, sopts...)
	return &app{t: t, m: m, store: store, r: newEngine(store, extra...)}
}

// save saves the request's session and records the error.
func (a *app) save(c *gin.Context) {
	a.saves.add(sessions.Default(c).Save())
}

// seed creates a session holding data directly through the Manager and
// returns its cookie as name=ID.
func (a *app) seed(data map[string]any) string {
	a.t.Helper()
	s, err := a.m.CreateSession(context.Background(), "", data)
	require.NoError(a.t, err)
	return name + "=" + s.ID
}

// session returns the stored session of a name=ID cookie, or the error.
func (a *app) session(cookie string) (*ginsession.Session, error) {
	return a.m.GetSession(context.Background(), idOf(cookie))
}

// data returns the stored data of a name=ID cookie; the session must be
// alive.
func (a *app) data(cookie string) map[string]any {
	a.t.Helper()
	s, err := a.session(cookie)
	require.NoError(a.t, err)
	return s.Data
}

// do sends a request.
func (a *app) do(method, path, cookie string) *httptest.ResponseRecorder {
	return do(a.r, method, path, cookie)
}
