package benchmarks

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/securecookie"
)

// TestScenarios checks that each scenario does, for every library, what
// the benchmark claims to measure, so that no benchmark silently times an
// error path: ReadExisting reads the stored value, a WriteOne's value can
// be read back, the Creates set a session cookie that then works (and a
// returning login replaces the session where the library says it does),
// and the Misses and Junk are answered as "no session".
func TestScenarios(t *testing.T) {
	for _, l := range libraries {
		t.Run(l.name, func(t *testing.T) {
			for _, sc := range append(scenarios, readParallel) {
				if !sc.applies(l) {
					continue
				}
				t.Run(sc.name, func(t *testing.T) {
					s := l.setupEnv(t, env{keyed: sc.keyed})
					c := newClient(t, sc, s)
					sent := c.cookie
					rec := c.do()
					if l.bare {
						if rec.Code >= 300 {
							t.Fatalf("bare gin: status %d", rec.Code)
						}
						return
					}
					if rec.Code != sc.status {
						t.Fatalf("status %d, want %d: %s", rec.Code, sc.status, rec.Body)
					}
					switch sc.name {
					case "ReadExisting", "ReadExistingParallel":
						if got := rec.Body.String(); got != userValue {
							t.Fatalf("body %q, want %q", got, userValue)
						}
					case "WriteOne", "WriteOneManager":
						// A cookie store carries the session in the cookie,
						// so the new value travels in the new cookie.
						cookie := nextCookie(rec, s.existing)
						got := serve(s.h, http.MethodGet, "/get/"+writeKey, cookie)
						if got.Code != http.StatusOK || got.Body.String() != writeValue {
							t.Fatalf("read back after write: status %d, body %q; want 200 %q", got.Code, got.Body, writeValue)
						}
						if got := serve(s.h, http.MethodGet, "/read", cookie); got.Body.String() != userValue {
							t.Fatalf("the write lost the user: body %q", got.Body)
						}
					case "Create", "CreateReturning", "CreateAtCap":
						cookie := nextCookie(rec, "")
						if cookie == "" {
							t.Fatalf("Set-Cookie: %q, want a session cookie", rec.Header().Values("Set-Cookie"))
						}
						// (A cookie store's value is the signed data, the same
						// for the same data within a second.)
						if cookie == s.existing && !l.noMiss {
							t.Fatal("the login reissued the existing session")
						}
						got := serve(s.h, http.MethodGet, "/get/"+uidKey, cookie)
						if got.Code != http.StatusOK {
							t.Fatalf("new session: status %d, body %q", got.Code, got.Body)
						}
						wantUser := s.sameUser
						if sc.name == "Create" {
							wantUser = "user-" // a new one each time
						}
						if !strings.HasPrefix(got.Body.String(), wantUser) {
							t.Fatalf("new session's user %q, want %s…", got.Body, wantUser)
						}
						if sc.name == "CreateReturning" {
							checkReturning(t, s, sent, cookie)
						}
						if sc.name == "CreateAtCap" && l.ginsession {
							if n := s.userSessions(t); n != maxSessionsPerUser {
								t.Fatalf("after a login at the cap the user holds %d sessions, want %d", n, maxSessionsPerUser)
							}
						}
					case "Miss", "MissSigned", "Junk":
						if sent == "" || strings.HasSuffix(sent, "=") {
							t.Fatalf("cookie %q is empty", sent)
						}
						if sent == s.existing {
							t.Fatal("cookie names the live session")
						}
					}
				})
			}
		})
	}
}

// checkReturning checks what a returning login did with the session whose
// cookie (before) it carried, now that it set after: ginsession and scs
// replace it with a new ID and the old cookie no longer works (no session
// fixation); gin-contrib/sessions saves the same session under the same
// ID, so the old cookie still works.
func checkReturning(t *testing.T, s *subject, before, after string) {
	t.Helper()
	oldWorks := serve(s.h, http.MethodGet, "/read", before).Code == http.StatusOK
	switch {
	case s.lib.ginsession, strings.HasPrefix(s.lib.name, "scs-"):
		if before == after || oldWorks {
			t.Fatalf("the returning login kept the old session (same cookie %v, old cookie works %v)", before == after, oldWorks)
		}
	case s.lib.noMiss: // the cookie store: the old cookie is as good as ever
		if !oldWorks {
			t.Fatal("the cookie store refused the old cookie")
		}
	default: // gin-contrib's server-side stores
		if gorillaID(t, before) != gorillaID(t, after) || !oldWorks {
			t.Fatalf("gin-contrib changed the session ID or dropped the old session (old cookie works %v)", oldWorks)
		}
	}
}

// gorillaID returns the session ID inside a gin-contrib/sessions cookie.
func gorillaID(t *testing.T, cookie string) string {
	t.Helper()
	_, v, _ := strings.Cut(cookie, "=")
	var id string
	if err := securecookie.DecodeMulti(gorillaCookie, v, &id, securecookie.CodecsFromPairs(gorillaKey)...); err != nil {
		t.Fatalf("decode %q: %v", cookie, err)
	}
	return id
}

// TestMissCookiesAreWellFormed checks that the Miss cookies are ones the
// library could have issued: a ginsession or scs ID has the length and
// alphabet of a real one (with a server key, the ID, a dot and a MAC), and
// a gorilla cookie decodes (the store lookup is what fails, not the
// signature).
func TestMissCookiesAreWellFormed(t *testing.T) {
	for _, l := range libraries {
		if l.bare || l.readOnly || l.noMiss {
			continue
		}
		for _, keyed := range []bool{false, true} {
			if keyed && !l.ginsession {
				continue
			}
			name := l.name
			if keyed {
				name += "/keyed"
			}
			t.Run(name, func(t *testing.T) {
				s := l.setupEnv(t, env{keyed: keyed})
				liveName, liveValue, _ := strings.Cut(s.existing, "=")
				missName, missValue, _ := strings.Cut(s.miss, "=")
				if missName != liveName {
					t.Fatalf("miss cookie %q, live cookie %q: names differ", missName, liveName)
				}
				if strings.HasPrefix(l.name, "gincontrib") {
					// Both are securecookie values: same shape, similar length.
					if d := len(missValue) - len(liveValue); d < -8 || d > 8 {
						t.Fatalf("miss value length %d, live %d", len(missValue), len(liveValue))
					}
					gorillaID(t, s.miss)
					return
				}
				if len(missValue) != len(liveValue) {
					t.Fatalf("miss value length %d, live %d", len(missValue), len(liveValue))
				}
				if keyed && (len(liveValue) != 43+1+12 || liveValue[43] != '.' || missValue[43] != '.') {
					t.Fatalf("keyed tokens: live %q, miss %q; want a 43-character ID, '.', a 12-character MAC", liveValue, missValue)
				}
			})
		}
	}
}
