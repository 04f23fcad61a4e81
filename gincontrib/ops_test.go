package gincontrib_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/gincontrib"
	"github.com/securestack/ginsession/internal/memcachedtest"
)

// opStats are the memcached statistics that count store operations.
var opStats = []string{
	"cmd_get", "cmd_set", "cas_hits", "cas_misses", "cas_badval",
	"cmd_touch", "delete_hits", "delete_misses",
}

// ops is what one request cost the server: the non-zero changes of
// opStats.
type ops map[string]uint64

func (o ops) String() string {
	var parts []string
	for _, k := range opStats {
		if o[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, o[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// measure returns what f cost srv.
func measure(t *testing.T, srv *memcachedtest.Server, f func()) ops {
	t.Helper()
	before := srv.Stats(t)
	f()
	after := srv.Stats(t)
	o := ops{}
	for _, k := range opStats {
		if d := after[k] - before[k]; d != 0 {
			o[k] = d
		}
	}
	return o
}

// TestStoreOperations measures, with memcached's own statistics, what a
// request costs through the adapter and through ginsession's middleware,
// and requires the same for both: one get on a read, a get and one cas on
// a write, a touch added when the idle deadline is due for extension.
func TestStoreOperations(t *testing.T) {
	srv := memcachedtest.Start(t)
	clk := newClock()
	m := newManager(t, newMemcachedStore(t, srv), ginsession.WithClock(clk.Now))

	// The adapter.
	ad := gin.New()
	ad.Use(sessions.Sessions(name, gincontrib.NewStore(m, gincontrib.WithClock(clk.Now))))
	ad.GET("/create", func(c *gin.Context) {
		sessions.Default(c).Set("n", 1)
		require.NoError(t, sessions.Default(c).Save())
	})
	ad.GET("/read", func(c *gin.Context) { _ = sessions.Default(c).Get("n") })
	ad.GET("/write", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set("n", s.Get("n").(int)+1)
		require.NoError(t, s.Save())
	})
	ad.GET("/logout", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Options(sessions.Options{Path: "/", MaxAge: -1})
		require.NoError(t, s.Save())
	})

	// ginsession's own middleware.
	mw := gin.New()
	mw.Use(ginsession.New(m))
	mw.GET("/create", func(c *gin.Context) {
		_, err := ginsession.Login(c, "", map[string]any{"n": 1})
		require.NoError(t, err)
	})
	mw.GET("/read", func(c *gin.Context) { _, _ = ginsession.Current(c) })
	mw.GET("/write", func(c *gin.Context) {
		s := ginsession.MustCurrent(c)
		require.NoError(t, ginsession.Update(c, map[string]any{"n": s.GetInt("n") + 1}))
	})
	mw.GET("/logout", func(c *gin.Context) { require.NoError(t, ginsession.Logout(c)) })

	type step struct {
		name, path string
		advance    time.Duration // before the request
		want       ops
		// adapter, if not nil, is what the adapter costs instead.
		adapter ops
	}
	steps := []step{
		{"create", "/create", 0, ops{"cmd_set": 1}, nil},
		{"read", "/read", 0, ops{"cmd_get": 1}, nil},
		{"write", "/write", 0, ops{"cmd_get": 1, "cmd_set": 1, "cas_hits": 1}, nil},
		{"read, idle deadline due", "/read", 2 * time.Minute, ops{"cmd_get": 1, "cmd_touch": 1}, nil},
		{"read after the touch", "/read", 0, ops{"cmd_get": 1}, nil},
		// A deletion is a cas that expires the item, from the version
		// the request loaded (Manager.DeleteLoaded), so that it cannot
		// remove a record changed meanwhile.
		{"logout", "/logout", 0, ops{"cmd_get": 1, "cmd_set": 1, "cas_hits": 1}, nil},
	}
	for _, path := range []struct {
		name string
		r    *gin.Engine
	}{
		{"adapter", ad},
		{"middleware", mw},
	} {
		cookieName := name
		if path.r == mw {
			cookieName = ginsession.DefaultCookieName
		}
		var cookie string
		for _, s := range steps {
			clk.Advance(s.advance)
			got := measure(t, srv, func() {
				w := do(path.r, http.MethodGet, s.path, cookie)
				if s.path == "/create" {
					sc := setCookies(w, cookieName)
					require.Len(t, sc, 1)
					cookie, _, _ = strings.Cut(sc[0], ";")
				}
			})
			t.Logf("%-10s %-24s %s", path.name, s.name, got)
			want := s.want
			if path.r == ad && s.adapter != nil {
				want = s.adapter
			}
			assert.Equal(t, want, got, "%s: %s", path.name, s.name)
		}
	}
}
