package ginsession_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
)

// TestSessionNeverPrintsItsID checks the ordinary ways a handler might
// print a session: none of them shows the bearer token.
func TestSessionNeverPrintsItsID(t *testing.T) {
	e := newEnv(t)
	e.engine.GET("/me", ginsession.Required(), func(c *gin.Context) {
		c.JSON(http.StatusOK, c.MustGet(ginsession.SessionKey))
	})
	cookie := e.login("alice")
	id := idOf(cookie)
	s, err := e.m.GetSession(ctx, id)
	require.NoError(t, err)

	w := e.do(http.MethodGet, "/me", cookie)
	require.Equal(t, http.StatusOK, w.Code)
	assert.NotContains(t, w.Body.String(), id, "c.JSON(200, s)")
	var body map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	assert.Equal(t, s.Handle, body["handle"])
	assert.Equal(t, "alice", body["userId"])

	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("login", "s", s, "value", *s)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("login", "s", s)
	for name, out := range map[string]string{
		"slog text":   text.String(),
		"slog JSON":   js.String(),
		"%v":          fmt.Sprintf("%v", s),
		"%+v":         fmt.Sprintf("%+v", s),
		"%#v":         fmt.Sprintf("%#v", s),
		"%s":          fmt.Sprintf("%s", s), //lint:ignore S1025 the test checks the %s verb
		"value %v":    fmt.Sprintf("%v", *s),
		"value %+v":   fmt.Sprintf("%+v", *s),
		"fmt.Sprint":  fmt.Sprint(s),
		"fmt.Println": fmt.Sprintln(s),
	} {
		assert.NotContains(t, out, id, name)
		assert.Contains(t, out, s.Handle, "%s shows the handle instead", name)
	}
	assert.Contains(t, text.String(), "user=alice")
	var nilSession *ginsession.Session
	assert.Equal(t, "<nil>", fmt.Sprint(nilSession))
}

func TestTypedGetters(t *testing.T) {
	e := newEnv(t)
	when := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	data := map[string]any{
		"s": "text", "b": true, "i": 7, "i64": int64(8), "f": 1.5, "bytes": []byte{1, 2},
		"t": when, "d": time.Minute, "ss": []string{"a", "b"}, "u8": uint8(3), "m": map[string]any{"k": "v"},
	}
	created, err := e.m.CreateSession(ctx, "alice", data)
	require.NoError(t, err)
	s, err := e.m.GetSession(ctx, created.ID)
	require.NoError(t, err)

	assert.Equal(t, "text", s.GetString("s"))
	assert.True(t, s.GetBool("b"))
	assert.Equal(t, 7, s.GetInt("i"))
	assert.Equal(t, int64(8), s.GetInt64("i64"))
	assert.Equal(t, 1.5, s.GetFloat64("f"))
	assert.Equal(t, []byte{1, 2}, s.GetBytes("bytes"))
	assert.Equal(t, when, s.GetTime("t"))
	assert.Equal(t, time.Minute, s.GetDuration("d"))
	assert.Equal(t, []string{"a", "b"}, s.GetStrings("ss"))
	assert.Equal(t, uint8(3), ginsession.Value[uint8](s, "u8"))
	assert.Equal(t, map[string]any{"k": "v"}, ginsession.Value[map[string]any](s, "m"))

	// Missing keys and other types give the zero value.
	assert.Zero(t, s.GetInt("missing"))
	assert.Zero(t, s.GetInt("i64"), "an int64 is not an int")
	assert.Zero(t, s.GetString("i"))
	assert.Nil(t, s.GetBytes("s"))
	assert.True(t, s.GetTime("s").IsZero())
	_, ok := ginsession.Lookup[int64](s, "i")
	assert.False(t, ok)
	v, ok := ginsession.Lookup[int64](s, "i64")
	assert.True(t, ok)
	assert.Equal(t, int64(8), v)

	assert.True(t, s.Exists("s"))
	assert.False(t, s.Exists("missing"))
	assert.Equal(t, []string{"b", "bytes", "d", "f", "i", "i64", "m", "s", "ss", "t", "u8"}, s.Keys())

	// Slices and maps come back as copies: changing them changes nothing
	// stored, though the memory store shares its records with readers.
	s.GetBytes("bytes")[0] = 9
	s.GetStrings("ss")[0] = "z"
	ginsession.Value[map[string]any](s, "m")["k"] = "changed"
	again, err := e.m.GetSession(ctx, created.ID)
	require.NoError(t, err)
	assert.Equal(t, data["bytes"], again.GetBytes("bytes"))
	assert.Equal(t, data["ss"], again.GetStrings("ss"))
	assert.Equal(t, data["m"], again.Data["m"])
}

// TestTypedGettersInAHandler reads typed values the way handlers do,
// through a real engine.
func TestTypedGettersInAHandler(t *testing.T) {
	e := newEnv(t)
	e.engine.POST("/seed", ginsession.Required(), func(c *gin.Context) {
		require.NoError(t, ginsession.Update(c, map[string]any{"visits": 3, "since": t0, "tags": []string{"a"}, "ratio": 0.5}))
		c.Status(http.StatusNoContent)
	})
	e.engine.GET("/typed", ginsession.Required(), func(c *gin.Context) {
		s := ginsession.MustCurrent(c)
		c.JSON(http.StatusOK, gin.H{
			"visits": s.GetInt("visits"), "since": s.GetTime("since").Equal(t0), "tags": s.GetStrings("tags"),
			"ratio": s.GetFloat64("ratio"), "role": s.GetString("role"), "missing": s.GetInt("missing"),
			"wrongType": s.GetString("visits"), "exists": s.Exists("visits"), "keys": s.Keys(),
			"generic": ginsession.Value[int](s, "visits"),
		})
	})
	cookie := e.login("alice")
	require.Equal(t, http.StatusNoContent, e.do(http.MethodPost, "/seed", cookie).Code)
	w := e.do(http.MethodGet, "/typed", cookie)
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"visits":3,"since":true,"tags":["a"],"ratio":0.5,"role":"user","missing":0,
		"wrongType":"","exists":true,"keys":["ratio","role","since","tags","visits"],"generic":3}`, w.Body.String())
}
