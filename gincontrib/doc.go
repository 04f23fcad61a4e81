// Package gincontrib is a gin-contrib/sessions Store over a
// ginsession.Manager: the migration path for applications written against
// github.com/gin-contrib/sessions. Only the store changes; handlers keep
// calling sessions.Default(c), Get, Set, Delete, Clear, AddFlash, Flashes,
// Options and Save:
//
//	m := ginsession.NewManager(store) // memory, memcached or Redis
//	defer m.Close()
//	r.Use(sessions.Sessions("mysession", gincontrib.NewStore(m)))
//
// The cookie, named after the session ("mysession"), carries only an
// opaque 256-bit ginsession ID, and the store sees only its hash; the
// values live server-side, so no cookie size limit applies to them. Idle
// and absolute timeouts, sliding expiry and atomic merges are the
// Manager's. It is a separate module, so that gin-contrib and gorilla stay
// out of ginsession's dependencies.
//
// # Keys and values
//
// Keys must be strings. Values must be of the types ginsession stores
// (stores.CheckValue): string, bool, []byte, the sized int and uint types,
// float32, float64, time.Time, time.Duration, []string, []int, []any,
// map[string]string and map[string]any of those. Flashes are stored as
// []any under "_flash", as gorilla keeps them, and read back as such from
// every store. There is no gob: structs and other types, gob-registered or
// not, make Save fail with a *stores.UnsupportedTypeError, and a key of
// another type with an *UnsupportedKeyError; either way nothing is
// written. Setting a key to nil removes it.
//
// Values are deep copies of the stored data, so handlers may modify slices
// and maps in place; nothing changes on the server until Save.
//
// # Save
//
// Save writes only what the handler changed: it compares the session's
// Values with the data as loaded (deeply, key by key) and merges the keys
// set and the keys removed into the stored session in one atomic update
// (Manager.UpdateLoaded: a single compare-and-swap on memcached and Redis).
// Two concurrent requests on one session, writing or deleting different
// keys, therefore both keep their changes; a stale request never undoes
// another's. A read costs the store one operation (Manager.Resume), a
// write one more. A new session is created by the first Save that has a
// value to keep; a new session with no values is not stored and gets no
// cookie. Such sessions are anonymous: with ginsession.WithCreateLimiter
// they share the quota of the empty user ID (CreateSession's rule), so
// limit anonymous clients per IP with ginsession.RateLimit instead.
//
// Save never recreates a session that was deleted or expired while the
// request ran: it returns an error matching ginsession.ErrNotFound. When
// the session could not be loaded (the store was down), gin-contrib only
// logs the error and hands the handler an empty session; Save then fails
// with ErrLoadFailed and sets no cookie, so the user's cookie and session
// survive the outage. An unknown, expired or malformed cookie gives a new
// empty session, whose first Save creates a fresh ID (an ID is never
// adopted); nothing is logged (Manager.Stats counts them).
//
// gin-contrib calls Save only for sessions the handler changed; save
// before writing the response body, as gin-contrib requires
// (gin-contrib/sessions#6). A Save that would issue a new ID after the
// headers went out fails with ErrHeadersWritten.
//
// # Cookie options
//
// The cookie's attributes come from gin-contrib's Options, as in every
// gin-contrib store: the store's (store.Options), replaced as a whole by
// the session's (session.Options), used verbatim. The Manager's cookie
// options (WithCookieName, WithCookieSecure, ...) are ignored. A store
// whose Options method is never called uses ginsession's secure defaults:
// Path=/, HttpOnly, Secure, SameSite=Lax and a browser-session cookie.
// Calling Options replaces them all, so set every attribute you want:
//
//	store.Options(sessions.Options{Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
//
// Save refuses (ErrCookieOptions, nothing written) a __Host- name without
// Secure, with a Path other than "/" or with a Domain, a __Secure- name
// without Secure (both prefixes in any case), and SameSite=None without
// Secure. Every Save sets Cache-Control: no-store.
//
// MaxAge is about the cookie only:
//   - MaxAge < 0 ends the session: Save deletes it on the server
//     (Manager.DeleteSession) and expires the cookie. This is logout.
//     Clear only empties the session's data.
//   - MaxAge == 0 (the default) sends a browser-session cookie.
//   - MaxAge > 0 sends a persistent cookie, its Max-Age capped at the
//     session's absolute deadline.
//
// MaxAge never extends the session's life on the server, which the
// Manager's idle and absolute timeouts decide (WithIdleTimeout,
// WithAbsoluteTimeout), unlike gorilla's server-side stores, which use
// MaxAge as their TTL.
//
// # IDs, login and rotation
//
// Session.ID() (gorilla's Session.ID) returns the session's public Handle,
// a UUID stable across rotations, safe to log or show; the bearer token
// stays in the cookie. It is "" for a session not stored yet.
//
// Login(c, name, userID) replaces the request's session with a new one for
// the user, carrying its values, and deletes the old one (protection
// against session fixation, and the session enters the user's index).
// Rotate(c, name) gives the session a new ID and keeps its data.
//
// The Manager's automatic renewal (WithRenewalInterval) happens when a
// session is loaded. gin-contrib gives the store no response writer then,
// so the new cookie goes out with the request's next Save, unless the
// optional Renewals middleware is installed, which lets the load set it at
// once; use Renewals with WithRenewalInterval.
//
// SessionsMany and SessionsManyStores work: each name is a session of its
// own, with its own cookie.
//
// The store returned by NewStore is safe for concurrent use.
package gincontrib
