package gincontrib_test

import (
	"context"
	"encoding/gob"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/gincontrib"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memcached"
	"github.com/securestack/ginsession/stores/memory"
)

// wellFormedID matches a ginsession ID: 32 random bytes in base64url.
var wellFormedID = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func TestCookieCarriesOnlyAnID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := b.store(t, time.Now)
		a := newApp(t, st, nil, nil)
		big := strings.Repeat("v", 10_000) // far over a cookie's 4 KB
		a.r.GET("/set", func(c *gin.Context) {
			s := sessions.Default(c)
			s.Set("secret", "s3cr3t-value")
			s.Set("big", big)
			a.save(c)
		})
		w := a.do(http.MethodGet, "/set", "")
		require.NoError(t, a.saves.last())
		cookie := cookieOf(t, w)
		id := idOf(cookie)
		assert.Regexp(t, wellFormedID, id)
		assert.NotContains(t, w.Header().Get("Set-Cookie"), "s3cr3t")
		assert.Equal(t, big, a.data(cookie)["big"], "the value lives on the server")

		if _, ok := st.(*memcached.Store); ok {
			dump := sharedServer(t).Dump(t)
			require.NotEmpty(t, dump, "the dump lists the session at least")
			for k, v := range dump {
				assert.NotContains(t, k, id, "the store sees the ID's hash only")
				assert.NotContains(t, string(v), id)
			}
		}
	})
}

func TestSaveMergesOnlyTheChanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, first := range []string{"/write", "/delete"} {
			t.Run(first+" first", func(t *testing.T) {
				a := newApp(t, b.store(t, time.Now), nil, nil)
				cookie := a.seed(map[string]any{"a": "A1", "b": "B", "x": "X"})
				loaded := make(chan struct{}, 2)
				release := map[string]chan struct{}{"/write": make(chan struct{}), "/delete": make(chan struct{})}
				done := map[string]chan error{"/write": make(chan error, 1), "/delete": make(chan error, 1)}
				a.r.GET("/write", func(c *gin.Context) {
					s := sessions.Default(c)
					assert.Equal(t, "X", s.Get("x"))
					loaded <- struct{}{}
					<-release["/write"]
					s.Set("a", "A2")
					s.Set("y", "Y")
					done["/write"] <- s.Save()
				})
				a.r.GET("/delete", func(c *gin.Context) {
					s := sessions.Default(c)
					assert.Equal(t, "A1", s.Get("a"))
					loaded <- struct{}{}
					<-release["/delete"]
					s.Delete("x")
					done["/delete"] <- s.Save()
				})
				var wg sync.WaitGroup
				for _, p := range []string{"/write", "/delete"} {
					wg.Go(func() { a.do(http.MethodGet, p, cookie) })
				}
				<-loaded
				<-loaded
				second := map[string]string{"/write": "/delete", "/delete": "/write"}[first]
				close(release[first])
				require.NoError(t, <-done[first])
				// The second request saves from data loaded before the
				// first one's write.
				close(release[second])
				require.NoError(t, <-done[second])
				wg.Wait()
				assert.Equal(t, map[string]any{"a": "A2", "b": "B", "y": "Y"}, a.data(cookie))
			})
		}
	})
}

func TestSaveWithoutChangesWritesNothing(t *testing.T) {
	a := newApp(t, nil, nil, nil)
	cookie := a.seed(map[string]any{"a": "A"})
	before, err := a.session(cookie)
	require.NoError(t, err)
	a.r.GET("/same", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set("a", "A") // the same value: no change
		a.save(c)
	})
	w := a.do(http.MethodGet, "/same", cookie)
	require.NoError(t, a.saves.last())
	assert.Equal(t, cookie, cookieOf(t, w), "the cookie is sent again")
	after, err := a.session(cookie)
	require.NoError(t, err)
	assert.Equal(t, before.ExpiresAt, after.ExpiresAt, "no write, so no idle extension either")
}

