package app

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
)

// browser is a minimal client for the pages: it keeps the session cookie
// between requests, as a browser does, and follows nothing.
type browser struct {
	t      *testing.T
	h      http.Handler
	cookie *http.Cookie
	header http.Header // extra request headers
}

func newBrowser(t *testing.T, h http.Handler) *browser {
	return &browser{t: t, h: h, header: http.Header{}}
}

func (b *browser) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	b.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.Name != "__Host-session" {
			continue
		}
		if c.MaxAge < 0 {
			b.cookie = nil
		} else {
			b.cookie = c
		}
	}
	return w
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// token returns the CSRF token of the forms on the profile page.
func (b *browser) token() string {
	b.t.Helper()
	w := b.do(http.MethodGet, profilePath, nil)
	require.Equal(b.t, http.StatusOK, w.Code)
	m := csrfField.FindStringSubmatch(w.Body.String())
	require.NotNil(b.t, m, "profile has a CSRF field")
	require.NotEmpty(b.t, m[1])
	return m[1]
}

func (b *browser) login(user string) {
	b.t.Helper()
	w := b.do(http.MethodPost, loginPath, url.Values{"user": {user}, "role": {"admin"}})
	require.Equal(b.t, http.StatusSeeOther, w.Code, w.Body.String())
	require.Equal(b.t, profilePath, w.Header().Get("Location"))
	require.NotNil(b.t, b.cookie)
}

func newApp(t *testing.T, opts ...Option) (*ginsession.Manager, http.Handler) {
	t.Helper()
	gin.SetMode(gin.TestMode)
	m := ginsession.NewManager(nil)
	t.Cleanup(func() { _ = m.Close() })
	return m, New(m, opts...)
}

func TestPagesFlow(t *testing.T) {
	_, h := newApp(t)
	b := newBrowser(t, h)

	w := b.do(http.MethodGet, profilePath, nil)
	assert.Equal(t, http.StatusSeeOther, w.Code)
	assert.Equal(t, loginPath, w.Header().Get("Location"))

	w = b.do(http.MethodGet, loginPath, nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), `<form method="post" action="/app/login"`)

	b.login("alice")
	w = b.do(http.MethodGet, profilePath, nil)
	require.Equal(t, http.StatusOK, w.Code)
	body := w.Body.String()
	assert.Contains(t, body, `<span id="user">alice</span>`)
	assert.Contains(t, body, "Signed in as alice.", "flash after sign-in")
	assert.Contains(t, body, `class="current"`)
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))

	w = b.do(http.MethodGet, profilePath, nil)
	assert.NotContains(t, w.Body.String(), "Signed in as alice.", "a flash shows once")

	w = b.do(http.MethodGet, loginPath, nil)
	assert.Equal(t, http.StatusSeeOther, w.Code, "the sign-in page sends a signed-in user on")

	w = b.do(http.MethodPost, "/app/counter", url.Values{"csrf_token": {b.token()}})
	require.Equal(t, http.StatusSeeOther, w.Code)
	w = b.do(http.MethodGet, profilePath, nil)
	assert.Contains(t, w.Body.String(), `<strong id="counter">1</strong>`)
	assert.Contains(t, w.Body.String(), "Saved.")

	w = b.do(http.MethodPost, "/app/logout", url.Values{"csrf_token": {b.token()}})
	require.Equal(t, http.StatusSeeOther, w.Code)
	assert.Equal(t, loginPath+"?signed-out=1", w.Header().Get("Location"))
	assert.Nil(t, b.cookie, "logout clears the cookie")
	w = b.do(http.MethodGet, loginPath+"?signed-out=1", nil)
	assert.Contains(t, w.Body.String(), "You are signed out.")
}

func TestPagesStyleMatchesPolicy(t *testing.T) {
	_, h := newApp(t)
	w := newBrowser(t, h).do(http.MethodGet, loginPath, nil)
	body := w.Body.String()
	start := strings.Index(body, "<style>") + len("<style>")
	end := strings.Index(body, "</style>")
	require.Less(t, start, end)
	assert.Contains(t, w.Header().Get("Content-Security-Policy"), "style-src '"+styleHash(body[start:end])+"'")
}

