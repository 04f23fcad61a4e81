package ginsession_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
)

// csrfRouter is a router with CSRF protection and a token endpoint.
func csrfRouter(m *ginsession.Manager) *gin.Engine {
	r := newTestRouter(m)
	g := r.Group("/app", ginsession.CSRF())
	g.GET("/token", func(c *gin.Context) { c.String(http.StatusOK, ginsession.CSRFToken(c)) })
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		g.Handle(method, "/do", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	}
	return r
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	r := csrfRouter(e.m)
	cookie := e.login("alice")

	w := performRequest(r, http.MethodGet, "/app/token", cookie)
	require.Equal(t, http.StatusOK, w.Code)
	token := w.Body.String()
	require.Len(t, token, 43)
	assert.NotContains(t, token, idOf(cookie))

	send := func(method, header, form string) int {
		var body *strings.Reader
		if form != "" {
			body = strings.NewReader(url.Values{ginsession.CSRFFormField: {form}}.Encode())
		} else {
			body = strings.NewReader("")
		}
		req := httptest.NewRequest(method, "/app/do", body)
		req.Header.Set("Cookie", cookie)
		if form != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if header != "" {
			req.Header.Set(ginsession.CSRFHeader, header)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code == http.StatusForbidden {
			assert.JSONEq(t, `{"error":"invalid CSRF token"}`, w.Body.String())
		}
		return w.Code
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			assert.Equal(t, http.StatusForbidden, send(method, "", ""), "no token")
			assert.Equal(t, http.StatusForbidden, send(method, "wrong", ""), "wrong token")
			assert.Equal(t, http.StatusForbidden, send(method, token[:42], ""), "truncated token")
			assert.Equal(t, http.StatusNoContent, send(method, token, ""), "header")
		})
	}
	assert.Equal(t, http.StatusNoContent, send(http.MethodPost, "", token), "form field")
	req := httptest.NewRequest(http.MethodPost, "/app/do", strings.NewReader(url.Values{"_csrf": {token}}.Encode()))
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w = httptest.NewRecorder()
	r.ServeHTTP(w, req)
	assert.Equal(t, http.StatusNoContent, w.Code, "the _csrf form field")
	assert.Equal(t, http.StatusOK, performRequest(r, http.MethodGet, "/app/token", cookie).Code, "safe methods pass")

	// The token belongs to the session, not to its ID: rotation keeps it.
	w = performRequest(r, http.MethodPost, "/rotate", cookie)
	require.Equal(t, http.StatusNoContent, w.Code)
	rotated := cookieHeader(t, w)
	assert.Equal(t, token, performRequest(r, http.MethodGet, "/app/token", rotated).Body.String())
	cookie = rotated
	assert.Equal(t, http.StatusNoContent, send(http.MethodPost, token, ""))

	// Login makes a new session, with a new token.
	w = performRequest(r, http.MethodPost, "/login?user=alice", cookie)
	require.Equal(t, http.StatusOK, w.Code)
	cookie = cookieHeader(t, w)
	newToken := performRequest(r, http.MethodGet, "/app/token", cookie).Body.String()
	assert.NotEqual(t, token, newToken)
	assert.Equal(t, http.StatusForbidden, send(http.MethodPost, token, ""))
	assert.Equal(t, http.StatusNoContent, send(http.MethodPost, newToken, ""))
}

func TestCSRFWithoutSessionPasses(t *testing.T) {
	e := newEnv(t)
	r := csrfRouter(e.m)
	assert.Equal(t, http.StatusNoContent, performRequest(r, http.MethodPost, "/app/do", "").Code)
	assert.Empty(t, performRequest(r, http.MethodGet, "/app/token", "").Body.String())
}
