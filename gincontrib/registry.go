package gincontrib

import (
	"context"
	"net/http"
	"sync"

	gsessions "github.com/gorilla/sessions"

	"github.com/securestack/ginsession"
)

// registryKey is the request-context key of a store's registry.
type registryKey struct{ st *store }

// registry holds a request's sessions of one store, by name. It lives in
// the request's context, installed by overwriting the request in place
// (gorilla's own trick), so that gin-contrib, which keeps the
// *http.Request it was given, passes it to Save as well. Its methods are
// safe for concurrent use; the entries are used by the request's handlers
// only, which gin-contrib does not synchronise either.
type registry struct {
	mu      sync.Mutex
	entries map[string]*entry
}

// entry is what the store knows of one session of a request.
type entry struct {
	// gs is the session handed to gin-contrib.
	gs *gsessions.Session
	// loaded is the live ginsession session, or nil for a session that
	// is new (no cookie, an unknown one, or ended by this request).
	loaded *ginsession.Session
	// view is the data as the handler saw it when the session was loaded
	// or last saved, string-keyed and never modified: Save compares the
	// handler's Values with it.
	view map[string]any
	// token is the ID the request's cookie carried, if any.
	token string
	// loadErr is the error that kept the session from loading; err is
	// the same, as returned by Get.
	loadErr, err error
}

// adopt makes s the entry's live session, with view as the handler's
// view of its data.
func (e *entry) adopt(s *ginsession.Session, view map[string]any) {
	e.loaded, e.view = s, view
	e.loadErr, e.err = nil, nil
	e.gs.ID = s.Handle
	e.gs.IsNew = false
}

// reset makes the entry's session new and empty, after it ended.
func (e *entry) reset() {
	e.loaded, e.view, e.token = nil, nil, ""
	e.loadErr, e.err = nil, nil
	clear(e.gs.Values)
	e.gs.ID = ""
	e.gs.IsNew = true
}

// registry returns the request's registry of st, installing an empty one
// in r's context on first use.
func (st *store) registry(r *http.Request) *registry {
	key := registryKey{st}
	if reg, ok := r.Context().Value(key).(*registry); ok {
		return reg
	}
	reg := &registry{entries: make(map[string]*entry)}
	*r = *r.WithContext(context.WithValue(r.Context(), key, reg))
	return reg
}

func (reg *registry) get(name string) *entry {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return reg.entries[name]
}

func (reg *registry) put(name string, e *entry) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	reg.entries[name] = e
}
