package ginsession

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Defaults, following the OWASP Session Management Cheat Sheet: idle
// timeouts of 15–30 minutes for low-risk applications, and an absolute
// timeout of about a working day.
const (
	// DefaultIdleTimeout is the idle timeout when WithIdleTimeout is not given.
	DefaultIdleTimeout = 30 * time.Minute
	// DefaultAbsoluteTimeout is the absolute timeout when WithAbsoluteTimeout
	// is not given.
	DefaultAbsoluteTimeout = 8 * time.Hour
	// DefaultRefreshInterval is the sliding-expiry write interval when
	// WithRefreshInterval is not given.
	DefaultRefreshInterval = time.Minute
	// DefaultCookieName is the session cookie's name when WithCookieName is
	// not given. The __Host- prefix makes browsers insist on Secure, Path=/
	// and no Domain, so no subdomain can set or shadow the cookie.
	DefaultCookieName = "__Host-session"
)

// MaxTimeout is the longest timeout, interval or grace period the options
// accept: ten years. Longer ones would reach past what stores can hold
// (memcached's expiries end in 2038, Go's Unix nanoseconds in 2262), so
// NewManager refuses them rather than let a deadline wrap around.
const MaxTimeout = 10 * 365 * 24 * time.Hour

// maxCookieSize is the browser limit on a cookie's name plus value that
// RFC 6265bis asks user agents to accept.
const maxCookieSize = 4096

// Option configures a Manager. Options are applied in order by NewManager,
// which panics with a message naming the option when the result is invalid.
type Option func(*config)

// ErrorHandler handles an error met while loading a request's session, such
// as a store that is down. It must write a response (typically with
// c.AbortWithStatusJSON); if it does not abort, the request continues
// without a session.
type ErrorHandler func(c *gin.Context, err error)

type config struct {
	idle, absolute, refresh time.Duration
	now                     func() time.Time
	errorHandler            ErrorHandler
	logger                  *slog.Logger
	hashKey                 []byte
	limiter                 *Limiter
	maxPerUser              int
	grace, renewal          time.Duration
	unknownHook             func(*gin.Context)

	cookieName, cookieDomain, cookiePath string
	cookieSecure, persistent             bool
	sameSite                             http.SameSite

	// setBy records which option last set a cookie attribute, so that
	// validation errors name the option the user wrote.
	setBy map[string]string
}

func defaultConfig() config {
	return config{
		idle:         DefaultIdleTimeout,
		absolute:     DefaultAbsoluteTimeout,
		refresh:      DefaultRefreshInterval,
		cookieName:   DefaultCookieName,
		cookiePath:   "/",
		cookieSecure: true,
		sameSite:     http.SameSiteLaxMode,
		maxPerUser:   DefaultMaxSessionsPerUser,
		setBy:        map[string]string{},
	}
}

// WithIdleTimeout sets how long a session lives without requests. Every
// request (at most once per refresh interval, see WithRefreshInterval) and
// every RefreshSession extends it, never past the absolute deadline. It must
// be positive and at most MaxTimeout. The default is DefaultIdleTimeout (30
// minutes).
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) { c.idle = d; c.setBy["idle"] = fmt.Sprintf("WithIdleTimeout(%s)", d) }
}

// WithAbsoluteTimeout sets the maximum lifetime of a session from its
// creation, whatever its activity. Rotation does not reset it. It must be
// positive and at most MaxTimeout. The default is DefaultAbsoluteTimeout (8
// hours).
func WithAbsoluteTimeout(d time.Duration) Option {
	return func(c *config) {
		c.absolute = d
		c.setBy["absolute"] = fmt.Sprintf("WithAbsoluteTimeout(%s)", d)
	}
}