func TestValuesAreDeepCopies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		a := newApp(t, b.store(t, time.Now), nil, nil)
		orig := map[string]any{
			ginsession.FlashKey: []any{"one"},
			"list":              []string{"a", "b"},
			"nested":            map[string]any{"k": "v", "l": []any{1}},
			"raw":               []byte("xy"),
		}
		cookie := a.seed(orig)
		mutate := func(c *gin.Context) {
			s := sessions.Default(c)
			s.AddFlash("two")
			s.Get("list").([]string)[0] = "X"
			nested := s.Get("nested").(map[string]any)
			nested["k"] = "changed"
			nested["l"].([]any)[0] = 2
			s.Get("raw").([]byte)[0] = 'Z'
		}
		a.r.GET("/mutate", func(c *gin.Context) { mutate(c) }) // no Save
		a.r.GET("/mutate-save", func(c *gin.Context) {
			mutate(c)
			a.save(c)
		})
		a.r.GET("/check", func(c *gin.Context) {
			s := sessions.Default(c)
			assert.Equal(t, []any{"one"}, s.Get(ginsession.FlashKey))
			assert.Equal(t, []string{"a", "b"}, s.Get("list"))
		})

		for range 2 {
			a.do(http.MethodGet, "/mutate", cookie)
		}
		a.do(http.MethodGet, "/check", cookie)
		assert.Equal(t, orig, a.data(cookie), "in-place changes without Save reach nothing")

		a.do(http.MethodGet, "/mutate-save", cookie)
		require.NoError(t, a.saves.last())
		assert.Equal(t, map[string]any{
			ginsession.FlashKey: []any{"one", "two"},
			"list":              []string{"X", "b"},
			"nested":            map[string]any{"k": "changed", "l": []any{2}},
			"raw":               []byte("Zy"),
		}, a.data(cookie), "in-place changes are changes to Save")
	})
}

func TestFlashesRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		a := newApp(t, b.store(t, time.Now), nil, nil)
		a.r.GET("/add", func(c *gin.Context) {
			s := sessions.Default(c)
			s.AddFlash("first")
			s.AddFlash("second")
			s.AddFlash(3, "counts")
			a.save(c)
		})
		var got [][]any
		a.r.GET("/show", func(c *gin.Context) {
			s := sessions.Default(c)
			got = append(got, s.Flashes(), s.Flashes("counts"))
			a.save(c)
		})
		w := a.do(http.MethodGet, "/add", "")
		require.NoError(t, a.saves.last())
		cookie := cookieOf(t, w)
		assert.Equal(t, []any{"first", "second"}, a.data(cookie)[ginsession.FlashKey], "stored as []any under _flash")

		a.do(http.MethodGet, "/show", cookie)
		require.NoError(t, a.saves.last())
		a.do(http.MethodGet, "/show", cookie)
		require.NoError(t, a.saves.last())
		assert.Equal(t, [][]any{{"first", "second"}, {3}, nil, nil}, got, "shown once")
		assert.Empty(t, a.data(cookie))
	})
}

// prefs is a struct value, which gorilla stores gob-encode and ginsession
// refuses.
type prefs struct{ Theme string }

func init() { gob.Register(prefs{}) }

func TestUnsupportedKeysAndValues(t *testing.T) {
	cases := []struct {
		name string
		set  func(s sessions.Session)
		want any    // a pointer to the error type expected
		key  string // the data key an *stores.UnsupportedTypeError names
	}{
		{"int key", func(s sessions.Session) { s.Set(42, "x") }, new(*gincontrib.UnsupportedKeyError), ""},
		{"struct", func(s sessions.Session) { s.Set("p", struct{ A int }{1}) }, new(*stores.UnsupportedTypeError), "p"},
		{"gob-registered struct", func(s sessions.Session) { s.Set("p", prefs{"dark"}) }, new(*stores.UnsupportedTypeError), "p"},
		{"map[string]int", func(s sessions.Session) { s.Set("p", map[string]int{"a": 1}) }, new(*stores.UnsupportedTypeError), "p"},
		{"nested struct", func(s sessions.Session) { s.Set("p", []any{"ok", prefs{}}) }, new(*stores.UnsupportedTypeError), "p"},
		{"struct flash", func(s sessions.Session) { s.AddFlash(prefs{}) }, new(*stores.UnsupportedTypeError), ginsession.FlashKey},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				a := newApp(t, b.store(t, time.Now), nil, nil)
				cookie := a.seed(map[string]any{"a": "A"})
				a.r.GET("/set", func(c *gin.Context) {
					s := sessions.Default(c)
					s.Set("b", "B")
					s.Delete("a")
					tc.set(s)
					a.save(c)
				})
				for _, ck := range []string{cookie, ""} {
					w := a.do(http.MethodGet, "/set", ck)
					err := a.saves.last()
					require.Error(t, err)
					assert.ErrorAs(t, err, tc.want)
					assert.Empty(t, setCookies(w, name), "no cookie")
				}
				assert.Equal(t, map[string]any{"a": "A"}, a.data(cookie), "nothing written")
				var ute *stores.UnsupportedTypeError
				if errors.As(a.saves.last(), &ute) {
					assert.Equal(t, tc.key, ute.Key)
				}
			})
		}
	})
	t.Run("no session created", func(t *testing.T) {
		st := memory.New()
		t.Cleanup(func() { _ = st.Close() })
		a := newApp(t, st, nil, nil)
		a.r.GET("/set", func(c *gin.Context) {
			sessions.Default(c).Set("p", prefs{})
			a.save(c)
		})
		a.do(http.MethodGet, "/set", "")
		assert.ErrorAs(t, a.saves.last(), new(*stores.UnsupportedTypeError))
		assert.Zero(t, st.Len())
	})
}

