package ginsession_test

import (
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
