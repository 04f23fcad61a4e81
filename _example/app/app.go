// Package app is the example application, as one gin.Engine: the JSON API
// of the README and server-rendered HTML pages that use the rest of
// ginsession in a browser. The command in the parent directory serves it;
// the e2e suite serves the very same router on a loopback port.
//
// JSON routes (the README's curl lines; bodies and statuses are part of
// the documentation):
//
//	POST /login    {"userId","role"} → 200 {"message"}; 400 without userId
//	GET  /profile  200 {"userId","data"}; 401 without a session
//	POST /logout   200 {"message"}; 401 without a session
//	POST /profile/data  {"key","value"} (strings, Content-Type: application/json)
//	               → 200 {"data"}, the session's data after the change; 400 for
//	               a key or value it refuses; 401 without a session; 415 for
//	               another content type
//
// HTML routes, under /app/:
//
//	GET  /app/login               the sign-in form (the profile when signed in)
//	POST /app/login               sign in: user, role, remember; limited per client IP
//	GET  /app/profile             user, session data and deadlines, a counter, your devices
//	POST /app/counter             add one to the counter
//	POST /app/devices/revoke      sign out another device of the user (field handle)
//	POST /app/devices/revoke-all  sign out everywhere, this device included
//	POST /app/logout              sign out this device
//
// and GET / redirects to /app/profile. The pages follow POST-redirect-GET:
// every POST answers 303 See Other to a page, which shows a flash message
// once. Without a session, the profile and every POST but the sign-in
// redirect (303) to /app/login. Every form carries the session's CSRF token
// in the hidden field csrf_token, which ginsession.CSRF checks on the POST
// routes; the sign-in form, which has no session to carry a token, is
// guarded by net/http's CrossOriginProtection instead (login CSRF). Every
// page under /app/ is sent with Cache-Control: no-store, so neither a cache
// nor the browser's history keeps private data after sign-out, and with a
// Content-Security-Policy that allows the page's inline style and nothing
// else. Refusals (403 for a bad CSRF token, 429 for too many sign-ins,
// 503 for an unreachable store) are small HTML pages.
package app

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/securestack/ginsession"
)

// Option configures New.
type Option func(*config)

type config struct {
	loginLimiter *ginsession.Limiter
}

// WithLoginLimiter sets the limiter of the HTML sign-in form, keyed by the
// client IP (ginsession.ClientIPKey). The default is 10 sign-ins per
// minute per address, a new Limiter for each router.
func WithLoginLimiter(l *ginsession.Limiter) Option {
	return func(c *config) { c.loginLimiter = l }
}

// Roles are the roles the sign-in form offers. The JSON /login accepts any.
var Roles = []string{"user", "admin"}

// MaxUserLen is the longest user name the sign-in form accepts, in bytes.
const MaxUserLen = 64

// New returns the application's router on m. It panics if m is nil or an
// option is invalid.
//
// The router trusts no proxy: c.ClientIP, the key of the sign-in rate
// limit, is the peer's address, not a header that any client could set.
// Behind a reverse proxy, call SetTrustedProxies on the result with its
// addresses.
func New(m *ginsession.Manager, opts ...Option) *gin.Engine {
	if m == nil {
		panic("app.New expects a non-nil Manager")
	}
	cfg := config{loginLimiter: ginsession.NewLimiter(10, time.Minute)}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.loginLimiter == nil {
		panic("app.New: WithLoginLimiter expects a non-nil Limiter")
	}

	r := gin.New()
	if err := r.SetTrustedProxies(nil); err != nil {
		panic("app.New: " + err.Error())
	}
	// pageMiddleware comes before the session middleware, so that its 503
	// (store down) is a page too under /app/.
	r.Use(gin.Recovery(), pageMiddleware, ginsession.New(m))
	jsonRoutes(r)
	p := &pages{m: m, crossOrigin: http.NewCrossOriginProtection()}
	p.routes(r, cfg)
	return r
}

type loginRequest struct {
	UserID string `json:"userId" binding:"required"`
	Role   string `json:"role"`
}

// jsonRoutes adds the JSON API documented in the README.
func jsonRoutes(r *gin.Engine) {
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

	r.POST("/profile/data", ginsession.Required(), setData)
}

// Limits of POST /profile/data.
const (
	// MaxDataKeys is how many keys a session's data may hold before
	// POST /profile/data refuses new ones. The check is made on the session
	// the request loaded, so concurrent requests adding different keys may
	// go a few past it; the store's item size limit bounds the rest.
	MaxDataKeys = 32
	// MaxKeyLen and MaxValueLen bound a key and a value, in bytes.
	MaxKeyLen   = 64
	MaxValueLen = 1024
)

type dataRequest struct {
	Key   string  `json:"key" binding:"required"`
	Value *string `json:"value" binding:"required"`
}

