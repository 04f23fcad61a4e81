package gincontrib

import (
	"errors"
	"fmt"
)

// Errors returned by Save (through gin-contrib's Session.Save), Login and
// Rotate, matched with errors.Is. Errors of the Manager pass through
// wrapped, so errors.Is also matches ginsession.ErrNotFound (a session
// revoked or expired while the request ran), ginsession.ErrRateLimited and
// stores.ErrUnavailable, and errors.As finds a *stores.UnsupportedTypeError.
var (
	// ErrLoadFailed is returned by Save when loading the session failed
	// (the store was down or timed out). gin-contrib/sessions only logs
	// the load error and hands the handler an empty session; saving that
	// would issue a new session over the user's cookie and log them out,
	// so Save writes nothing and sets no cookie. The load error is wrapped
	// too.
	ErrLoadFailed = errors.New("gincontrib: the session could not be loaded; nothing was saved")

	// ErrCookieOptions is returned by Save when the cookie's name and
	// options do not make a cookie browsers accept: a __Host- name (in any
	// case) without Secure, with a Path other than "/" or with a Domain; a
	// __Secure- name without Secure; SameSite=None without Secure; or a
	// name, Path or Domain net/http refuses. Nothing is written.
	ErrCookieOptions = errors.New("gincontrib: invalid cookie options")

	// ErrHeadersWritten is returned by Save, Login and Rotate when the
	// response headers were already sent and the operation would issue a
	// new session ID: its cookie could not reach the browser, so nothing is
	// written. Save before writing the body (gin-contrib/sessions#6).
	ErrHeadersWritten = errors.New("gincontrib: response already written; cannot set the session cookie")

	// ErrNotLoaded is returned by Save for a *sessions.Session that this
	// store did not load during this request (one built with
	// gorilla's NewSession, or kept from another request).
	ErrNotLoaded = errors.New("gincontrib: session not loaded by this store in this request")
)

// UnsupportedKeyError is returned by Save when the session's Values hold a
// key that is not a string. ginsession's data is keyed by strings only
// (gorilla's Values[42] works with gob-encoding stores, not here). Nothing
// is written.
type UnsupportedKeyError struct {
	// Type is the offending key's Go type, as printed by %T.
	Type string
}

func (e *UnsupportedKeyError) Error() string {
	return fmt.Sprintf("gincontrib: session key of type %s: only string keys are supported", e.Type)
}
