package benchmarks

import (
	"net/http"
	"strings"
	"testing"
)

// TestScenarios checks that each scenario does, for every library, what
// the benchmark claims to measure, so that no benchmark silently times an
// error path: ReadExisting reads the stored value, WriteOne's value can be
// read back, Create sets a session cookie that then works, and Miss and
// Junk are answered as "no session".
func TestScenarios(t *testing.T) {
	for _, l := range libraries {
		t.Run(l.name, func(t *testing.T) {
			for _, sc := range append(scenarios, readParallel) {
				if !sc.applies(l) {
					continue
				}
				t.Run(sc.name, func(t *testing.T) {
					s := l.setup(t)
					rec := serve(s.h, sc.method, sc.path, sc.cookie(s))
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
					case "WriteOne":
						// A cookie store carries the session in the cookie,
						// so the new value travels in the new cookie.
						cookie := s.existing
						if cs := rec.Result().Cookies(); len(cs) == 1 && cs[0].Value != "" {
							cookie = cs[0].Name + "=" + cs[0].Value
						}
						got := serve(s.h, http.MethodGet, "/get/"+writeKey, cookie)
						if got.Code != http.StatusOK || got.Body.String() != writeValue {
							t.Fatalf("read back after write: status %d, body %q; want 200 %q", got.Code, got.Body, writeValue)
						}
						if got := serve(s.h, http.MethodGet, "/read", cookie); got.Body.String() != userValue {
							t.Fatalf("the write lost the user: body %q", got.Body)
						}
					case "Create":
						cs := rec.Result().Cookies()
						if len(cs) != 1 || cs[0].Value == "" {
							t.Fatalf("Set-Cookie: %q, want one session cookie", rec.Header().Values("Set-Cookie"))
						}
						cookie := cs[0].Name + "=" + cs[0].Value
						// (A cookie store's value is the signed data, the same
						// for the same data within a second.)
						if cookie == s.existing && !l.noMiss {
							t.Fatal("Create reissued the existing session")
						}
						got := serve(s.h, http.MethodGet, "/read", cookie)
						if got.Code != http.StatusOK || got.Body.String() != userValue {
							t.Fatalf("new session: status %d, body %q", got.Code, got.Body)
						}
					case "Miss", "Junk":
						if cookie := sc.cookie(s); cookie == "" || strings.HasSuffix(cookie, "=") {
							t.Fatalf("cookie %q is empty", cookie)
						}
						if sc.cookie(s) == s.existing {
							t.Fatal("cookie names the live session")
						}
					}
				})
			}
		})
	}
}

// TestMissCookiesAreWellFormed checks that the Miss cookies are ones the
// library could have issued: a ginsession or scs ID has the length and
// alphabet of a real one, and a gorilla cookie decodes (the store lookup
// is what fails, not the signature).
func TestMissCookiesAreWellFormed(t *testing.T) {
	for _, l := range libraries {
		if l.bare || l.readOnly || l.noMiss {
			continue
		}
		t.Run(l.name, func(t *testing.T) {
			s := l.setup(t)
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
				return
			}
			if len(missValue) != len(liveValue) {
				t.Fatalf("miss value length %d, live %d", len(missValue), len(liveValue))
			}
		})
	}
}
