package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/_example/app"
	"github.com/securestack/ginsession/internal/memcachedtest"
	"github.com/securestack/ginsession/internal/redistest"
)

func do(t *testing.T, h http.Handler, method, path, body string, cookies []*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestExampleFlow(t *testing.T) {
	gin.SetMode(gin.TestMode)
	m := ginsession.NewManager(nil)
	t.Cleanup(func() { _ = m.Close() })
	exampleFlow(t, app.New(m))
}

// TestExampleFlowMemcached runs the same flow with the store that the
// -memcached flag selects, on a real memcached.
func TestExampleFlowMemcached(t *testing.T) {
	gin.SetMode(gin.TestMode)
	srv := memcachedtest.Start(t)
	store, name, err := openStore(storeConfig{Memcached: srv.Addr})
	require.NoError(t, err)
	assert.Equal(t, "memcached "+srv.Addr, name)
	require.NotNil(t, store)
	t.Cleanup(func() { _ = store.Close() })
	m := ginsession.NewManager(store)
	t.Cleanup(func() { _ = m.Close() })
	exampleFlow(t, app.New(m))
	assert.Positive(t, srv.Stats(t)["cmd_get"], "sessions went through memcached")
}

// TestExampleFlowRedis runs the same flow with the store that the -redis
// flag selects, on a real Redis.
func TestExampleFlowRedis(t *testing.T) {
	gin.SetMode(gin.TestMode)
	srv := redistest.Start(t)
	store, name, err := openStore(storeConfig{Redis: srv.Addr})
	require.NoError(t, err)
	assert.Equal(t, "redis "+srv.Addr, name)
	require.NotNil(t, store)
	t.Cleanup(func() { _ = store.Close() })
	m := ginsession.NewManager(store)
	t.Cleanup(func() { _ = m.Close() })
	exampleFlow(t, app.New(m))
	assert.NotEmpty(t, srv.Dump(t), "sessions went through Redis")
}

func TestExampleStoreFlags(t *testing.T) {
	_, _, err := openStore(storeConfig{Memcached: "127.0.0.1:1", Redis: "127.0.0.1:1"})
	assert.Error(t, err, "one store at a time")
	_, _, err = openStore(storeConfig{Redis: "127.0.0.1:1"})
	assert.Error(t, err, "an unreachable Redis is reported at start-up")
}

func exampleFlow(t *testing.T, r http.Handler) {
	t.Helper()

	w := do(t, r, http.MethodGet, "/profile", "", nil)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.JSONEq(t, `{"error":"Not authenticated"}`, w.Body.String())

	w = do(t, r, http.MethodPost, "/login", `{"userId":"alice","role":"admin"}`, nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"message":"Logged in successfully"}`, w.Body.String())
	cookies := w.Result().Cookies()
	require.Len(t, cookies, 1)

	w = do(t, r, http.MethodGet, "/profile", "", cookies)
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"userId":"alice","data":{"role":"admin"}}`, w.Body.String())

	w = do(t, r, http.MethodPost, "/logout", "", cookies)
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"message":"Logged out successfully"}`, w.Body.String())

	w = do(t, r, http.MethodGet, "/profile", "", cookies)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	w = do(t, r, http.MethodPost, "/logout", "", cookies)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
}

func TestExampleLoginNeedsUserID(t *testing.T) {
	gin.SetMode(gin.TestMode)
	m := ginsession.NewManager(nil)
	t.Cleanup(func() { _ = m.Close() })
	w := do(t, app.New(m), http.MethodPost, "/login", `{"role":"admin"}`, nil)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Empty(t, w.Result().Cookies())
}