// WithRefreshInterval sets how stale the idle deadline may get before a
// request extends it. A request extends the deadline (with a cheap store
// touch that rewrites no data) only when that would move it by at least d,
// so a busy session costs at most one store write per d, and a session may
// end up to d earlier than a full idle timeout after its last request. Zero
// extends on every request. It must be less than the idle timeout. The
// default is DefaultRefreshInterval (one minute), or a tenth of the idle
// timeout when that is shorter.
func WithRefreshInterval(d time.Duration) Option {
	return func(c *config) {
		c.refresh = d
		c.setBy["refresh"] = fmt.Sprintf("WithRefreshInterval(%s)", d)
	}
}

// WithClock sets the function the Manager reads the time from, for tests
// that advance a fake clock instead of sleeping. When NewManager creates the
// default memory store, the store uses the same clock. The default is
// time.Now; nil also means time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithErrorHandler sets the handler for errors met by the middleware while
// loading a session (a store that is down, a timeout). The default logs the
// error (never the session ID), rate-limited as WithLogger describes, and
// answers 503 Service Unavailable with a JSON body {"error": "session store
// unavailable"}.
func WithErrorHandler(h ErrorHandler) Option {
	return func(c *config) { c.errorHandler = h }
}

// WithLogger sets the logger for store errors met by the middleware's
// default error handler. Session IDs never reach it. During an outage it
// gets the first failure, then at most one record per second carrying the
// number of failures suppressed since the previous one, and one record
// when the store answers again; Manager.Stats counts every failure.
// Malformed or unknown cookies are not logged (they are counted; see
// Manager.Stats). The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithTokenHashKey sets a server secret with which session IDs are hashed
// (HMAC-SHA-256) before they reach the store. Without it, IDs are hashed
// with plain SHA-256. Either way a dump of the store holds no usable token;
// the key adds that an attacker who can write to the store cannot plant a
// session for an ID of their choosing without also knowing the key.
//
// With a key, the token in the cookie also carries a short MAC of the ID
// (72 bits: the token is the 43-character ID, a dot and 12 characters), so
// that a forged token is refused with no store call at all. A cookie
// without the MAC, as issued before the key was set, is refused the same
// way: setting a key (or changing it) ends every session, and users log in
// again. All instances sharing a store need the same key. The default is
// no key.
func WithTokenHashKey(key []byte) Option {
	return func(c *config) { c.hashKey = append([]byte(nil), key...) }
}

// WithCookieName sets the session cookie's name. A name starting with
// __Host- requires Secure, Path=/ and no Domain; one starting with __Secure-
// requires Secure. The prefixes are matched without regard to case, as
// browsers match them. The default is DefaultCookieName ("__Host-session").
func WithCookieName(name string) Option {
	return func(c *config) {
		c.cookieName = name
		c.setBy["name"] = fmt.Sprintf("WithCookieName(%q)", name)
	}
}

// WithCookieDomain sets the cookie's Domain attribute, sharing the session
// with subdomains. It must be a single domain name (such as
// "example.com"), not a list. Leave it unset unless that is needed: a
// cookie without Domain is sent only to the host that set it. The default
// is no Domain.
func WithCookieDomain(domain string) Option {
	return func(c *config) {
		c.cookieDomain = domain
		c.setBy["domain"] = fmt.Sprintf("WithCookieDomain(%q)", domain)
	}
}

// WithCookiePath sets the cookie's Path attribute. The default is "/".
func WithCookiePath(path string) Option {
	return func(c *config) {
		c.cookiePath = path
		c.setBy["path"] = fmt.Sprintf("WithCookiePath(%q)", path)
	}
}

// WithCookieSecure sets whether the cookie carries the Secure attribute, so
// browsers send it only over HTTPS (and to http://localhost). Turning it off
// is for plain-HTTP development hosts only, and needs a cookie name without
// the __Host- or __Secure- prefix. The default is true.
func WithCookieSecure(secure bool) Option {
	return func(c *config) {
		c.cookieSecure = secure
		c.setBy["secure"] = fmt.Sprintf("WithCookieSecure(%t)", secure)
	}
}

// WithCookieSameSite sets the cookie's SameSite attribute. SameSite=None
// requires Secure. The default is http.SameSiteLaxMode.
func WithCookieSameSite(s http.SameSite) Option {
	return func(c *config) {
		c.sameSite = s
		c.setBy["samesite"] = fmt.Sprintf("WithCookieSameSite(%d)", s)
	}
}

