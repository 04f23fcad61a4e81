package gincontrib

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-contrib/sessions"
	gsessions "github.com/gorilla/sessions"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/stores"
)

// Option configures a store made by NewStore.
type Option func(*config)

type config struct {
	now func() time.Time
}

// WithClock sets the function the store reads the time from to cap a
// cookie's Max-Age at the session's absolute deadline. Give it the same
// clock as the Manager's ginsession.WithClock in tests that advance a fake
// clock. The default is time.Now; nil also means time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// store is the sessions.Store over a Manager. It is safe for concurrent
// use; the state of one request lives in that request's registry.
type store struct {
	m   *ginsession.Manager
	now func() time.Time
	// opts are the cookie options new sessions start with (Options).
	opts atomic.Pointer[gsessions.Options]
	// pending holds the instruction of a Login or Rotate call for the
	// *gsessions.Session it is saving, for the duration of that call.
	pending sync.Map
}

var _ sessions.Store = (*store)(nil)

// NewStore returns a gin-contrib/sessions Store that keeps sessions in m:
//
//	r.Use(sessions.Sessions("mysession", gincontrib.NewStore(m)))
//
// The cookie carries only a ginsession ID; the values live in m's store.
// The cookie's name is the session's name given to sessions.Sessions (or
// SessionsMany); its attributes come from the store's and the session's
// Options (see the package doc), never from the Manager's cookie options.
// NewStore panics if m is nil.
func NewStore(m *ginsession.Manager, opts ...Option) sessions.Store {
	if m == nil {
		panic("gincontrib.NewStore expects a non-nil *ginsession.Manager")
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	st := &store{m: m, now: cfg.now}
	o := defaultOptions()
	st.opts.Store(&o)
	return st
}

// Options sets the cookie options that sessions loaded from now on start
// with, replacing the whole set, as gin-contrib's stores do: the fields
// are used verbatim (an empty Path sends no Path attribute, a false
// HttpOnly none either). Without a call, the options are ginsession's
// secure defaults: Path=/, HttpOnly, Secure, SameSite=Lax, and a
// browser-session cookie (MaxAge 0).
func (st *store) Options(o sessions.Options) {
	st.opts.Store(o.ToGorillaOptions())
}

// Get returns the request's session named name, loading it on the first
// call of the request (gin-contrib calls Get once, when a handler first
// uses the session). On a load error it returns an empty session and the
// error, which gin-contrib logs; Save then fails with ErrLoadFailed.
func (st *store) Get(r *http.Request, name string) (*gsessions.Session, error) {
	reg := st.registry(r)
	if e := reg.get(name); e != nil {
		return e.gs, e.err
	}
	return st.New(r, name)
}

// New loads the session named name from the request's cookie, or starts a
// new one, and makes it the request's session of that name (replacing one
// loaded before). The cookie's ID is checked by the Manager's Resume: an
// unknown, expired or malformed ID gives a new, empty session (the ID is
// never adopted) and no error. Resume also extends the idle deadline when
// due, and renews the ID when WithRenewalInterval says so; the new cookie
// is then set at once if the Renewals middleware gave the store the
// response writer, and by the next Save otherwise.
func (st *store) New(r *http.Request, name string) (*gsessions.Session, error) {
	gs := gsessions.NewSession(st, name)
	o := *st.opts.Load()
	gs.Options = &o
	gs.IsNew = true
	e := &entry{gs: gs}
	defer st.registry(r).put(name, e)

	c, err := r.Cookie(name)
	if err != nil || c.Value == "" {
		return gs, nil
	}
	s, err := st.m.Resume(r.Context(), c.Value)
	switch {
	case errors.Is(err, ginsession.ErrNotFound):
		return gs, nil
	case err != nil:
		e.token = c.Value
		e.loadErr = err
		e.err = fmt.Errorf("gincontrib: load session %q: %w", name, err)
		return gs, e.err
	}
	e.token = c.Value
	e.adopt(s, s.Data)
	// The handler gets deep copies: gorilla's AddFlash appends to the
	// []any under "_flash", and handlers modify slices and maps in
	// place, while s.Data is shared with the store.
	for k, v := range s.Data {
		gs.Values[k] = stores.CloneValue(v)
	}
	if s.ID != c.Value {
		// Renewed by Resume: the new ID must reach the browser.
		if w, ok := r.Context().Value(writerKey{}).(http.ResponseWriter); ok &&
			!headersWritten(w) && o.MaxAge >= 0 && checkCookie(name, &o) == nil {
			noStore(w)
			setCookie(w, name, s.ID, &o, s.AbsoluteExpiresAt, st.now())
		}
	}
	return gs, nil
}

// Save writes the changes the handler made to the session's Values since
// it was loaded, and sets the session cookie; see the package doc. It is
// reached through gin-contrib's Session.Save, which calls it only when the
// handler changed something (Set, Delete, Clear, AddFlash, Flashes,
// Options).
func (st *store) Save(r *http.Request, w http.ResponseWriter, gs *gsessions.Session) error {
	noStore(w)
	e := st.registry(r).get(gs.Name())
	if e == nil || e.gs != gs {
		return fmt.Errorf("gincontrib: save session %q: %w", gs.Name(), ErrNotLoaded)
	}
	var in *instruction
	if v, ok := st.pending.Load(gs); ok {
		in = v.(*instruction)
		in.reached = true
	}
	err := st.save(r.Context(), w, e, in)
	if err != nil {
		return fmt.Errorf("gincontrib: save session %q: %w", gs.Name(), err)
	}
	return nil
}

// save is Save for the request's entry e; in is the instruction of a
// Login or Rotate in progress, or nil.
func (st *store) save(ctx context.Context, w http.ResponseWriter, e *entry, in *instruction) error {
	gs := e.gs
	o := st.opts.Load()
	if gs.Options != nil {
		o = gs.Options
	}
	name := gs.Name()
	if err := checkCookie(name, o); err != nil {
		return err
	}
	data, changes, err := diff(gs.Values, e.view)
	if err != nil {
		return err
	}
	switch {
	case in != nil && o.MaxAge < 0:
		return fmt.Errorf("gincontrib: login or rotate: the session's Options have MaxAge %d < 0, which ends the session", o.MaxAge)
	case in != nil && in.login:
		return st.login(ctx, w, e, o, data, in.userID)
	case o.MaxAge < 0:
		return st.end(ctx, w, e, o)
	case e.loadErr != nil:
		return fmt.Errorf("%w: %w", ErrLoadFailed, e.loadErr)
	case in != nil: // rotate
		return st.rotate(ctx, w, e, o, changes)
	case e.loaded == nil:
		if len(data) == 0 {
			// Nothing to keep: a session is created by its first value.
			return nil
		}
		if headersWritten(w) {
			return ErrHeadersWritten
		}
		s, err := st.m.CreateSession(ctx, "", data)
		if err != nil {
			return err
		}
		e.adopt(s, s.Data)
	case len(changes) > 0:
		next, err := st.m.UpdateLoaded(ctx, e.loaded, changes)
		if err != nil {
			return err
		}
		e.adopt(next, mergeView(e.view, changes))
	}
	st.sendCookie(w, e, o)
	return nil
}

// login replaces the request's session with a new one for userID holding
// data; see Login.
func (st *store) login(ctx context.Context, w http.ResponseWriter, e *entry, o *gsessions.Options, data map[string]any, userID string) error {
	switch {
	case e.loadErr != nil:
		// The old session cannot be ended, so no new one either.
		return fmt.Errorf("%w: %w", ErrLoadFailed, e.loadErr)
	case headersWritten(w):
		return ErrHeadersWritten
	}
	old := e.loaded
	// Replace asks the creation limiter first (a refused login changes
	// nothing), then ends the old session and creates the new one.
	s, err := st.m.Replace(ctx, old, userID, data)
	if err != nil {
		if old != nil && !errors.Is(err, ginsession.ErrRateLimited) {
			// The old session is gone: so is its cookie.
			e.reset()
			expired := *o
			expired.MaxAge = -1
			setCookie(w, e.gs.Name(), "", &expired, time.Time{}, st.now())
		}
		return err
	}
	e.adopt(s, s.Data)
	st.sendCookie(w, e, o)
	return nil
}

// rotate writes the handler's changes, then gives the session a new ID;
// see Rotate.
func (st *store) rotate(ctx context.Context, w http.ResponseWriter, e *entry, o *gsessions.Options, changes map[string]any) error {
	if e.loaded == nil {
		return ginsession.ErrNoSession
	}
	if headersWritten(w) {
		return ErrHeadersWritten
	}
	if len(changes) > 0 {
		next, err := st.m.UpdateLoaded(ctx, e.loaded, changes)
		if err != nil {
			return err
		}
		e.adopt(next, mergeView(e.view, changes))
	}
	s, err := st.m.RotateSession(ctx, e.loaded.ID)
	if err != nil {
		return err
	}
	e.adopt(s, e.view)
	st.sendCookie(w, e, o)
	return nil
}

// end deletes the session on the server, if the request carried one, and
// expires its cookie; the handler's session is then new and empty. The
// deletion is tried even when the load failed, with the cookie's ID, so a
// logout works as soon as the store answers.
func (st *store) end(ctx context.Context, w http.ResponseWriter, e *entry, o *gsessions.Options) error {
	id := e.token
	if e.loaded != nil {
		id = e.loaded.ID
	}
	switch {
	case e.loaded != nil:
		// From the version loaded: no second read.
		if err := st.m.DeleteLoaded(ctx, e.loaded); err != nil {
			return err
		}
	case id != "" && e.loadErr != nil:
		if err := st.m.DeleteSession(ctx, id); err != nil {
			return err
		}
	}
	e.reset()
	setCookie(w, e.gs.Name(), "", o, time.Time{}, st.now())
	return nil
}

// sendCookie sets the cookie of the live session e.loaded.
func (st *store) sendCookie(w http.ResponseWriter, e *entry, o *gsessions.Options) {
	setCookie(w, e.gs.Name(), e.loaded.ID, o, e.loaded.AbsoluteExpiresAt, st.now())
}

// diff checks the handler's values and compares them with the snapshot
// taken at load. It returns data, every value as a map with string keys
// (for a new session), and changes, what differs from the snapshot: the
// keys set to a new value (compared deeply) and, with a nil value, the
// keys removed. A nil value in values counts as removed. It fails with an
// *UnsupportedKeyError or a *stores.UnsupportedTypeError.
func diff(values map[any]any, snap map[string]any) (data, changes map[string]any, err error) {
	data = make(map[string]any, len(values))
	changes = make(map[string]any)
	for k, v := range values {
		key, ok := k.(string)
		if !ok {
			return nil, nil, &UnsupportedKeyError{Type: fmt.Sprintf("%T", k)}
		}
		if v == nil {
			continue
		}
		if err := stores.CheckValue(v); err != nil {
			var ute *stores.UnsupportedTypeError
			if errors.As(err, &ute) {
				ute.Key = key
			}
			return nil, nil, err
		}
		data[key] = v
		if old, ok := snap[key]; !ok || !reflect.DeepEqual(old, v) {
			changes[key] = v
		}
	}
	for k := range snap {
		if _, ok := data[k]; !ok {
			changes[k] = nil
		}
	}
	return data, changes, nil
}

// mergeView returns the handler's view of the data after changes were
// written: the snapshot with the changes applied, deep-copied so that the
// handler's later in-place changes to its Values do not reach it.
func mergeView(snap, changes map[string]any) map[string]any {
	next, err := stores.MergeData(snap, changes)
	if err != nil {
		// Unreachable: diff checked every value.
		panic("gincontrib: " + err.Error())
	}
	return next
}