func TestPagesLoginValidation(t *testing.T) {
	_, h := newApp(t)
	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"no user", url.Values{"user": {"  "}, "role": {"user"}}, "Enter a user name."},
		{"long user", url.Values{"user": {strings.Repeat("a", MaxUserLen+1)}, "role": {"user"}}, "at most 64"},
		{"control character", url.Values{"user": {"a\x01b"}, "role": {"user"}}, "at most 64"},
		{"unknown role", url.Values{"user": {"alice"}, "role": {"root"}}, "Choose a role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, h)
			w := b.do(http.MethodPost, loginPath, tc.form)
			assert.Equal(t, http.StatusBadRequest, w.Code)
			assert.Contains(t, w.Body.String(), tc.want)
			assert.Nil(t, b.cookie)
		})
	}
}

func TestPagesCSRF(t *testing.T) {
	_, h := newApp(t)
	b := newBrowser(t, h)
	b.login("alice")
	for _, token := range []string{"", "wrong"} {
		w := b.do(http.MethodPost, "/app/counter", url.Values{"csrf_token": {token}})
		assert.Equal(t, http.StatusForbidden, w.Code)
		assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
		assert.Contains(t, w.Body.String(), `data-status="403"`)
		assert.Contains(t, w.Body.String(), "CSRF token")
	}
	assert.Contains(t, b.do(http.MethodGet, profilePath, nil).Body.String(), `<strong id="counter">0</strong>`)

	// Without a session, a POST is sent to the sign-in page.
	anon := newBrowser(t, h)
	w := anon.do(http.MethodPost, "/app/counter", url.Values{})
	assert.Equal(t, http.StatusSeeOther, w.Code)
	assert.Equal(t, loginPath, w.Header().Get("Location"))
}

func TestPagesLoginCrossOrigin(t *testing.T) {
	_, h := newApp(t)
	b := newBrowser(t, h)
	b.header.Set("Sec-Fetch-Site", "cross-site")
	w := b.do(http.MethodPost, loginPath, url.Values{"user": {"eve"}, "role": {"user"}})
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Contains(t, w.Body.String(), "posted from another site")
	assert.Nil(t, b.cookie)

	b.header.Set("Sec-Fetch-Site", "same-origin")
	b.login("alice")
}

func TestPagesLoginRateLimit(t *testing.T) {
	_, h := newApp(t, WithLoginLimiter(ginsession.NewLimiter(1, time.Minute)))
	newBrowser(t, h).login("alice")
	b := newBrowser(t, h)
	w := b.do(http.MethodPost, loginPath, url.Values{"user": {"bob"}, "role": {"user"}})
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.NotEmpty(t, w.Header().Get("Retry-After"))
	assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	assert.Contains(t, w.Body.String(), "Too many sign-ins")
	assert.Nil(t, b.cookie)
}

func TestPagesDevices(t *testing.T) {
	m, h := newApp(t)
	laptop, phone := newBrowser(t, h), newBrowser(t, h)
	laptop.login("alice")
	phone.login("alice")
	other := newBrowser(t, h)
	other.login("bob")

	infos, err := m.ListUserSessions(t.Context(), "alice")
	require.NoError(t, err)
	require.Len(t, infos, 2)
	phoneHandle := infos[1].Handle
	body := laptop.do(http.MethodGet, profilePath, nil).Body.String()
	assert.Contains(t, body, `<tr data-handle="`+phoneHandle+`">`)
	assert.Contains(t, body, `value="`+phoneHandle+`"`, "a revoke button for the other device")
	assert.Contains(t, body, `<tr data-handle="`+infos[0].Handle+`" class="current">`)

	// bob cannot end alice's sessions: the handle is looked up among his.
	w := other.do(http.MethodPost, "/app/devices/revoke", url.Values{"csrf_token": {other.token()}, "handle": {phoneHandle}})
	require.Equal(t, http.StatusSeeOther, w.Code)
	assert.Contains(t, other.do(http.MethodGet, profilePath, nil).Body.String(), "already signed out")
	assert.Equal(t, http.StatusOK, phone.do(http.MethodGet, profilePath, nil).Code)

	w = laptop.do(http.MethodPost, "/app/devices/revoke", url.Values{"csrf_token": {laptop.token()}, "handle": {infos[0].Handle}})
	require.Equal(t, http.StatusSeeOther, w.Code)
	assert.Contains(t, laptop.do(http.MethodGet, profilePath, nil).Body.String(), "That is this device")

	w = laptop.do(http.MethodPost, "/app/devices/revoke", url.Values{"csrf_token": {laptop.token()}, "handle": {phoneHandle}})
	require.Equal(t, http.StatusSeeOther, w.Code)
	assert.Contains(t, laptop.do(http.MethodGet, profilePath, nil).Body.String(), "Signed out other device.")
	w = phone.do(http.MethodGet, profilePath, nil)
	assert.Equal(t, http.StatusSeeOther, w.Code, "the revoked device is signed out")
	assert.Equal(t, loginPath, w.Header().Get("Location"))

	phone.login("alice")
	w = laptop.do(http.MethodPost, "/app/devices/revoke-all", url.Values{"csrf_token": {laptop.token()}})
	require.Equal(t, http.StatusSeeOther, w.Code)
	assert.Equal(t, loginPath+"?signed-out=everywhere", w.Header().Get("Location"))
	assert.Nil(t, laptop.cookie)
	assert.Equal(t, http.StatusSeeOther, phone.do(http.MethodGet, profilePath, nil).Code)
	assert.Equal(t, http.StatusOK, other.do(http.MethodGet, profilePath, nil).Code, "other users stay signed in")
}

