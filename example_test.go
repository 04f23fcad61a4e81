package ginsession_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

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
		s := c.MustGet(ginsession.SessionKey).(*ginsession.Session)
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
