package app

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/securestack/ginsession"
)

//go:embed templates/*.html templates/style.css
var files embed.FS

// style is the pages' stylesheet, inlined in each page; the
// Content-Security-Policy allows exactly this text by its hash.
var style = template.CSS(must(files.ReadFile("templates/style.css")))

var contentSecurityPolicy = "default-src 'none'; style-src '" + styleHash(string(style)) +
	"'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func styleHash(css string) string {
	sum := sha256.Sum256([]byte(css))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// templates holds one template set per page, each the layout plus the
// page's blocks.
var templates = map[string]*template.Template{
	"login":   page("login.html"),
	"profile": page("profile.html"),
	"refused": page("refused.html"),
}

var funcs = template.FuncMap{
	// clock formats a time for people, in UTC.
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05 MST, 2 Jan") },
	// machine formats a time for the datetime attribute.
	"machine": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	// short abbreviates a session handle for display.
	"short": func(h string) string { return h[:min(8, len(h))] },
	"value": func(v any) string { return fmt.Sprint(v) },
}

func page(name string) *template.Template {
	return template.Must(template.New(name).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+name))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// base is what every page shows: its style, its flash messages and the
// CSRF token of its forms.
type base struct {
	Style   template.CSS
	CSRF    string
	Flashes []string
}

func (b *base) init(c *gin.Context) {
	b.Style = style
	b.CSRF = ginsession.CSRFToken(c)
}

type loginView struct {
	base
	Notice, Error string
	User, Role    string
	Remember      bool
}

// Roles lists the roles of the form's select.
func (*loginView) Roles() []string { return Roles }

type profileView struct {
	base
	User, Role     string
	Handle         string
	Counter        int
	Data           []entry
	Idle, Absolute time.Time
	Persistent     bool
	Devices        []device
	Now            time.Time
}

// Until returns the time from the page's rendering to t, to the second.
func (v *profileView) Until(t time.Time) time.Duration { return t.Sub(v.Now).Round(time.Second) }

type entry struct {
	Key   string
	Value any
}

type device struct {
	ginsession.SessionInfo
	Current bool
}

type refusedView struct {
	base
	Status         int
	Title, Message string
	SignedIn       bool
}

// view is implemented by the page views.
type view interface{ init(c *gin.Context) }

// render writes page name with v. It renders into a buffer first, so that
// a template error is a 500, not half a page.
func (p *pages) render(c *gin.Context, status int, name string, v view) {
	v.init(c)
	var buf bytes.Buffer
	if err := templates[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		_ = c.Error(err)
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// refuse answers with a refusal page and aborts the handler chain.
func (p *pages) refuse(c *gin.Context, status int, title, msg string) {
	_, signedIn := ginsession.Current(c)
	p.render(c, status, "refused", &refusedView{Status: status, Title: title, Message: msg, SignedIn: signedIn})
	c.Abort()
}

// refusals are the pages that replace ginsession's JSON refusals under
// /app/, by status.
var refusals = map[int]struct{ Title, Message string }{
	http.StatusForbidden:          {"Refused", "This form did not carry this session's CSRF token: it was not sent from a page of this site, or the page is stale. Nothing was changed."},
	http.StatusTooManyRequests:    {"Too many sign-ins", "Too many sign-ins from your address. Try again in a minute."},
	http.StatusServiceUnavailable: {"Unavailable", "The session store is not answering. Try again shortly."},
}

// pageMiddleware sets the headers of every response under /app/: no
// caching (the pages show private data, and their forms the session's CSRF
// token), and a Content-Security-Policy that allows the page's own inline
// style, forms posting to this origin only, and no framing. It also turns
// the JSON refusals of ginsession's middleware (ginsession.CSRF's 403,
// ginsession.RateLimit's 429, the session middleware's 503) into HTML
// pages, keeping their status and headers (Retry-After). The JSON routes
// keep their JSON.
func pageMiddleware(c *gin.Context) {
	if !strings.HasPrefix(c.Request.URL.Path, pagePrefix) {
		return
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	c.Writer = &refusalWriter{ResponseWriter: c.Writer, c: c}
}

// refusalWriter replaces a JSON body sent with a status of refusals by the
// status's HTML page.
type refusalWriter struct {
	gin.ResponseWriter
	c        *gin.Context
	replaced bool // the body is the refusal page: drop the JSON
}

func (w *refusalWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	r, ok := refusals[w.Status()]
	if !ok || w.Written() || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		return w.ResponseWriter.Write(b)
	}
	w.replaced = true
	_, signedIn := ginsession.Current(w.c)
	v := &refusedView{Status: w.Status(), Title: r.Title, Message: r.Message, SignedIn: signedIn}
	v.init(w.c)
	var buf bytes.Buffer
	if err := templates["refused"].ExecuteTemplate(&buf, "layout", v); err != nil {
		return 0, err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if _, err := w.ResponseWriter.Write(buf.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (w *refusalWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }
