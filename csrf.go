package ginsession

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/securestack/ginsession/stores"
)

// Where CSRF checks for the token on unsafe requests.
const (
	// CSRFHeader is the request header carrying the CSRF token, for
	// JavaScript clients.
	CSRFHeader = "X-CSRF-Token"
	// CSRFFormField is the form field carrying the CSRF token, for HTML
	// forms. The field "_csrf" (the name many frameworks use) is accepted
	// too.
	CSRFFormField = "csrf_token"
)

// CSRFToken returns the request's synchronizer token for cross-site request
// forgery protection, or "" when the request has no session. Put it in
// forms as the CSRFFormField hidden field, or hand it to a single-page app,
// which sends it back in the CSRFHeader header.
//
// The token is bound to the session, not to its ID: it is an HMAC (with
// the key of WithTokenHashKey, or SHA-256 without one) of a random secret
// that the session keeps for its whole life, under a separate label. So it
// needs no storage of its own, reveals nothing about the ID, and stays
// valid across every rotation of the ID (automatic renewal, Rotate, a
// grace-period ID): a form rendered before a renewal is still accepted
// after it. A new session, as Login creates, has a new token. The token is
// no credential by itself: it proves that a request carrying the session
// cookie comes from a page of the application, and the cookie is what
// rotation protects.
func CSRFToken(c *gin.Context) string {
	s, ok := Current(c)
	if !ok {
		return ""
	}
	m, err := managerOf(c)
	if err != nil {
		return ""
	}
	return m.csrfToken(s)
}

// csrfToken derives the CSRF token of session s. Sessions stored before
// sessions had a secret derive it from their ID, as they always did.
func (m *Manager) csrfToken(s *Session) string {
	secret := s.csrfSecret()
	var k stores.Key
	if secret == ([stores.SecretSize]byte{}) {
		k = m.hash.key("\x00csrf\x00" + s.ID)
	} else {
		k = m.hash.key("\x00csrf2\x00" + string(secret[:]))
	}
	return base64.RawURLEncoding.EncodeToString(k[:])
}

// CSRF returns a middleware implementing the synchronizer-token pattern
// (OWASP CSRF Prevention Cheat Sheet). Requests with an unsafe method
// (POST, PUT, PATCH, DELETE, and any other but GET, HEAD, OPTIONS and
// TRACE) that carry a session must present the session's token (see
// CSRFToken) in the CSRFHeader header or the CSRFFormField form field;
// otherwise they are refused with 403 and the JSON body
// {"error": "invalid CSRF token"}. Tokens are compared in constant time.
//
// Requests without a session pass: there is no session to ride. Put CSRF
// after the session middleware (New), and protect the login form itself
// with SameSite cookies (the default Lax) or a pre-session token.
func CSRF() gin.HandlerFunc {
	return func(c *gin.Context) {
		switch c.Request.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			return
		}
		want := CSRFToken(c)
		if want == "" {
			return
		}
		got := c.GetHeader(CSRFHeader)
		if got == "" {
			got = c.PostForm(CSRFFormField)
		}
		if got == "" {
			got = c.PostForm("_csrf")
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": "invalid CSRF token"})
		}
	}
}
