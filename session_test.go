package ginsession_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"testing"

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