func TestNilValueRemovesTheKey(t *testing.T) {
	a := newApp(t, nil, nil, nil)
	cookie := a.seed(map[string]any{"a": "A", "b": "B"})
	a.r.GET("/nil", func(c *gin.Context) {
		sessions.Default(c).Set("a", nil)
		a.save(c)
	})
	a.do(http.MethodGet, "/nil", cookie)
	require.NoError(t, a.saves.last())
	assert.Equal(t, map[string]any{"b": "B"}, a.data(cookie))
}

func TestMaxAge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		t.Run("negative deletes the session", func(t *testing.T) {
			a := newApp(t, b.store(t, time.Now), nil, nil)
			cookie := a.seed(map[string]any{"a": "A"})
			a.r.GET("/logout", func(c *gin.Context) {
				s := sessions.Default(c)
				s.Options(sessions.Options{Path: "/", MaxAge: -1, HttpOnly: true, Secure: true})
				a.save(c)
				assert.Nil(t, s.Get("a"), "the handler's session is empty")
				assert.Empty(t, s.ID())
			})
			w := a.do(http.MethodGet, "/logout", cookie)
			require.NoError(t, a.saves.last())
			assert.Equal(t, []string{name + "=; Path=/; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0; HttpOnly; Secure"}, setCookies(w, name))
			_, err := a.session(cookie)
			assert.ErrorIs(t, err, ginsession.ErrNotFound, "deleted on the server, not only in the browser")
		})
	})

	t.Run("positive is capped at the absolute deadline", func(t *testing.T) {
		clk := newClock()
		a := newApp(t, nil,
			[]ginsession.Option{ginsession.WithClock(clk.Now), ginsession.WithAbsoluteTimeout(time.Hour), ginsession.WithIdleTimeout(50 * time.Minute)},
			[]gincontrib.Option{gincontrib.WithClock(clk.Now)})
		maxAge := 86400
		a.r.GET("/set", func(c *gin.Context) {
			s := sessions.Default(c)
			s.Set("n", time.Now().UnixNano())
			s.Options(sessions.Options{Path: "/", MaxAge: maxAge})
			a.save(c)
		})
		w := a.do(http.MethodGet, "/set", "")
		require.NoError(t, a.saves.last())
		cookie := cookieOf(t, w)
		expires := clk.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
		assert.Equal(t, []string{cookie + "; Path=/; Expires=" + expires + "; Max-Age=3600"}, setCookies(w, name))

		clk.Advance(20 * time.Minute)
		w = a.do(http.MethodGet, "/set", cookie)
		require.NoError(t, a.saves.last())
		assert.Contains(t, setCookies(w, name)[0], "; Max-Age=2400")

		maxAge = 600 // under the time left: kept
		w = a.do(http.MethodGet, "/set", cookie)
		require.NoError(t, a.saves.last())
		assert.Contains(t, setCookies(w, name)[0], "; Max-Age=600")
	})

	t.Run("zero is a browser-session cookie", func(t *testing.T) {
		a := newApp(t, nil, nil, nil)
		a.r.GET("/set", func(c *gin.Context) {
			s := sessions.Default(c)
			s.Set("a", "A")
			s.Options(sessions.Options{Path: "/", MaxAge: 0})
			a.save(c)
		})
		w := a.do(http.MethodGet, "/set", "")
		require.NoError(t, a.saves.last())
		sc := setCookies(w, name)[0]
		assert.NotContains(t, sc, "Max-Age")
		assert.NotContains(t, sc, "Expires")
	})

	t.Run("never extends the server-side lifetime", func(t *testing.T) {
		clk := newClock()
		a := newApp(t, nil,
			[]ginsession.Option{ginsession.WithClock(clk.Now), ginsession.WithIdleTimeout(10 * time.Minute)},
			[]gincontrib.Option{gincontrib.WithClock(clk.Now)})
		a.store.Options(sessions.Options{Path: "/", MaxAge: 365 * 86400})
		a.r.GET("/set", func(c *gin.Context) {
			sessions.Default(c).Set("a", "A")
			a.save(c)
		})
		w := a.do(http.MethodGet, "/set", "")
		require.NoError(t, a.saves.last())
		cookie := cookieOf(t, w)
		clk.Advance(11 * time.Minute)
		_, err := a.session(cookie)
		assert.ErrorIs(t, err, ginsession.ErrNotFound, "the idle timeout decides, not MaxAge")
	})

	t.Run("a short MaxAge does not shorten it", func(t *testing.T) {
		clk := newClock()
		a := newApp(t, nil,
			[]ginsession.Option{ginsession.WithClock(clk.Now)},
			[]gincontrib.Option{gincontrib.WithClock(clk.Now)})
		a.store.Options(sessions.Options{Path: "/", MaxAge: 10})
		a.r.GET("/set", func(c *gin.Context) {
			sessions.Default(c).Set("a", "A")
			a.save(c)
		})
		w := a.do(http.MethodGet, "/set", "")
		require.NoError(t, a.saves.last())
		clk.Advance(time.Minute)
		_, err := a.session(cookieOf(t, w))
		assert.NoError(t, err)
	})
}

