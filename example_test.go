package ginsession_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/securestack/ginsession"
)

func ExampleNew() {
	gin.SetMode(gin.ReleaseMode)
	m := ginsession.NewManager(nil) // in-memory store
	defer m.Close()

	r := gin.New()
	r.Use(ginsession.New(m))
	r.POST("/login", func(c *gin.Context) {
		if _, err := ginsession.Login(c, "alice", map[string]any{"role": "admin"}); err != nil {
			c.AbortWithStatus(http.StatusServiceUnavailable)
			return
		}
		c.String(http.StatusOK, "welcome")
	})
	r.GET("/profile", ginsession.Required(), func(c *gin.Context) {
		s := ginsession.MustCurrent(c) // or c.MustGet("session").(*ginsession.Session)
		c.String(http.StatusOK, "%s is %s", s.UserID, s.GetString("role"))
	})

	login := httptest.NewRecorder()
	r.ServeHTTP(login, httptest.NewRequest(http.MethodPost, "/login", nil))
	cookie := login.Result().Cookies()[0]
	fmt.Println(cookie.Name, cookie.HttpOnly, cookie.Secure, cookie.SameSite == http.SameSiteLaxMode)

	req := httptest.NewRequest(http.MethodGet, "/profile", nil)
	req.AddCookie(cookie)
	profile := httptest.NewRecorder()
	r.ServeHTTP(profile, req)
	fmt.Println(profile.Code, profile.Body.String())

	anonymous := httptest.NewRecorder()
	r.ServeHTTP(anonymous, httptest.NewRequest(http.MethodGet, "/profile", nil))
	fmt.Println(anonymous.Code, anonymous.Body.String())
	// Output:
	// __Host-session true true true
	// 200 alice is admin
	// 401 {"error":"Not authenticated"}
}

func ExampleNewManager() {
	ctx := context.Background()
	m := ginsession.NewManager(nil) // nil: a new in-memory store, closed by m.Close
	defer m.Close()

	s, _ := m.CreateSession(ctx, "alice", map[string]any{"visits": 1})
	_ = m.UpdateSession(ctx, s.ID, map[string]any{"visits": 2, "theme": "dark"})

	got, _ := m.GetSession(ctx, s.ID)
	fmt.Println(got.UserID, got.Data["visits"], got.Data["theme"])

	_ = m.DeleteSession(ctx, s.ID)
	_, err := m.GetSession(ctx, s.ID)
	fmt.Println(errors.Is(err, ginsession.ErrNotFound))
	// Output:
	// alice 2 dark
	// true
}

func ExampleManager_RotateSession() {
	ctx := context.Background()
	m := ginsession.NewManager(nil)
	defer m.Close()

	s, _ := m.CreateSession(ctx, "alice", map[string]any{"cart": []string{"book"}})

	// After a privilege change, issue a new ID for the same session.
	r, _ := m.RotateSession(ctx, s.ID)
	fmt.Println(r.ID != s.ID, r.UserID, r.Data["cart"], r.AbsoluteExpiresAt.Equal(s.AbsoluteExpiresAt))

	_, err := m.GetSession(ctx, s.ID)
	fmt.Println("old ID:", err)
	// Output:
	// true alice [book] true
	// old ID: ginsession: session not found
}

func ExampleValue() {
	ctx := context.Background()
	m := ginsession.NewManager(nil)
	defer m.Close()

	s, _ := m.CreateSession(ctx, "alice", map[string]any{
		"visits": 3, "theme": "dark", "seen": time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), "tags": []string{"a", "b"},
	})
	// Typed reads without type assertions: the zero value when the key is
	// missing or holds another type.
	fmt.Println(s.GetInt("visits"), s.GetString("theme"), s.GetTime("seen").Format(time.DateOnly))
	fmt.Println(ginsession.Value[[]string](s, "tags"), s.GetInt("theme"), s.GetString("missing") == "")
	fmt.Println(s.Exists("visits"), s.Keys())
	// Output:
	// 3 dark 2026-05-01
	// [a b] 0 true
	// true [seen tags theme visits]
}

func ExampleFlashes() {
	gin.SetMode(gin.ReleaseMode)
	m := ginsession.NewManager(nil)
	defer m.Close()

	r := gin.New()
	r.Use(ginsession.New(m))
	r.POST("/login", func(c *gin.Context) { _, _ = ginsession.Login(c, "alice", nil) })
	r.POST("/save", ginsession.Required(), func(c *gin.Context) {
		// ... save something, then tell the next page about it.
		_ = ginsession.AddFlash(c, "Saved")
		c.Redirect(http.StatusSeeOther, "/")
	})
	r.GET("/", ginsession.Required(), func(c *gin.Context) {
		flashes, _ := ginsession.Flashes(c) // taken: the next request sees none
		c.String(http.StatusOK, "%v", flashes)
	})

	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/login", nil))
	cookie := w.Result().Cookies()[0]
	do := func(method, path string) string {
		req := httptest.NewRequest(method, path, nil)
		req.AddCookie(cookie)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return fmt.Sprint(w.Code, " ", w.Body.String())
	}
	do(http.MethodPost, "/save")
	fmt.Println(do(http.MethodGet, "/"))
	fmt.Println(do(http.MethodGet, "/"))
	// Output:
	// 200 [Saved]
	// 200 []
}

func ExampleRememberMe() {
	gin.SetMode(gin.ReleaseMode)
	m := ginsession.NewManager(nil, ginsession.WithAbsoluteTimeout(30*24*time.Hour))
	defer m.Close()

	r := gin.New()
	r.Use(ginsession.New(m))
	r.POST("/login", func(c *gin.Context) {
		remember := c.Query("remember") == "on" // the login form's checkbox
		_, _ = ginsession.Login(c, "alice", nil, ginsession.RememberMe(remember))
	})
	for _, q := range []string{"", "?remember=on"} {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/login"+q, nil))
		maxAge := time.Duration(w.Result().Cookies()[0].MaxAge) * time.Second
		fmt.Printf("%q: Max-Age %s\n", q, maxAge.Round(time.Hour))
	}
	// Output:
	// "": Max-Age 0s
	// "?remember=on": Max-Age 720h0m0s
}
