// Command _example is a small Gin application using ginsession: log in,
// read a profile, log out.
//
//	go run ./_example                              # in-memory store, http://localhost:3000
//	go run ./_example -memcached 127.0.0.1:11211   # sessions shared through memcached
//
// Try it with curl (the session cookie is Secure, which browsers and curl
// accept over plain HTTP only for localhost):
//
//	curl -c jar -b jar -X POST localhost:3000/login -d '{"userId":"alice","role":"admin"}'
//	curl -c jar -b jar localhost:3000/profile
//	curl -c jar -b jar -X POST localhost:3000/logout
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/stores"
)

func main() {
	addr := flag.String("addr", ":3000", "listen address")
	mc := flag.String("memcached", "", "comma-separated memcached servers (host:port); empty means the in-memory store")
	flag.Parse()

	store, err := openStore(*mc)
	if err != nil {
		log.Fatal(err)
	}
	m := ginsession.NewManager(store)
	defer m.Close()
	if store != nil {
		defer store.Close()
	}

	srv := &http.Server{Addr: *addr, Handler: newRouter(m), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	slog.Info("listening", "addr", *addr, "store", storeName(*mc))
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

func storeName(mc string) string {
	if mc == "" {
		return "memory"
	}
	return "memcached " + mc
}

// openStore returns nil (the Manager's default in-memory store) or a
// memcached store.
func openStore(servers string) (stores.Store, error) {
	if servers == "" {
		return nil, nil
	}
	return openMemcached(strings.Split(servers, ","))
}

type loginRequest struct {
	UserID string `json:"userId" binding:"required"`
	Role   string `json:"role"`
}

// newRouter builds the application's routes on m.
func newRouter(m *ginsession.Manager) *gin.Engine {
	r := gin.New()
	r.Use(gin.Recovery(), ginsession.New(m))

	r.POST("/login", func(c *gin.Context) {
		var req loginRequest
		if err := c.ShouldBindJSON(&req); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": "userId is required"})
			return
		}
		if _, err := ginsession.Login(c, req.UserID, map[string]any{"role": req.Role}); err != nil {
			var rl *ginsession.RateLimitError
			if errors.As(err, &rl) {
				c.JSON(http.StatusTooManyRequests, gin.H{"error": "Too many logins, try again later"})
				return
			}
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "Could not create session"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"message": "Logged in successfully"})
	})

	r.GET("/profile", ginsession.Required(), func(c *gin.Context) {
		s := ginsession.MustCurrent(c)
		c.JSON(http.StatusOK, gin.H{"userId": s.UserID, "data": s.Data})
	})

	r.POST("/logout", ginsession.Required(), func(c *gin.Context) {
		if err := ginsession.Logout(c); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "Could not log out"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"message": "Logged out successfully"})
	})
	return r
}