func TestPagesJSONRefusalsStayJSON(t *testing.T) {
	_, h := newApp(t)
	w := newBrowser(t, h).do(http.MethodGet, "/profile", nil)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.JSONEq(t, `{"error":"Not authenticated"}`, w.Body.String())
	assert.Empty(t, w.Header().Get("Content-Security-Policy"))
}

func TestNewPanics(t *testing.T) {
	assert.PanicsWithValue(t, "app.New expects a non-nil Manager", func() { New(nil) })
	m := ginsession.NewManager(nil)
	t.Cleanup(func() { _ = m.Close() })
	assert.PanicsWithValue(t, "app.New: WithLoginLimiter expects a non-nil Limiter", func() { New(m, WithLoginLimiter(nil)) })
}

// jsonDo sends a JSON request with the session cookie, if any, and keeps
// the cookie the response sets.
func (b *browser) jsonDo(method, path, contentType, body string) *httptest.ResponseRecorder {
	b.t.Helper()
	b.header.Set("Content-Type", contentType)
	defer b.header.Del("Content-Type")
	return b.doBody(method, path, body)
}

// doBody is do with a raw body and the headers of b.header.
func (b *browser) doBody(method, path, body string) *httptest.ResponseRecorder {
	b.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range b.header {
		req.Header[k] = v
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.Name == "__Host-session" {
			if c.MaxAge < 0 {
				b.cookie = nil
			} else {
				b.cookie = c
			}
		}
	}
	return w
}

