package gincontrib

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	gsessions "github.com/gorilla/sessions"
)

// defaultOptions are the cookie options of a store whose Options method
// was never called: ginsession's secure defaults, a browser-session cookie.
func defaultOptions() gsessions.Options {
	return gsessions.Options{
		Path:     "/",
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteLaxMode,
	}
}

// sampleValue stands for a session ID when validating options: the
// cookie's validity does not depend on the ID, which is always base64url.
const sampleValue = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// checkCookie reports whether a cookie named name with options o is one
// browsers accept, with an error wrapping ErrCookieOptions.
func checkCookie(name string, o *gsessions.Options) error {
	c := http.Cookie{
		Name: name, Value: sampleValue, Path: o.Path, Domain: o.Domain,
		Secure: o.Secure, Partitioned: o.Partitioned, SameSite: o.SameSite,
	}
	if err := c.Valid(); err != nil {
		return fmt.Errorf("%w: cookie %q: %v", ErrCookieOptions, name, err)
	}
	// Browsers match the prefixes without regard to case (RFC 6265bis).
	lower := strings.ToLower(name)
	switch {
	case strings.HasPrefix(lower, "__host-") && !o.Secure:
		return fmt.Errorf("%w: cookie %q: a __Host- name requires Secure", ErrCookieOptions, name)
	case strings.HasPrefix(lower, "__host-") && o.Path != "/":
		return fmt.Errorf("%w: cookie %q: a __Host- name requires Path \"/\", not %q", ErrCookieOptions, name, o.Path)
	case strings.HasPrefix(lower, "__host-") && o.Domain != "":
		return fmt.Errorf("%w: cookie %q: a __Host- name requires no Domain, not %q", ErrCookieOptions, name, o.Domain)
	case strings.HasPrefix(lower, "__secure-") && !o.Secure:
		return fmt.Errorf("%w: cookie %q: a __Secure- name requires Secure", ErrCookieOptions, name)
	case o.SameSite == http.SameSiteNoneMode && !o.Secure:
		return fmt.Errorf("%w: cookie %q: SameSite=None requires Secure", ErrCookieOptions, name)
	}
	return nil
}

// setCookie writes the Set-Cookie header of the session cookie name with
// value and the options o, used verbatim but for Max-Age: a positive
// MaxAge is capped at the session's absolute deadline abs, so the cookie
// never outlives the session; a negative one expires the cookie. It
// replaces any Set-Cookie header this response already had for the same
// cookie.
func setCookie(w http.ResponseWriter, name, value string, o *gsessions.Options, abs, now time.Time) {
	c := http.Cookie{
		Name:        name,
		Value:       value,
		Path:        o.Path,
		Domain:      o.Domain,
		Secure:      o.Secure,
		HttpOnly:    o.HttpOnly,
		SameSite:    o.SameSite,
		Partitioned: o.Partitioned,
	}
	switch {
	case o.MaxAge > 0:
		age := o.MaxAge
		if left := int(abs.Sub(now) / time.Second); left < age {
			age = max(left, 1)
		}
		c.MaxAge = age
		c.Expires = now.Add(time.Duration(age) * time.Second)
	case o.MaxAge < 0:
		c.MaxAge = -1
		c.Expires = time.Unix(1, 0)
	}
	h := w.Header()
	prev := h["Set-Cookie"]
	kept := make([]string, 0, len(prev)+1)
	for _, p := range prev {
		if !strings.HasPrefix(p, name+"=") {
			kept = append(kept, p)
		}
	}
	h["Set-Cookie"] = append(kept, c.String())
}

// noStore forbids caching a response that sets or could set a session
// cookie.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}

// headersWritten reports whether w has already sent the response headers,
// for writers that tell (gin's do).
func headersWritten(w http.ResponseWriter) bool {
	ww, ok := w.(interface{ Written() bool })
	return ok && ww.Written()
}