// WithPersistentCookie makes the cookie outlive the browser session: it
// gets a Max-Age reaching the session's absolute deadline. By default the
// cookie is a session cookie (no Max-Age or Expires), dropped when the
// browser closes.
func WithPersistentCookie(persistent bool) Option {
	return func(c *config) { c.persistent = persistent }
}

// WithCreateLimiter limits CreateSession (and so Login) per user ID with l:
// over the limit, CreateSession returns a *RateLimitError matching
// ErrRateLimited. Anonymous sessions (an empty user ID) are limited per
// client IP when created by Login, and share the quota of the empty user
// ID when created by CreateSession, which has no request at hand. To limit
// login attempts per client IP, put RateLimit in front of the login route
// as well. The default is no limit.
func WithCreateLimiter(l *Limiter) Option {
	return func(c *config) { c.limiter = l }
}

// WithMaxSessionsPerUser caps how many live sessions one user ID may hold
// at once. Creating one more ends the user's oldest live session, so a
// leaked password or a bot cannot pile up sessions without bound, and the
// user's index (see ListUserSessions) stays small. Sessions that have ended
// (logged out, deleted, idle or absolute expired) never count. It must be
// at least 1. The default is DefaultMaxSessionsPerUser (100).
func WithMaxSessionsPerUser(n int) Option {
	return func(c *config) {
		c.maxPerUser = n
		c.setBy["maxPerUser"] = fmt.Sprintf("WithMaxSessionsPerUser(%d)", n)
	}
}

// WithRotationGrace keeps a rotated-away session ID working for d after the
// rotation, resolving to the live session, so that requests already in
// flight with the old cookie (parallel fetches from one page) do not fail.
// After d the old ID is dead. Any chain of rotations within the grace
// period resolves to the live session, and logging out or deleting through
// any ID of the chain, or DeleteUserSessions, ends all of it. The absolute
// deadline never moves. Zero disables the grace period: the old ID dies at
// once. It must be at most MaxTimeout. The default is 0.
func WithRotationGrace(d time.Duration) Option {
	return func(c *config) {
		c.grace = d
		c.setBy["grace"] = fmt.Sprintf("WithRotationGrace(%s)", d)
	}
}

// WithRenewalInterval makes the middleware rotate a session's ID
// automatically once it is d old (OWASP's renewal timeout), setting the new
// cookie on that response. It limits how long a stolen ID stays useful even
// while its owner stays active. The session's CSRF token does not change
// (see CSRFToken), so a form rendered before the renewal is accepted on the
// request that renews. Combine it with WithRotationGrace so that parallel
// requests carrying the previous ID are not refused. Zero disables
// automatic rotation. It must be at most MaxTimeout. The default is 0.
func WithRenewalInterval(d time.Duration) Option {
	return func(c *config) {
		c.renewal = d
		c.setBy["renewal"] = fmt.Sprintf("WithRenewalInterval(%s)", d)
	}
}

// WithUnknownIDHook sets a function the middleware calls for every request
// whose session cookie is malformed or names no live session. Such IDs are
// never adopted: the request proceeds without a session and the cookie is
// cleared. Use the hook to count or alert on probing clients, or to feed a
// Limiter keyed by client IP. It runs before the handlers and may abort the
// request. The default is none.
func WithUnknownIDHook(hook func(c *gin.Context)) Option {
	return func(c *config) { c.unknownHook = hook }
}