// setData sets one key of the session's data with ginsession.Set (one
// atomic merge: concurrent requests that set other keys keep their
// writes) and answers the data after the change.
//
// It takes JSON only: a cross-site page cannot send that content type
// without a CORS preflight, which this router never grants, so the route
// needs no CSRF token (SameSite=Lax keeps the cookie off cross-site posts
// as well). The "role" key, which the login sets, and keys starting with
// "_", which ginsession keeps for itself (flash messages), are refused: a
// client must not grant itself a role.
func setData(c *gin.Context) {
	if c.ContentType() != "application/json" {
		c.JSON(http.StatusUnsupportedMediaType, gin.H{"error": "Content-Type must be application/json"})
		return
	}
	var req dataRequest
	if err := c.ShouldBindJSON(&req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "key and value (strings) are required"})
		return
	}
	if msg := checkData(req.Key, *req.Value); msg != "" {
		c.JSON(http.StatusBadRequest, gin.H{"error": msg})
		return
	}
	s := ginsession.MustCurrent(c)
	if !s.Exists(req.Key) && len(s.Keys()) >= MaxDataKeys {
		c.JSON(http.StatusBadRequest, gin.H{"error": "Too many keys in this session"})
		return
	}
	if err := ginsession.Set(c, req.Key, *req.Value); err != nil {
		switch {
		case errors.Is(err, ginsession.ErrNotFound):
			// Logged out (or revoked) by another request meanwhile.
			c.JSON(http.StatusUnauthorized, gin.H{"error": "Not authenticated"})
		case errors.Is(err, ginsession.ErrTooLarge):
			c.JSON(http.StatusRequestEntityTooLarge, gin.H{"error": "Session data too large"})
		default:
			_ = c.Error(err)
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "Could not save"})
		}
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": ginsession.MustCurrent(c).Data})
}

// checkData returns what is wrong with a key and value for POST
// /profile/data, or "".
func checkData(key, value string) string {
	switch {
	case key == "role" || strings.HasPrefix(key, "_"):
		return "That key is reserved"
	case len(key) > MaxKeyLen || strings.IndexFunc(key, notKeyRune) >= 0:
		return "A key is at most 64 letters, digits, '-', '_' or '.'"
	case len(value) > MaxValueLen || !utf8.ValidString(value):
		return "A value is at most 1024 bytes of UTF-8"
	}
	return ""
}

func notKeyRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
}

// Paths of the HTML pages.
const (
	pagePrefix  = "/app/"
	loginPath   = "/app/login"
	profilePath = "/app/profile"
)

// pages holds the HTML handlers.
type pages struct {
	m           *ginsession.Manager
	crossOrigin *http.CrossOriginProtection
}

func (p *pages) routes(r *gin.Engine, cfg config) {
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, profilePath) })

	g := r.Group("/app")
	g.GET("/login", p.loginForm)
	g.POST("/login", p.sameOrigin, ginsession.RateLimit(cfg.loginLimiter), ginsession.CSRF(), p.login)

	// signedIn sends requests without a session to the sign-in page, so
	// the handlers after it may call ginsession.MustCurrent; CSRF then
	// refuses forms that lack the session's token.
	signed := g.Group("", signedIn)
	signed.GET("/profile", p.profile)
	post := signed.Group("", ginsession.CSRF())
	post.POST("/counter", p.increment)
	post.POST("/devices/revoke", p.revoke)
	post.POST("/devices/revoke-all", p.revokeAll)
	post.POST("/logout", p.logout)
}

// signedIn redirects requests without a live session to the sign-in page.
func signedIn(c *gin.Context) {
	if _, ok := ginsession.Current(c); !ok {
		c.Redirect(http.StatusSeeOther, loginPath)
		c.Abort()
	}
}

// sameOrigin refuses cross-origin form posts (Sec-Fetch-Site, or Origin
// against Host; requests from non-browser clients carry neither and pass).
// It guards the sign-in form against login CSRF: an attacker's page
// signing the victim in to the attacker's account. The other forms carry
// the session's CSRF token instead.
func (p *pages) sameOrigin(c *gin.Context) {
	if err := p.crossOrigin.Check(c.Request); err != nil {
		p.refuse(c, http.StatusForbidden, "Refused", "This form was posted from another site. Nothing was changed.")
	}
}

// Notices of the sign-in page, by the value of its "signed-out" query
// parameter.
var signedOutNotices = map[string]string{
	"1":          "You are signed out.",
	"everywhere": "You are signed out on every device.",
}

func (p *pages) loginForm(c *gin.Context) {
	if _, ok := ginsession.Current(c); ok {
		c.Redirect(http.StatusSeeOther, profilePath)
		return
	}
	p.render(c, http.StatusOK, "login", &loginView{
		Notice: signedOutNotices[c.Query("signed-out")],
		Role:   Roles[0],
	})
}

