package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// signIn signs in through the form at base, as a person would: type the
// user name, choose the role, tick "remember me" or not, click. It checks
// that the browser lands on the profile.
func signIn(t *testing.T, tb *tab, base, user, role string, remember bool) {
	t.Helper()
	tb.open(base + "/app/login")
	tb.do("fill in the sign-in form",
		chromedp.SendKeys(chromedp.CSS(`input[name="user"]`), user),
		chromedp.SetValue(chromedp.CSS(`select[name="role"]`), role),
	)
	if remember {
		tb.do("tick remember me", chromedp.Click(chromedp.CSS(`input[name="remember"]`)))
	}
	resp := tb.click(`form[action="/app/login"] button`)
	require.EqualValues(t, http.StatusOK, resp.Status, "%s: sign-in ends on a page", tb.name)
	require.Equal(t, base+"/app/profile", resp.URL, "%s: sign-in ends on the profile", tb.name)
	require.Equal(t, user, tb.text("#user"), "%s: the profile shows the user", tb.name)
}

// flashes returns the texts of the page's flash messages.
func flashes(tb *tab) []string {
	tb.t.Helper()
	return get(tb, "flash messages", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll(".flash"), e => e.textContent.trim())`))
}

// Step 1: sign in through the form; the profile shows the user, a reload
// keeps the session, the counter counts, and each flash shows once.
func TestSignInCounterAndFlash(t *testing.T) {
	srv := serveApp(t, newManager(t, nil))
	tb := newBrowser(t).device(t, "laptop")

	mark := srv.Log.mark()
	resp := tb.open(srv.URL + "/app/profile")
	assert.Equal(t, http.StatusSeeOther, srv.Log.next(t, mark, http.MethodGet, "/app/profile").Status,
		"without a session the profile redirects")
	assert.Equal(t, srv.URL+"/app/login", resp.URL)
	assert.Equal(t, "Sign in", tb.text("h1"))

	signIn(t, tb, srv.URL, "alice", "admin", false)
	assert.Equal(t, "admin", tb.text("#role"))
	assert.Equal(t, []string{"Signed in as alice."}, flashes(tb))

	tb.do("reload", chromedp.Reload())
	assert.Equal(t, "alice", tb.text("#user"), "still signed in after a reload")
	assert.Empty(t, flashes(tb), "a flash shows once")
	assert.Equal(t, "0", tb.text("#counter"))

	for _, want := range []string{"1", "2"} {
		resp = tb.click("#counter-form button")
		assert.EqualValues(t, http.StatusOK, resp.Status)
		assert.Equal(t, srv.URL+"/app/profile", resp.URL, "POST-redirect-GET")
		assert.Equal(t, want, tb.text("#counter"))
		assert.Equal(t, []string{"Saved."}, flashes(tb))
	}
	tb.do("reload", chromedp.Reload())
	assert.Equal(t, "2", tb.text("#counter"))
	assert.Empty(t, flashes(tb), "the flash is gone on reload")
	for _, r := range srv.Log.all(http.MethodPost, "/app/counter") {
		assert.Equal(t, http.StatusSeeOther, r.Status)
	}
}

// Step 2: the session cookie as the browser stores it: hidden from
// scripts (HttpOnly), __Host- name, Secure, SameSite=Lax, Path=/, no
// Domain; a session cookie without "remember me", and with it a cookie
// that expires no later than the session's absolute deadline.
func TestSessionCookie(t *testing.T) {
	srv := serveApp(t, newManager(t, nil))
	b := newBrowser(t)

	for _, tc := range []struct {
		name     string
		remember bool
	}{
		{"browser session", false},
		{"remember me", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := b.device(t, tc.name)
			signIn(t, tb, srv.URL, "alice", "user", tc.remember)

			c := tb.cookie(srv.URL, cookieName)
			require.NotNil(t, c, "the browser stored the session cookie")
			assert.True(t, c.HTTPOnly, "HttpOnly")
			assert.True(t, c.Secure, "Secure")
			assert.Equal(t, network.CookieSameSiteLax, c.SameSite)
			assert.Equal(t, "/", c.Path)
			assert.Equal(t, "127.0.0.1", c.Domain, "host-only: no Domain attribute")

			// A cookie that scripts may read shows in document.cookie; the
			// session cookie does not.
			cookies := get(tb, "document.cookie", chromedp.Evaluate[string](
				`document.cookie = "probe=1; path=/"; document.cookie`))
			assert.Equal(t, "probe=1", cookies, "document.cookie shows the probe only")

			abs, err := time.Parse(time.RFC3339Nano, tb.attr("#absolute-deadline", "datetime"))
			require.NoError(t, err)
			if !tc.remember {
				assert.True(t, c.Session, "a session cookie")
				assert.LessOrEqual(t, c.Expires, 0.0, "no expiry")
				assert.Equal(t, "ends with the browser session", tb.text("#cookie-kind"))
				return
			}
			assert.False(t, c.Session, "a persistent cookie")
			expires := time.Unix(0, int64(c.Expires*float64(time.Second)))
			// The browser counts Max-Age from the response's arrival, a
			// few milliseconds after the server computed it.
			assert.False(t, expires.After(abs.Add(time.Second)), "expires %v, after the absolute deadline %v", expires, abs)
			assert.WithinDuration(t, abs, expires, 5*time.Second, "lasts until the absolute deadline")
			assert.Equal(t, "remembered on this device until the absolute deadline", tb.text("#cookie-kind"))
		})
	}
}

// Step 3: a form posted to the app from a page of another origin, without
// the CSRF token, is refused and changes nothing. Two defences are at work,
// and each case names the one that acted:
//   - SameSite=Lax: the browser keeps the cookie off a POST from another
//     site (localhost is another site than 127.0.0.1), so the request
//     arrives without a session and is sent to the sign-in page;
//   - the synchronizer token (ginsession.CSRF): a page on another port of
//     127.0.0.1 is another origin but the same site, so the browser sends
//     the cookie, and only the missing token stops the request (403).
//
// A same-origin post with a tampered token checks the comparison itself,
// and a forged sign-in (login CSRF, where there is no session to carry a
// token) is refused by the sign-in form's origin check.
func TestCrossOriginPost(t *testing.T) {
	srv := serveApp(t, newManager(t, nil))
	evil := serveForgery(t)
	tb := newBrowser(t).device(t, "victim")
	signIn(t, tb, srv.URL, "alice", "admin", false)
	tb.click("#counter-form button")
	require.Equal(t, "1", tb.text("#counter"))
	session := tb.cookie(srv.URL, cookieName)
	require.NotNil(t, session)

	for _, tc := range []struct {
		name        string
		defence     string
		host        string // of the forgery page; "" for a same-origin post with a wrong token
		path        string
		fields      url.Values
		wantSession bool // the request arrived with the session cookie
		wantStatus  int
		wantText    string
	}{
		{
			name: "cross-site", defence: "SameSite=Lax",
			host: "localhost", path: "/app/counter",
			wantSession: false, wantStatus: http.StatusSeeOther,
		},
		{
			name: "same-site other origin", defence: "CSRF token (missing)",
			host: "127.0.0.1", path: "/app/counter",
			wantSession: true, wantStatus: http.StatusForbidden, wantText: "CSRF token",
		},
		{
			name: "same origin wrong token", defence: "CSRF token (wrong)",
			path:        "/app/counter",
			wantSession: true, wantStatus: http.StatusForbidden, wantText: "CSRF token",
		},
		{
			name: "forged sign-in", defence: "origin check of the sign-in form",
			host: "127.0.0.1", path: "/app/login", fields: url.Values{"user": {"mallory"}, "role": {"admin"}},
			wantSession: true, wantStatus: http.StatusForbidden, wantText: "posted from another site",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := tb.in(t)
			mark := srv.Log.mark()
			if tc.host == "" {
				tb.open(srv.URL + "/app/profile")
				tb.do("tamper with the token", chromedp.SetAttributeValue(
					chromedp.CSS(`#counter-form input[name="csrf_token"]`), "value", "wrong"))
				resp := tb.click("#counter-form button")
				assert.EqualValues(t, tc.wantStatus, resp.Status, "the browser got the refusal")
			} else {
				tb.startNavigation(forgeryURL(evil, tc.host, srv.URL+tc.path, tc.fields))
			}
			got := srv.Log.next(t, mark, http.MethodPost, tc.path)
			assert.Equal(t, tc.wantSession, got.Session, "%s: did the request carry the session cookie?", tc.defence)
			assert.Equal(t, tc.wantStatus, got.Status, "%s refuses the post", tc.defence)
			// Wait for the navigation that the forgery started to end on
			// a page of the app (redirects included), before the next.
			tb.waitFor(fmt.Sprintf(`location.origin === %q`, srv.URL))
			if tc.wantText != "" {
				_, text := tb.page()
				assert.Contains(t, text, tc.wantText)
				assert.Equal(t, "403", tb.attr("#refusal", "data-status"))
			}

			// Nothing changed: same user, same session, same counter.
			resp := tb.open(srv.URL + "/app/profile")
			assert.Equal(t, srv.URL+"/app/profile", resp.URL, "still signed in")
			assert.Equal(t, "alice", tb.text("#user"))
			assert.Equal(t, "1", tb.text("#counter"), "%s: the counter is unchanged", tc.defence)
			if c := tb.cookie(srv.URL, cookieName); assert.NotNil(t, c) {
				assert.Equal(t, session.Value, c.Value, "the session cookie is unchanged")
			}
		})
	}
}