func TestRevokedSessionIsNotRecreated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clk := newClock()
		a := newApp(t, b.store(t, clk.Now),
			[]ginsession.Option{ginsession.WithClock(clk.Now), ginsession.WithIdleTimeout(2 * time.Hour), ginsession.WithAbsoluteTimeout(4 * time.Hour)},
			[]gincontrib.Option{gincontrib.WithClock(clk.Now)})
		cases := map[string]func(c *gin.Context, cookie string){
			"deleted": func(c *gin.Context, cookie string) {
				require.NoError(t, a.m.DeleteSession(context.Background(), idOf(cookie)))
			},
			"expired": func(*gin.Context, string) { clk.Advance(5 * time.Hour) },
		}
		for what, during := range cases {
			t.Run(what, func(t *testing.T) {
				cookie := a.seed(map[string]any{"a": "A"})
				a.r.GET("/"+what, func(c *gin.Context) {
					s := sessions.Default(c)
					require.Equal(t, "A", s.Get("a"))
					during(c, cookie) // another request logs out, or time passes
					s.Set("b", "B")
					a.save(c)
				})
				w := a.do(http.MethodGet, "/"+what, cookie)
				assert.ErrorIs(t, a.saves.last(), ginsession.ErrNotFound)
				assert.Empty(t, setCookies(w, name))
				_, err := a.session(cookie)
				assert.ErrorIs(t, err, ginsession.ErrNotFound)
			})
		}
	})
}

func TestLoadErrorKeepsTheCookie(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		fl := &flaky{Store: b.store(t, time.Now)}
		a := newApp(t, fl, []ginsession.Option{ginsession.WithLogger(slog.New(new(logRecorder)))}, nil)
		cookie := a.seed(map[string]any{"a": "A"})
		a.r.GET("/set", func(c *gin.Context) {
			s := sessions.Default(c)
			assert.Nil(t, s.Get("a"), "gin-contrib hands over an empty session")
			s.Set("b", "B")
			a.save(c)
		})
		a.r.GET("/logout", func(c *gin.Context) {
			s := sessions.Default(c)
			s.Options(sessions.Options{Path: "/", MaxAge: -1})
			a.save(c)
		})

		logs := recordLogs(t)
		fl.down.Store(true)
		for _, path := range []string{"/set", "/logout"} {
			w := a.do(http.MethodGet, path, cookie)
			err := a.saves.last()
			assert.ErrorIs(t, err, stores.ErrUnavailable, path)
			if path == "/set" {
				assert.ErrorIs(t, err, gincontrib.ErrLoadFailed)
			}
			assert.Empty(t, setCookies(w, name), "%s: the user's cookie is kept", path)
			assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
		}
		assert.Equal(t, []string{"[sessions] ERROR!", "[sessions] ERROR!"}, logs.messages(), "gin-contrib's own log, once per load")

		fl.down.Store(false)
		assert.Equal(t, map[string]any{"a": "A"}, a.data(cookie), "the session survived the outage")
		w := a.do(http.MethodGet, "/logout", cookie)
		require.NoError(t, a.saves.last())
		assert.Len(t, setCookies(w, name), 1)
		_, err := a.session(cookie)
		assert.ErrorIs(t, err, ginsession.ErrNotFound)
	})
}

func TestClearKeepsTheSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		a := newApp(t, b.store(t, time.Now), nil, nil)
		cookie := a.seed(map[string]any{"a": "A", "b": "B"})
		a.r.GET("/clear", func(c *gin.Context) {
			sessions.Default(c).Clear()
			a.save(c)
		})
		w := a.do(http.MethodGet, "/clear", cookie)
		require.NoError(t, a.saves.last())
		assert.Equal(t, cookie, cookieOf(t, w))
		assert.Empty(t, a.data(cookie), "emptied, alive; MaxAge -1 ends it")
	})
}

func TestIDIsTheHandle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		a := newApp(t, b.store(t, time.Now), nil, nil)
		var before, after string
		a.r.GET("/set", func(c *gin.Context) {
			s := sessions.Default(c)
			s.Set("a", "A")
			before = s.ID()
			a.save(c)
			after = s.ID()
		})
		var later string
		a.r.GET("/get", func(c *gin.Context) { later = sessions.Default(c).ID() })
		w := a.do(http.MethodGet, "/set", "")
		require.NoError(t, a.saves.last())
		cookie := cookieOf(t, w)
		a.do(http.MethodGet, "/get", cookie)
		s, err := a.session(cookie)
		require.NoError(t, err)
		assert.Empty(t, before, "a session not stored yet has no ID")
		assert.Equal(t, s.Handle, after)
		assert.Equal(t, s.Handle, later)
		assert.NotEqual(t, idOf(cookie), later, "never the token")
	})
}

func TestUnknownCookieGivesAFreshSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		a := newApp(t, b.store(t, time.Now), nil, nil)
		gone := a.seed(map[string]any{"a": "A"})
		require.NoError(t, a.m.DeleteSession(context.Background(), idOf(gone)))
		a.r.GET("/set", func(c *gin.Context) {
			s := sessions.Default(c)
			assert.Nil(t, s.Get("a"))
			assert.Empty(t, s.ID())
			s.Set("b", "B")
			a.save(c)
		})
		logs := recordLogs(t)
		for _, cookie := range []string{gone, name + "=junk!", name + "=" + strings.Repeat("A", 43), name + "="} {
			w := a.do(http.MethodGet, "/set", cookie)
			require.NoError(t, a.saves.last(), cookie)
			fresh := cookieOf(t, w)
			assert.NotEqual(t, cookie, fresh, "never adopted")
			assert.Equal(t, map[string]any{"b": "B"}, a.data(fresh))
		}
		assert.Empty(t, logs.messages(), "junk is not an error")
		st := a.m.Stats()
		assert.Equal(t, uint64(1), st.Malformed, `"junk!"; an empty value counts as no cookie`)
		assert.Equal(t, uint64(2), st.Unknown, "the deleted ID and the well-formed stranger")
	})
}

func TestRenewal(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, where := range []string{"", "before", "after"} {
			withRenewals := where != ""
			title := "Save sends it"
			if withRenewals {
				title = "Renewals " + where + " Sessions sends it at load"
			}
			t.Run(title, func(t *testing.T) {
				clk := newClock()
				a := newApp(t, b.store(t, clk.Now),
					[]ginsession.Option{ginsession.WithClock(clk.Now), ginsession.WithRenewalInterval(time.Hour), ginsession.WithIdleTimeout(2 * time.Hour)},
					[]gincontrib.Option{gincontrib.WithClock(clk.Now)})
				switch where {
				case "before":
					a.r = newEngine(a.store, gincontrib.Renewals())
				case "after":
					a.r = newEngine(a.store)
					a.r.Use(gincontrib.Renewals())
				}
				a.r.GET("/read", func(c *gin.Context) {
					_ = sessions.Default(c).Get("a")
					c.String(http.StatusOK, "ok")
				})
				a.r.GET("/write", func(c *gin.Context) {
					sessions.Default(c).Set("b", "B")
					a.save(c)
					c.String(http.StatusOK, "ok")
				})
				cookie := a.seed(map[string]any{"a": "A"})
				clk.Advance(61 * time.Minute)

				path := "/write"
				if withRenewals {
					path = "/read"
				}
				w := a.do(http.MethodGet, path, cookie)
				renewed := cookieOf(t, w)
				assert.NotEqual(t, cookie, renewed)
				assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
				_, err := a.session(cookie)
				assert.ErrorIs(t, err, ginsession.ErrNotFound, "the old ID is dead")
				assert.Equal(t, "A", a.data(renewed)["a"])

				if !withRenewals {
					// Documented: without Renewals, a renewal on a
					// request that does not save is lost.
					clk.Advance(61 * time.Minute)
					w := a.do(http.MethodGet, "/read", renewed)
					assert.Empty(t, setCookies(w, name))
					_, err := a.session(renewed)
					assert.ErrorIs(t, err, ginsession.ErrNotFound)
				}
			})
		}
	})
}

func TestLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		a := newApp(t, b.store(t, time.Now), nil, nil)
		var loginErr error
		var handle string
		a.r.GET("/login", func(c *gin.Context) {
			s := sessions.Default(c)
			s.Set("step", "done") // not saved yet: Login carries it
			loginErr = gincontrib.Login(c, name, "alice")
			handle = s.ID()
		})
		for _, before := range []string{"anonymous session", "no session"} {
			t.Run(before, func(t *testing.T) {
				old := ""
				if before == "anonymous session" {
					old = a.seed(map[string]any{"cart": []string{"book"}})
				}
				w := a.do(http.MethodGet, "/login", old)
				require.NoError(t, loginErr)
				cookie := cookieOf(t, w)
				assert.NotEqual(t, old, cookie)
				if old != "" {
					_, err := a.session(old)
					assert.ErrorIs(t, err, ginsession.ErrNotFound, "the old ID is dead (fixation)")
				}
				s, err := a.session(cookie)
				require.NoError(t, err)
				assert.Equal(t, "alice", s.UserID)
				assert.Equal(t, "done", s.Data["step"])
				if old != "" {
					assert.Equal(t, []string{"book"}, s.Data["cart"], "the values are carried over")
				}
				assert.Equal(t, s.Handle, handle)
				list, err := a.m.ListUserSessions(context.Background(), "alice")
				require.NoError(t, err)
				var handles []string
				for _, info := range list {
					handles = append(handles, info.Handle)
				}
				assert.Contains(t, handles, s.Handle, "in the user's index")
			})
		}

		t.Run("unsupported value changes nothing", func(t *testing.T) {
			old := a.seed(map[string]any{"a": "A"})
			a.r.GET("/login-bad", func(c *gin.Context) {
				sessions.Default(c).Set("p", prefs{})
				loginErr = gincontrib.Login(c, name, "bob")
			})
			w := a.do(http.MethodGet, "/login-bad", old)
			assert.ErrorAs(t, loginErr, new(*stores.UnsupportedTypeError))
			assert.Empty(t, setCookies(w, name))
			assert.Equal(t, map[string]any{"a": "A"}, a.data(old))
		})
	})

	t.Run("rate limited changes nothing", func(t *testing.T) {
		a := newApp(t, nil, []ginsession.Option{ginsession.WithCreateLimiter(ginsession.NewLimiter(1, time.Minute))}, nil)
		var err error
		a.r.GET("/login", func(c *gin.Context) { err = gincontrib.Login(c, name, "carol") })
		first := cookieOf(t, a.do(http.MethodGet, "/login", ""))
		require.NoError(t, err)
		w := a.do(http.MethodGet, "/login", first)
		assert.ErrorIs(t, err, ginsession.ErrRateLimited)
		assert.Empty(t, setCookies(w, name), "the cookie is neither replaced nor expired")
		s, gerr := a.session(first)
		require.NoError(t, gerr, "the session it carried lives on")
		assert.Equal(t, "carol", s.UserID)
	})

	t.Run("store down", func(t *testing.T) {
		fl := &flaky{Store: memory.New()}
		t.Cleanup(func() { _ = fl.Close() })
		a := newApp(t, fl, []ginsession.Option{ginsession.WithLogger(slog.New(new(logRecorder)))}, nil)
		old := a.seed(map[string]any{"a": "A"})
		var err error
		a.r.GET("/login", func(c *gin.Context) { err = gincontrib.Login(c, name, "alice") })
		recordLogs(t)
		fl.down.Store(true)
		w := a.do(http.MethodGet, "/login", old)
		assert.ErrorIs(t, err, gincontrib.ErrLoadFailed)
		assert.Empty(t, setCookies(w, name))
	})

	t.Run("no sessions middleware", func(t *testing.T) {
		r := gin.New()
		var err error
		r.GET("/login", func(c *gin.Context) { err = gincontrib.Login(c, name, "alice") })
		do(r, http.MethodGet, "/login", "")
		assert.ErrorIs(t, err, ginsession.ErrNoSession)
	})
}

