package gincontrib_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/gincontrib"
)

// Migrating from gin-contrib/sessions: the store is the only change. The
// handlers below are written for gin-contrib and stay as they are; where
// the application had
//
//	store := cookie.NewStore([]byte("secret"))
//	r.Use(sessions.Sessions("mysession", store))
//
// it now has a Manager and gincontrib.NewStore. Logout with MaxAge -1 now
// ends the session on the server too.
func Example() {
	m := ginsession.NewManager(nil) // or memcached.NewFromServers(...)
	defer m.Close()

	r := gin.New()
	r.Use(sessions.Sessions("mysession", gincontrib.NewStore(m)))
	r.GET("/incr", func(c *gin.Context) {
		session := sessions.Default(c)
		count, _ := session.Get("count").(int)
		count++
		session.Set("count", count)
		if err := session.Save(); err != nil {
			c.AbortWithStatus(http.StatusServiceUnavailable)
			return
		}
		c.JSON(http.StatusOK, gin.H{"count": count})
	})
	r.GET("/logout", func(c *gin.Context) {
		session := sessions.Default(c)
		session.Options(sessions.Options{Path: "/", MaxAge: -1})
		_ = session.Save()
		c.Status(http.StatusNoContent)
	})

	var cookie string
	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, path, nil)
		req.Header.Set("Cookie", cookie)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	var attrs string
	for range 3 {
		w := get("/incr")
		var pair string
		pair, attrs, _ = strings.Cut(w.Header().Get("Set-Cookie"), "; ")
		cookie = pair
		fmt.Println(w.Body.String())
	}
	fmt.Println("cookie attributes:", attrs)
	id := strings.TrimPrefix(cookie, "mysession=")
	fmt.Println("cookie holds only an ID:", len(id) == 43)

	get("/logout")
	_, err := m.GetSession(context.Background(), id)
	fmt.Println("session alive after logout:", err == nil)
	// Output:
	// {"count":1}
	// {"count":2}
	// {"count":3}
	// cookie attributes: Path=/; HttpOnly; Secure; SameSite=Lax
	// cookie holds only an ID: true
	// session alive after logout: false
}