// Step 4: the same user on two devices (two browser contexts, two cookie
// jars); the laptop signs the phone out from its device list, and the
// phone is signed out at its next request; "sign out everywhere" ends
// both.
func TestDevices(t *testing.T) {
	srv := serveApp(t, newManager(t, nil))
	b := newBrowser(t)
	laptop, phone := b.device(t, "laptop"), b.device(t, "phone")
	signIn(t, laptop, srv.URL, "alice", "admin", false)
	signIn(t, phone, srv.URL, "alice", "admin", false)
	laptopHandle := laptop.attr("#this-device", "data-handle")
	phoneHandle := phone.attr("#this-device", "data-handle")
	require.NotEqual(t, laptopHandle, phoneHandle)

	laptop.click("#counter-form button")
	assert.Equal(t, 2, laptop.count("#devices tbody tr"), "the laptop lists both devices")
	assert.Equal(t, laptopHandle, laptop.attr("#devices tr.current", "data-handle"), "the current device is marked")
	assert.Equal(t, 0, laptop.count(`#devices tr.current button`), "no revoke button for this device")
	phoneRow := `#devices tr[data-handle="` + phoneHandle + `"]`
	assert.Equal(t, 1, laptop.count(phoneRow+` button.revoke`), "a revoke button for the phone")
	if path := os.Getenv("E2E_SCREENSHOT"); path != "" && !t.Failed() {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, laptop.screenshot("body"), 0o644))
		t.Logf("profile page saved to %s", path)
	}

	resp := laptop.click(phoneRow + ` button.revoke`)
	assert.Equal(t, srv.URL+"/app/profile", resp.URL)
	assert.Equal(t, []string{"Signed out other device."}, flashes(laptop))
	assert.Equal(t, 1, laptop.count("#devices tbody tr"))

	mark := srv.Log.mark()
	resp = phone.open(srv.URL + "/app/profile")
	got := srv.Log.next(t, mark, http.MethodGet, "/app/profile")
	assert.True(t, got.Session, "the phone still sent its cookie")
	assert.Equal(t, http.StatusSeeOther, got.Status, "the revoked session is refused")
	assert.Equal(t, srv.URL+"/app/login", resp.URL, "the phone is signed out")
	_, text := phone.page()
	assert.NotContains(t, text, "alice")
	assert.Nil(t, phone.cookie(srv.URL, cookieName), "the stale cookie was cleared")

	// The laptop is still signed in; sign in the phone again, then sign
	// out everywhere.
	laptop.open(srv.URL + "/app/profile")
	assert.Equal(t, "alice", laptop.text("#user"))
	signIn(t, phone, srv.URL, "alice", "admin", false)
	laptop.open(srv.URL + "/app/profile")
	assert.Equal(t, 2, laptop.count("#devices tbody tr"))
	resp = laptop.click("#revoke-all button")
	assert.Equal(t, srv.URL+"/app/login?signed-out=everywhere", resp.URL)
	assert.Equal(t, "You are signed out on every device.", laptop.text(".notice"))
	for _, tb := range []*tab{laptop, phone} {
		resp := tb.open(srv.URL + "/app/profile")
		assert.Equal(t, srv.URL+"/app/login", resp.URL, "%s is signed out", tb.name)
	}
}