func TestRotate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		a := newApp(t, b.store(t, time.Now), nil, nil)
		var err error
		a.r.GET("/rotate", func(c *gin.Context) {
			sessions.Default(c).Set("b", "B")
			err = gincontrib.Rotate(c, name)
		})
		old := a.seed(map[string]any{"a": "A"})
		before, e := a.session(old)
		require.NoError(t, e)
		w := a.do(http.MethodGet, "/rotate", old)
		require.NoError(t, err)
		cookie := cookieOf(t, w)
		assert.NotEqual(t, old, cookie)
		_, e = a.session(old)
		assert.ErrorIs(t, e, ginsession.ErrNotFound)
		s, e := a.session(cookie)
		require.NoError(t, e)
		assert.Equal(t, map[string]any{"a": "A", "b": "B"}, s.Data)
		assert.Equal(t, before.Handle, s.Handle)
		assert.Equal(t, before.AbsoluteExpiresAt, s.AbsoluteExpiresAt)

		w = a.do(http.MethodGet, "/rotate", "")
		assert.ErrorIs(t, err, ginsession.ErrNoSession)
		assert.Empty(t, setCookies(w, name))
	})
}

func TestCookieOptions(t *testing.T) {
	set := func(a *app, opts *sessions.Options) {
		a.r.GET("/set", func(c *gin.Context) {
			s := sessions.Default(c)
			s.Set("a", "A")
			if opts != nil {
				s.Options(*opts)
			}
			a.save(c)
		})
	}
	t.Run("default is ginsession's", func(t *testing.T) {
		// The Manager's cookie options are not the adapter's.
		a := newApp(t, nil, []ginsession.Option{ginsession.WithCookieName("other"), ginsession.WithCookieSameSite(http.SameSiteStrictMode)}, nil)
		set(a, nil)
		w := a.do(http.MethodGet, "/set", "")
		require.NoError(t, a.saves.last())
		cookie := cookieOf(t, w)
		assert.Equal(t, []string{cookie + "; Path=/; HttpOnly; Secure; SameSite=Lax"}, w.Header().Values("Set-Cookie"))
		assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	})
	t.Run("store options verbatim", func(t *testing.T) {
		a := newApp(t, nil, nil, nil)
		a.store.Options(sessions.Options{Path: "/app", Domain: "example.com", HttpOnly: true})
		set(a, nil)
		w := a.do(http.MethodGet, "/set", "")
		require.NoError(t, a.saves.last())
		assert.Equal(t, []string{cookieOf(t, w) + "; Path=/app; Domain=example.com; HttpOnly"}, w.Header().Values("Set-Cookie"))
	})
	t.Run("session options replace them", func(t *testing.T) {
		a := newApp(t, nil, nil, nil)
		a.store.Options(sessions.Options{Path: "/app", Domain: "example.com", HttpOnly: true})
		set(a, &sessions.Options{SameSite: http.SameSiteStrictMode, Secure: true})
		w := a.do(http.MethodGet, "/set", "")
		require.NoError(t, a.saves.last())
		assert.Equal(t, []string{cookieOf(t, w) + "; Secure; SameSite=Strict"}, w.Header().Values("Set-Cookie"))
	})

	invalid := []struct {
		name   string
		cookie string
		opts   sessions.Options
	}{
		{"__Host- without Secure", "__Host-s", sessions.Options{Path: "/"}},
		{"__host- with a Path", "__host-s", sessions.Options{Path: "/x", Secure: true}},
		{"__HOST- without Path", "__HOST-s", sessions.Options{Secure: true}},
		{"__Host- with a Domain", "__Host-s", sessions.Options{Path: "/", Domain: "example.com", Secure: true}},
		{"__Secure- without Secure", "__SECURE-s", sessions.Options{Path: "/"}},
		{"SameSite=None without Secure", "s", sessions.Options{Path: "/", SameSite: http.SameSiteNoneMode}},
		{"bad Path", "s", sessions.Options{Path: "/a;b"}},
		{"bad name", "a b", sessions.Options{Path: "/"}},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			st := memory.New()
			t.Cleanup(func() { _ = st.Close() })
			m := newManager(t, st)
			store := gincontrib.NewStore(m)
			store.Options(tc.opts)
			r := gin.New()
			r.Use(sessions.Sessions(tc.cookie, store))
			var err error
			r.GET("/set", func(c *gin.Context) {
				s := sessions.Default(c)
				s.Set("a", "A")
				err = s.Save()
			})
			w := do(r, http.MethodGet, "/set", "")
			assert.ErrorIs(t, err, gincontrib.ErrCookieOptions)
			t.Log(err)
			assert.Empty(t, w.Header().Values("Set-Cookie"))
			assert.Zero(t, st.Len(), "nothing written")
		})
	}
	t.Run("__Host- with the defaults", func(t *testing.T) {
		m := newManager(t, nil)
		r := gin.New()
		r.Use(sessions.Sessions("__Host-s", gincontrib.NewStore(m)))
		var err error
		r.GET("/set", func(c *gin.Context) {
			s := sessions.Default(c)
			s.Set("a", "A")
			err = s.Save()
		})
		w := do(r, http.MethodGet, "/set", "")
		require.NoError(t, err)
		assert.Len(t, setCookies(w, "__Host-s"), 1)
	})
}