// validate checks the configuration and returns an error naming the
// offending option.
func (c *config) validate() error {
	name := func(attr, fallback string) string {
		if s := c.setBy[attr]; s != "" {
			return s
		}
		return fallback
	}
	for _, d := range []struct {
		attr, option string
		v            time.Duration
	}{
		{"idle", "WithIdleTimeout", c.idle},
		{"absolute", "WithAbsoluteTimeout", c.absolute},
		{"refresh", "WithRefreshInterval", c.refresh},
		{"grace", "WithRotationGrace", c.grace},
		{"renewal", "WithRenewalInterval", c.renewal},
	} {
		if d.v > MaxTimeout {
			return fmt.Errorf("%s: must be at most %s (10 years)", name(d.attr, d.option), MaxTimeout)
		}
	}
	switch {
	case c.idle <= 0:
		return fmt.Errorf("%s: idle timeout must be positive", name("idle", "WithIdleTimeout"))
	case c.absolute <= 0:
		return fmt.Errorf("%s: absolute timeout must be positive", name("absolute", "WithAbsoluteTimeout"))
	case c.refresh < 0 || c.refresh >= c.idle:
		return fmt.Errorf("%s: refresh interval must be at least 0 and less than the idle timeout (%s)",
			name("refresh", "WithRefreshInterval"), c.idle)
	}
	if c.maxPerUser < 1 {
		return fmt.Errorf("%s: must be at least 1", name("maxPerUser", "WithMaxSessionsPerUser"))
	}
	if c.grace < 0 {
		return fmt.Errorf("%s: must not be negative", name("grace", "WithRotationGrace"))
	}
	if c.renewal < 0 {
		return fmt.Errorf("%s: must not be negative", name("renewal", "WithRenewalInterval"))
	}
	if !validCookieName(c.cookieName) {
		return fmt.Errorf("%s: not a valid cookie name", name("name", "WithCookieName"))
	}
	if len(c.cookieName)+1+maxTokenLen > maxCookieSize {
		return fmt.Errorf("%s: cookie name and value exceed %d bytes", name("name", "WithCookieName"), maxCookieSize)
	}
	if c.cookieDomain != "" && !validCookieDomain(c.cookieDomain) {
		return fmt.Errorf("%s: not a single valid domain name", name("domain", "WithCookieDomain"))
	}
	if strings.ContainsAny(c.cookiePath, "; \t\r\n") || hasControl(c.cookiePath) {
		return fmt.Errorf("%s: invalid character in cookie path", name("path", "WithCookiePath"))
	}
	if !strings.HasPrefix(c.cookiePath, "/") {
		return fmt.Errorf("%s: cookie path must start with /", name("path", "WithCookiePath"))
	}
	if c.sameSite == http.SameSiteNoneMode && !c.cookieSecure {
		return fmt.Errorf("%s: SameSite=None requires Secure (%s)", name("samesite", "WithCookieSameSite"), name("secure", "WithCookieSecure"))
	}
	// Browsers match the prefixes case-insensitively (RFC 6265bis).
	lower := strings.ToLower(c.cookieName)
	if strings.HasPrefix(lower, "__host-") {
		switch {
		case !c.cookieSecure:
			return fmt.Errorf("%s: cookie name %q requires Secure; choose another name with WithCookieName",
				name("secure", "WithCookieSecure"), c.cookieName)
		case c.cookiePath != "/":
			return fmt.Errorf("%s: cookie name %q requires Path=/", name("path", "WithCookiePath"), c.cookieName)
		case c.cookieDomain != "":
			return fmt.Errorf("%s: cookie name %q requires no Domain", name("domain", "WithCookieDomain"), c.cookieName)
		}
	}
	if strings.HasPrefix(lower, "__secure-") && !c.cookieSecure {
		return fmt.Errorf("%s: cookie name %q requires Secure", name("secure", "WithCookieSecure"), c.cookieName)
	}
	return nil
}

// validCookieDomain reports whether d is one domain name (an optional
// leading dot, then dot-separated labels of letters, digits and hyphens) or
// an IP address: a Domain attribute names a single host or domain.
func validCookieDomain(d string) bool {
	if _, err := netip.ParseAddr(d); err == nil {
		return true
	}
	d = strings.TrimPrefix(d, ".")
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-') {
				return false
			}
		}
	}
	return true
}

// hasControl reports whether s holds an ASCII control character.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// validCookieName reports whether name is an RFC 6265 token.
func validCookieName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, b) >= 0 {
			return false
		}
	}
	return true
}