func TestSetData(t *testing.T) {
	_, h := newApp(t)
	b := newBrowser(t, h)

	w := b.jsonDo(http.MethodPost, "/profile/data", "application/json", `{"key":"theme","value":"dark"}`)
	assert.Equal(t, http.StatusUnauthorized, w.Code, "no session")
	assert.JSONEq(t, `{"error":"Not authenticated"}`, w.Body.String())

	w = b.jsonDo(http.MethodPost, "/login", "application/json", `{"userId":"alice","role":"admin"}`)
	require.Equal(t, http.StatusOK, w.Code)
	require.NotNil(t, b.cookie)

	w = b.jsonDo(http.MethodPost, "/profile/data", "application/json", `{"key":"theme","value":"dark"}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.JSONEq(t, `{"data":{"role":"admin","theme":"dark"}}`, w.Body.String())
	w = b.jsonDo(http.MethodPost, "/profile/data", "application/json", `{"key":"theme","value":""}`)
	require.Equal(t, http.StatusOK, w.Code, "an empty value is a value")
	assert.JSONEq(t, `{"data":{"role":"admin","theme":""}}`, w.Body.String())
	w = b.jsonDo(http.MethodPost, "/profile/data", "application/json; charset=utf-8", `{"key":"lang","value":"fr"}`)
	require.Equal(t, http.StatusOK, w.Code, "parameters of the content type are fine")

	w = b.doBody(http.MethodGet, "/profile", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"userId":"alice","data":{"role":"admin","theme":"","lang":"fr"}}`, w.Body.String())

	for _, tc := range []struct {
		name, contentType, body string
		code                    int
	}{
		{"form post", "application/x-www-form-urlencoded", "key=theme&value=light", http.StatusUnsupportedMediaType},
		{"text/plain, as a cross-site form can send", "text/plain", `{"key":"theme","value":"light"}`, http.StatusUnsupportedMediaType},
		{"role is reserved", "application/json", `{"key":"role","value":"admin"}`, http.StatusBadRequest},
		{"ginsession's keys are reserved", "application/json", `{"key":"_flash","value":"x"}`, http.StatusBadRequest},
		{"no key", "application/json", `{"value":"x"}`, http.StatusBadRequest},
		{"no value", "application/json", `{"key":"theme"}`, http.StatusBadRequest},
		{"value not a string", "application/json", `{"key":"theme","value":3}`, http.StatusBadRequest},
		{"key with a space", "application/json", `{"key":"a b","value":"x"}`, http.StatusBadRequest},
		{"key too long", "application/json", `{"key":"` + strings.Repeat("k", MaxKeyLen+1) + `","value":"x"}`, http.StatusBadRequest},
		{"value too long", "application/json", `{"key":"theme","value":"` + strings.Repeat("v", MaxValueLen+1) + `"}`, http.StatusBadRequest},
		{"not JSON", "application/json", `{`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := b.jsonDo(http.MethodPost, "/profile/data", tc.contentType, tc.body)
			assert.Equal(t, tc.code, w.Code, w.Body.String())
		})
	}
	w = b.doBody(http.MethodGet, "/profile", "")
	assert.JSONEq(t, `{"userId":"alice","data":{"role":"admin","theme":"","lang":"fr"}}`, w.Body.String(), "refusals changed nothing")

	w = b.jsonDo(http.MethodPost, "/logout", "application/json", "")
	require.Equal(t, http.StatusOK, w.Code)
}

func TestSetDataKeyLimit(t *testing.T) {
	_, h := newApp(t)
	b := newBrowser(t, h)
	require.Equal(t, http.StatusOK, b.jsonDo(http.MethodPost, "/login", "application/json", `{"userId":"bob"}`).Code)
	// The login's role counts as a key.
	for i := 1; i < MaxDataKeys; i++ {
		w := b.jsonDo(http.MethodPost, "/profile/data", "application/json", `{"key":"k`+strconv.Itoa(i)+`","value":"v"}`)
		require.Equal(t, http.StatusOK, w.Code, "key %d: %s", i, w.Body.String())
	}
	w := b.jsonDo(http.MethodPost, "/profile/data", "application/json", `{"key":"one-more","value":"v"}`)
	assert.Equal(t, http.StatusBadRequest, w.Code, "a new key past the limit")
	w = b.jsonDo(http.MethodPost, "/profile/data", "application/json", `{"key":"k1","value":"changed"}`)
	assert.Equal(t, http.StatusOK, w.Code, "an existing key may still change")
}

// TestSetDataConcurrent checks that concurrent updates of different keys
// of one session all keep their writes (ginsession.Set merges).
func TestSetDataConcurrent(t *testing.T) {
	_, h := newApp(t)
	b := newBrowser(t, h)
	require.Equal(t, http.StatusOK, b.jsonDo(http.MethodPost, "/login", "application/json", `{"userId":"carol","role":"user"}`).Code)
	cookie := b.cookie
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, "/profile/data", strings.NewReader(`{"key":"k`+strconv.Itoa(i)+`","value":"v`+strconv.Itoa(i)+`"}`))
			req.Header.Set("Content-Type", "application/json")
			req.AddCookie(cookie)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			assert.Equal(t, http.StatusOK, w.Code)
		})
	}
	wg.Wait()
	w := b.doBody(http.MethodGet, "/profile", "")
	require.Equal(t, http.StatusOK, w.Code)
	for i := range n {
		assert.Contains(t, w.Body.String(), `"k`+strconv.Itoa(i)+`":"v`+strconv.Itoa(i)+`"`)
	}
}