func (p *pages) login(c *gin.Context) {
	user := strings.TrimSpace(c.PostForm("user"))
	role := c.PostForm("role")
	remember := c.PostForm("remember") == "on"
	if msg := checkLogin(user, role); msg != "" {
		p.render(c, http.StatusBadRequest, "login", &loginView{Error: msg, User: user, Role: role, Remember: remember})
		return
	}
	// No password: this is an example. A real application checks the
	// credentials here, before Login.
	if _, err := ginsession.Login(c, user, map[string]any{"role": role}, ginsession.RememberMe(remember)); err != nil {
		var rl *ginsession.RateLimitError
		if errors.As(err, &rl) {
			p.refuse(c, http.StatusTooManyRequests, "Too many sign-ins", "Too many sign-ins for this user. Try again in a minute.")
			return
		}
		p.storeDown(c, err)
		return
	}
	p.flash(c, "Signed in as "+user+".")
	c.Redirect(http.StatusSeeOther, profilePath)
}

// checkLogin returns what is wrong with the sign-in form's fields, or "".
func checkLogin(user, role string) string {
	switch {
	case user == "":
		return "Enter a user name."
	case len(user) > MaxUserLen || !utf8.ValidString(user) || strings.IndexFunc(user, notPrint) >= 0:
		return "A user name is at most 64 printable characters."
	}
	for _, r := range Roles {
		if role == r {
			return ""
		}
	}
	return "Choose a role from the list."
}

func notPrint(r rune) bool { return !unicode.IsPrint(r) }

func (p *pages) profile(c *gin.Context) {
	ctx := c.Request.Context()
	flashes, err := ginsession.Flashes(c)
	if err != nil {
		p.storeDown(c, err)
		return
	}
	s := ginsession.MustCurrent(c) // after Flashes: the session without them
	infos, err := p.m.ListUserSessions(ctx, s.UserID)
	if err != nil {
		p.storeDown(c, err)
		return
	}
	v := &profileView{
		User:       s.UserID,
		Role:       s.GetString("role"),
		Handle:     s.Handle,
		Counter:    s.GetInt("counter"),
		Idle:       s.ExpiresAt,
		Absolute:   s.AbsoluteExpiresAt,
		Persistent: s.Persistent,
		Now:        time.Now(),
	}
	v.Flashes = make([]string, 0, len(flashes))
	for _, f := range flashes {
		if msg, ok := f.(string); ok {
			v.Flashes = append(v.Flashes, msg)
		}
	}
	for _, k := range s.Keys() {
		val, _ := s.Get(k)
		v.Data = append(v.Data, entry{Key: k, Value: val})
	}
	for _, in := range infos {
		v.Devices = append(v.Devices, device{SessionInfo: in, Current: in.Handle == s.Handle})
	}
	p.render(c, http.StatusOK, "profile", v)
}

func (p *pages) increment(c *gin.Context) {
	s := ginsession.MustCurrent(c)
	// A read-modify-write of one key: Set merges atomically, so no other
	// key is lost, but two clicks racing each other may count once.
	if err := ginsession.Set(c, "counter", s.GetInt("counter")+1); err != nil {
		p.storeDown(c, err)
		return
	}
	p.flash(c, "Saved.")
	c.Redirect(http.StatusSeeOther, profilePath)
}

func (p *pages) revoke(c *gin.Context) {
	s := ginsession.MustCurrent(c)
	handle := c.PostForm("handle")
	if handle == s.Handle {
		p.flash(c, "That is this device: use Sign out.")
		c.Redirect(http.StatusSeeOther, profilePath)
		return
	}
	// The user ID scopes the handle: nobody can end another user's session.
	err := p.m.DeleteSessionByHandle(c.Request.Context(), s.UserID, handle)
	switch {
	case errors.Is(err, ginsession.ErrNotFound):
		p.flash(c, "That device was already signed out.")
	case err != nil:
		p.storeDown(c, err)
		return
	default:
		p.flash(c, "Signed out other device.")
	}
	c.Redirect(http.StatusSeeOther, profilePath)
}

func (p *pages) revokeAll(c *gin.Context) {
	s := ginsession.MustCurrent(c)
	if err := p.m.DeleteUserSessions(c.Request.Context(), s.UserID); err != nil {
		p.storeDown(c, err)
		return
	}
	// This session has ended too; Logout clears its cookie.
	if err := ginsession.Logout(c); err != nil && !errors.Is(err, ginsession.ErrNoSession) {
		p.storeDown(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, loginPath+"?signed-out=everywhere")
}

func (p *pages) logout(c *gin.Context) {
	if err := ginsession.Logout(c); err != nil {
		p.storeDown(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, loginPath+"?signed-out=1")
}

// flash adds a flash message for the next page. Failing to add one is
// not worth failing the action that succeeded: the error goes to c.Errors.
func (p *pages) flash(c *gin.Context, msg string) {
	if err := ginsession.AddFlash(c, msg); err != nil {
		_ = c.Error(err)
	}
}

// storeDown answers a failed store operation with a 503 page.
func (p *pages) storeDown(c *gin.Context, err error) {
	_ = c.Error(err)
	p.refuse(c, http.StatusServiceUnavailable, refusals[http.StatusServiceUnavailable].Title, refusals[http.StatusServiceUnavailable].Message)
}