// Step 5: after sign-out the profile redirects to the sign-in page, and the
// back button shows no private data: the profile was sent with
// Cache-Control: no-store, so the browser asks the server again instead of
// showing a copy.
func TestLogoutAndBack(t *testing.T) {
	srv := serveApp(t, newManager(t, nil))
	tb := newBrowser(t).device(t, "laptop")
	signIn(t, tb, srv.URL, "alice", "admin", false)
	tb.click("#counter-form button")

	resp := tb.click("#logout button")
	assert.Equal(t, srv.URL+"/app/login?signed-out=1", resp.URL)
	assert.Equal(t, "You are signed out.", tb.text(".notice"))
	assert.Nil(t, tb.cookie(srv.URL, cookieName), "sign-out clears the cookie")
	for _, r := range srv.Log.all(http.MethodGet, "/app/profile") {
		assert.Equal(t, "no-store", r.CacheControl, "the profile is never stored")
	}

	mark := srv.Log.mark()
	tb.do("go back", chromedp.NavigateBack())
	got := srv.Log.next(t, mark, http.MethodGet, "/app/profile")
	assert.False(t, got.Session)
	assert.Equal(t, http.StatusSeeOther, got.Status, "back asks the server again, which redirects")
	url, text := tb.page()
	assert.Equal(t, srv.URL+"/app/login", url)
	assert.NotContains(t, text, "alice", "no private data after back")
	assert.NotContains(t, text, "Your devices")

	resp = tb.open(srv.URL + "/app/profile")
	assert.Equal(t, srv.URL+"/app/login", resp.URL, "the profile redirects to the sign-in page")
}

