package ginsession

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// cookieCodec reads and writes the session cookie. The attribute string is
// built once, so setting a cookie is one concatenation.
type cookieCodec struct {
	name       string
	attrs      string // "; Path=/; HttpOnly; Secure; SameSite=Lax"
	clearValue string // the whole Set-Cookie value that deletes the cookie
	persistent bool
	now        func() time.Time
}

func newCookieCodec(cfg *config) cookieCodec {
	var b strings.Builder
	b.WriteString("; Path=")
	b.WriteString(cfg.cookiePath)
	if cfg.cookieDomain != "" {
		b.WriteString("; Domain=")
		b.WriteString(cfg.cookieDomain)
	}
	b.WriteString("; HttpOnly")
	if cfg.cookieSecure {
		b.WriteString("; Secure")
	}
	switch cfg.sameSite {
	case http.SameSiteLaxMode:
		b.WriteString("; SameSite=Lax")
	case http.SameSiteStrictMode:
		b.WriteString("; SameSite=Strict")
	case http.SameSiteNoneMode:
		b.WriteString("; SameSite=None")
	}
	attrs := b.String()
	return cookieCodec{
		name:       cfg.cookieName,
		attrs:      attrs,
		clearValue: cfg.cookieName + "=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT" + attrs,
		persistent: cfg.persistent,
		now:        cfg.now,
	}
}

// read returns the value of the first session cookie in the request's
// Cookie headers. It scans the header text in place and does not allocate.
func (cc *cookieCodec) read(h http.Header) (string, bool) {
	for _, line := range h[textproto.CanonicalMIMEHeaderKey("Cookie")] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimLeft(part, " \t")
			name, value, ok := strings.Cut(part, "=")
			if ok && strings.TrimRight(name, " \t") == cc.name {
				return strings.TrimRight(value, " \t"), true
			}
		}
	}
	return "", false
}

// set writes the Set-Cookie header for s, with Cache-Control: no-store so
// that no cache keeps a response that carries a session token. The cookie
// is persistent (a Max-Age reaching the absolute deadline) when the Manager
// says so (WithPersistentCookie) or the session was created so.
func (cc *cookieCodec) set(c *gin.Context, s *Session) {
	v := cc.name + "=" + s.ID + cc.attrs
	if cc.persistent || s.Persistent {
		secs := int64(s.AbsoluteExpiresAt.Sub(cc.now()) / time.Second)
		v += "; Max-Age=" + strconv.FormatInt(max(secs, 1), 10)
	}
	cc.replace(c.Writer.Header(), v)
}

// clear writes a Set-Cookie header that deletes the session cookie.
func (cc *cookieCodec) clear(c *gin.Context) {
	cc.replace(c.Writer.Header(), cc.clearValue)
}

// replace sets the session cookie's Set-Cookie header to v, dropping any
// earlier one for the same cookie in this response (a clear followed by a
// Login, say), and forbids caching the response.
func (cc *cookieCodec) replace(h http.Header, v string) {
	prev := h["Set-Cookie"]
	kept := prev[:0]
	for _, p := range prev {
		if !(strings.HasPrefix(p, cc.name) && strings.HasPrefix(p[len(cc.name):], "=")) {
			kept = append(kept, p)
		}
	}
	h["Set-Cookie"] = append(kept, v)
	h["Cache-Control"] = noStore
}

// noStore is the shared value of the Cache-Control header set with the
// cookie. Its capacity equals its length, so a later Header.Add copies it
// rather than writing into it.
var noStore = []string{"no-store"}
