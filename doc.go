// Package ginsession is session management for Gin that is secure by
// default, fast, and ready to scale out.
//
// A Manager runs the session lifecycle on a store (in memory by default,
// memcached or Redis for several instances: packages stores/memcached and
// stores/redisstore). The middleware returned by New loads each request's
// session and binds it to the gin.Context:
//
//	m := ginsession.NewManager(nil) // in-memory store
//	defer m.Close()
//	r := gin.New()
//	r.Use(ginsession.New(m))
//	r.POST("/login", func(c *gin.Context) {
//		// ... check credentials ...
//		if _, err := ginsession.Login(c, userID, map[string]any{"role": "user"}); err != nil { ... }
//	})
//	r.GET("/profile", ginsession.Required(), func(c *gin.Context) {
//		s := ginsession.MustCurrent(c)
//		...
//	})
//
// Session IDs are 256-bit random tokens; stores see only their hash. The
// cookie defaults to __Host-session with HttpOnly, Secure, SameSite=Lax and
// Path=/. Login rotates away any session the request carried (session
// fixation), idle and absolute timeouts are both enforced, and updates merge
// atomically so concurrent requests never lose each other's writes.
//
// The package's files hold one concern each: manager.go the lifecycle
// (independent of HTTP), users.go the per-user index, session.go the
// Session value, middleware.go, helpers.go, cookie.go and csrf.go the Gin
// glue, limiter.go and ratelimit.go the rate limiter.
package ginsession
