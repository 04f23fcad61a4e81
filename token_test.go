package ginsession_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
)

func TestTokenHashKeyChangesStoreKeys(t *testing.T) {
	e1 := newEnv(t)
	e2 := newEnv(t, ginsession.WithTokenHashKey([]byte("server secret")))
	s, err := e1.m.CreateSession(ctx, "alice", nil)
	require.NoError(t, err)
	// Plant the same record under the unkeyed hash in e2's store: e2 must not
	// find it, because it looks up HMAC(key, ID).
	item, err := e1.store.Get(ctx, sha256Key(s.ID))
	require.NoError(t, err)
	require.NoError(t, e2.store.Add(ctx, sha256Key(s.ID), item.Record, item.ExpiresAt))
	_, err = e2.m.GetSession(ctx, s.ID)
	assert.ErrorIs(t, err, ginsession.ErrNotFound)

	s2, err := e2.m.CreateSession(ctx, "bob", nil)
	require.NoError(t, err)
	_, err = e2.store.Get(ctx, sha256Key(s2.ID))
	assert.Error(t, err, "keyed store keys are not the plain SHA-256 of the ID")
	_, err = e2.m.GetSession(ctx, s2.ID)
	assert.NoError(t, err)
}

// TestForgedTokensCostNoStoreCall checks that with a server key the cookie
// carries a MAC of the ID, so that a forged token, well-formed or not, is
// refused without a store call.
func TestForgedTokensCostNoStoreCall(t *testing.T) {
	e := newEnv(t, ginsession.WithTokenHashKey([]byte("server secret")))
	cookie := e.login("alice")
	token := idOf(cookie)
	require.Len(t, token, 43+1+12, "ID, dot, MAC")
	require.Equal(t, byte('.'), token[43])
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/profile", cookie).Code)

	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	random := func() string {
		var b [32]byte
		_, _ = rand.Read(b[:])
		return base64.RawURLEncoding.EncodeToString(b[:])
	}
	for name, forged := range map[string]string{
		"random ID and MAC":        random() + "." + "AAAAAAAAAAAA",
		"the real ID, a wrong MAC": token[:44] + flip(token[44:], 3),
		"another ID, the real MAC": random() + token[43:],
		"bare ID without a MAC":    token[:43],
		"random bare ID":           random(),
		"MAC of the wrong length":  token + "A",
		"a dot in the wrong place": token[:42] + "." + token[43:],
		"MAC with stray tail bits": token[:55] + "_",
	} {
		t.Run(name, func(t *testing.T) {
			before, malformed := e.store.calls(), e.m.Stats().Malformed
			w := e.do(http.MethodGet, "/profile", ginsession.DefaultCookieName+"="+forged)
			assert.Equal(t, http.StatusUnauthorized, w.Code)
			assert.Equal(t, before, e.store.calls(), "no store call for a forged token")
			assert.Equal(t, malformed+1, e.m.Stats().Malformed)
			_, err := e.m.GetSession(ctx, forged)
			assert.ErrorIs(t, err, ginsession.ErrNotFound)
			assert.Equal(t, before, e.store.calls())
		})
	}
	// Every Manager call takes the token as issued.
	s, err := e.m.GetSession(ctx, token)
	require.NoError(t, err)
	assert.Equal(t, token, s.ID)
	require.NoError(t, e.m.UpdateSession(ctx, token, map[string]any{"k": 1}))
	r, err := e.m.RotateSession(ctx, token)
	require.NoError(t, err)
	assert.Len(t, r.ID, 56)
	require.NoError(t, e.m.DeleteSession(ctx, r.ID))
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/profile", ginsession.DefaultCookieName+"="+r.ID).Code)
}

func TestTokensWithoutKeyAreBareIDs(t *testing.T) {
	e := newEnv(t)
	assert.Len(t, idOf(e.login("alice")), 43)
}