// Step 6: two instances of the app (two routers, two Managers, two store
// clients) on two ports behind one shared store: a sign-in on A is
// recognised on B, and changes go both ways. Cookies ignore ports, so the
// browser sends A's cookie to B, as it would to two instances behind one
// host name.
func TestTwoInstancesOneStore(t *testing.T) {
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			newStore := st.start(t)
			a := serveApp(t, newManager(t, newStore()))
			bSrv := serveApp(t, newManager(t, newStore()))
			tb := newBrowser(t).device(t, "laptop")

			signIn(t, tb, a.URL, "alice", "admin", false)
			mark := bSrv.Log.mark()
			resp := tb.open(bSrv.URL + "/app/profile")
			got := bSrv.Log.next(t, mark, http.MethodGet, "/app/profile")
			assert.True(t, got.Session)
			assert.Equal(t, http.StatusOK, got.Status, "B recognises the session that A created")
			assert.Equal(t, bSrv.URL+"/app/profile", resp.URL)
			assert.Equal(t, "alice", tb.text("#user"))

			tb.click("#counter-form button")
			assert.Equal(t, "1", tb.text("#counter"))
			tb.open(a.URL + "/app/profile")
			assert.Equal(t, "1", tb.text("#counter"), "A sees B's write")

			tb.click("#logout button")
			resp = tb.open(bSrv.URL + "/app/profile")
			assert.Equal(t, bSrv.URL+"/app/login", resp.URL, "signed out on A, signed out on B")
		})
	}
}