func TestSessionsMany(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		m := newManager(t, b.store(t, time.Now))
		r := gin.New()
		r.Use(sessions.SessionsMany([]string{"a", "b"}, gincontrib.NewStore(m)))
		var ids []string
		r.GET("/set", func(c *gin.Context) {
			ids = ids[:0]
			for _, n := range []string{"a", "b"} {
				s := sessions.DefaultMany(c, n)
				s.Set("who", n)
				require.NoError(t, s.Save())
				ids = append(ids, s.ID())
			}
		})
		r.GET("/logout-b", func(c *gin.Context) {
			s := sessions.DefaultMany(c, "b")
			s.Options(sessions.Options{Path: "/", MaxAge: -1})
			require.NoError(t, s.Save())
		})
		got := map[string]any{}
		r.GET("/get", func(c *gin.Context) {
			for _, n := range []string{"a", "b"} {
				got[n] = sessions.DefaultMany(c, n).Get("who")
			}
		})
		w := do(r, http.MethodGet, "/set", "")
		ca, cb := setCookies(w, "a"), setCookies(w, "b")
		require.Len(t, ca, 1)
		require.Len(t, cb, 1)
		assert.NotEqual(t, ids[0], ids[1], "two sessions")
		header := strings.Split(ca[0], ";")[0] + "; " + strings.Split(cb[0], ";")[0]
		do(r, http.MethodGet, "/get", header)
		assert.Equal(t, map[string]any{"a": "a", "b": "b"}, got)
		do(r, http.MethodGet, "/logout-b", header)
		do(r, http.MethodGet, "/get", header)
		assert.Equal(t, map[string]any{"a": "a", "b": nil}, got, "ending b leaves a")
	})
}

func TestSaveAfterTheBody(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	a := newApp(t, st, nil, nil)
	a.r.GET("/late", func(c *gin.Context) {
		c.String(http.StatusOK, "body first")
		sessions.Default(c).Set("a", "A")
		a.save(c)
	})
	a.do(http.MethodGet, "/late", "")
	assert.ErrorIs(t, a.saves.last(), gincontrib.ErrHeadersWritten)
	assert.Zero(t, st.Len(), "no session whose cookie cannot be sent")
}

func TestSaveOfAForeignSession(t *testing.T) {
	a := newApp(t, nil, nil, nil)
	var err error
	a.r.GET("/foreign", func(c *gin.Context) {
		gs, e := a.store.New(c.Request, "other")
		require.NoError(t, e)
		_ = gs
		foreign := *gs // a copy: not the session the store handed out
		err = a.store.Save(c.Request, c.Writer, &foreign)
	})
	a.do(http.MethodGet, "/foreign", "")
	assert.ErrorIs(t, err, gincontrib.ErrNotLoaded)
}

func TestNewStoreNeedsAManager(t *testing.T) {
	assert.PanicsWithValue(t, "gincontrib.NewStore expects a non-nil *ginsession.Manager", func() { gincontrib.NewStore(nil) })
}
