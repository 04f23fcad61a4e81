package ginsession

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// DefaultRateLimitPolicy is the policy name RateLimit advertises when
// WithRateLimitPolicy is not given.
const DefaultRateLimitPolicy = "default"

// RateLimitOption configures RateLimit. Options are applied in order by
// RateLimit, which panics with a message naming the option when the result
// is invalid.
type RateLimitOption func(*rateLimitConfig)

type rateLimitConfig struct {
	key    func(*gin.Context) string
	policy string
	now    func() time.Time
}

// WithRateLimitKey sets the function that maps a request to the key it is
// limited by, for example a user ID or an API key instead of the client
// IP. The Limiter keeps the keys it tracks, so keys should be short: hash
// long ones. All requests that map to the same key share one quota,
// including the empty key. The default is ClientIPKey.
func WithRateLimitKey(fn func(c *gin.Context) string) RateLimitOption {
	return func(c *rateLimitConfig) { c.key = fn }
}

// WithRateLimitPolicy sets the policy name advertised in the RateLimit and
// RateLimit-Policy headers. It must be printable ASCII. The default is
// DefaultRateLimitPolicy ("default").
func WithRateLimitPolicy(name string) RateLimitOption {
	return func(c *rateLimitConfig) { c.policy = name }
}

// WithRateLimitClock sets the clock RateLimit passes to the Limiter. nil
// means time.Now, the default.
func WithRateLimitClock(now func() time.Time) RateLimitOption {
	return func(c *rateLimitConfig) { c.now = now }
}

// RateLimit returns a Gin middleware that admits each request through l,
// keyed by the client IP (ClientIPKey) unless WithRateLimitKey says
// otherwise.
//
// An admitted request continues with the headers of the IETF draft
// "RateLimit header fields for HTTP" (draft-ietf-httpapi-ratelimit-headers)
// set on its response, for example for a limit of 5 per minute:
//
//	RateLimit-Policy: "default";q=5;w=60
//	RateLimit: "default";r=4;t=60
//
// where q is the limit, w the window in seconds (rounded up), r the
// requests remaining and t the seconds (rounded up) until the oldest
// counted request leaves the window and r grows. A refused request is
// aborted with 429 Too Many Requests, a JSON body {"error": "..."}, the
// same headers with r=0, and Retry-After: the seconds until a request would
// be admitted, rounded up, at least 1, and equal to t.
//
// When the Limiter's backend fails (see WithLimiterBackend), the error is
// added to the context with c.Error for logging middleware, no RateLimit
// headers are set, and the request continues if the backend fail mode
// admits it; otherwise it is aborted with 503 Service Unavailable and
// Retry-After: 1.
//
// The client IP is what gin's Context.ClientIP returns, which trusts the
// X-Forwarded-For and X-Real-IP headers of requests from trusted proxies,
// and gin trusts every address by default: any client can then pick its
// own key, and so its own quota, by sending X-Forwarded-For. Call
// engine.SetTrustedProxies(nil) when the application is reached directly,
// or with the addresses of the reverse proxies in front of it, or set
// engine.TrustedPlatform (for example gin.PlatformCloudflare) behind such a
// platform.
//
// RateLimit panics if l is nil or an option is invalid. The returned
// handler is safe for concurrent use.
func RateLimit(l *Limiter, opts ...RateLimitOption) gin.HandlerFunc {
	if l == nil {
		panic("ginsession.RateLimit expects a non-nil Limiter")
	}
	cfg := rateLimitConfig{key: ClientIPKey, policy: DefaultRateLimitPolicy}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.key == nil {
		panic("ginsession.RateLimit: WithRateLimitKey expects a non-nil function")
	}
	name, ok := quoteString(cfg.policy)
	if !ok {
		panic(fmt.Sprintf("ginsession.RateLimit: WithRateLimitPolicy(%q) expects a non-empty printable ASCII name", cfg.policy))
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	policy := fmt.Sprintf("%s;q=%d;w=%d", name, l.Limit(), ceilSeconds(l.Window()))
	prefix := name + ";r="

	return func(c *gin.Context) {
		d, err := l.ReserveAtContext(c.Request.Context(), cfg.key(c), cfg.now())
		h := c.Writer.Header()
		if err != nil {
			_ = c.Error(err)
			if !d.Allowed {
				h.Set("Retry-After", "1")
				c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"error": "rate limiter unavailable"})
			}
			return
		}
		h.Set("RateLimit-Policy", policy)
		if d.Allowed {
			h.Set("RateLimit", rateLimitValue(prefix, d.Remaining, ceilSeconds(d.ResetAfter)))
			return
		}
		secs := ceilSeconds(d.RetryAfter)
		h.Set("RateLimit", rateLimitValue(prefix, 0, secs))
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
		c.AbortWithStatusJSON(http.StatusTooManyRequests, gin.H{"error": "too many requests"})
	}
}

// ClientIPKey is the default key of RateLimit: the client IP as returned
// by c.ClientIP (see RateLimit on trusting proxies), in canonical form. An
// IPv6 address is reduced to its /64 prefix, because one host commonly
// holds a whole /64 and would otherwise get 2^64 quotas. A value that is
// not an IP address (possible with a TrustedPlatform header) maps to the
// single key "invalid", so such requests share one quota and cannot grow
// the Limiter's table with long keys.
func ClientIPKey(c *gin.Context) string {
	ip := c.ClientIP()
	addr, err := netip.ParseAddr(ip)
	switch {
	case err != nil:
		return "invalid"
	case addr.Is4():
		return ip
	case addr.Is4In6():
		return addr.Unmap().String()
	default:
		return netip.PrefixFrom(addr.WithZone(""), 64).Masked().String()
	}
}

// ceilSeconds returns d in whole seconds, rounded up, at least 1.
func ceilSeconds(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}

// rateLimitValue formats a RateLimit header field value from its
// precomputed prefix.
func rateLimitValue(prefix string, remaining int, secs int64) string {
	var buf [96]byte
	b := append(buf[:0], prefix...)
	b = strconv.AppendInt(b, int64(remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, secs, 10)
	return string(b)
}

// quoteString returns name as a structured-field String (RFC 8941), reporting
// false if it is empty or not printable ASCII.
func quoteString(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	var sb strings.Builder
	sb.WriteByte('"')
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if ch < 0x20 || ch > 0x7e {
			return "", false
		}
		if ch == '"' || ch == '\\' {
			sb.WriteByte('\\')
		}
		sb.WriteByte(ch)
	}
	sb.WriteByte('"')
	return sb.String(), true
}
