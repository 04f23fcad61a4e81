package ginsession_test

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession"
)

func TestNewManagerRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []ginsession.Option
		want string
	}{
		{"host prefix without secure", []ginsession.Option{ginsession.WithCookieSecure(false)}, "WithCookieSecure(false)"},
		{"host prefix with path", []ginsession.Option{ginsession.WithCookiePath("/app")}, `WithCookiePath("/app")`},
		{"host prefix with domain", []ginsession.Option{ginsession.WithCookieDomain("example.com")}, `WithCookieDomain("example.com")`},
		{"explicit host name with domain", []ginsession.Option{ginsession.WithCookieName("__Host-id"), ginsession.WithCookieDomain("a.example")}, "WithCookieDomain"},
		{"secure prefix without secure", []ginsession.Option{ginsession.WithCookieName("__Secure-id"), ginsession.WithCookieSecure(false)}, "WithCookieSecure(false)"},
		{"samesite none without secure", []ginsession.Option{ginsession.WithCookieName("id"), ginsession.WithCookieSecure(false), ginsession.WithCookieSameSite(http.SameSiteNoneMode)}, "WithCookieSameSite"},
		{"bad cookie name", []ginsession.Option{ginsession.WithCookieName("a b")}, `WithCookieName("a b")`},
		{"empty cookie name", []ginsession.Option{ginsession.WithCookieName("")}, `WithCookieName("")`},
		{"oversized cookie name", []ginsession.Option{ginsession.WithCookieName(strings.Repeat("n", 4096))}, "4096 bytes"},
		{"zero idle", []ginsession.Option{ginsession.WithIdleTimeout(0)}, "WithIdleTimeout(0s)"},
		{"negative absolute", []ginsession.Option{ginsession.WithAbsoluteTimeout(-time.Hour)}, "WithAbsoluteTimeout(-1h0m0s)"},
		{"refresh not below idle", []ginsession.Option{ginsession.WithIdleTimeout(time.Minute), ginsession.WithRefreshInterval(time.Minute)}, "WithRefreshInterval(1m0s)"},
		// Huge timeouts would wrap deadlines around (Unix nanoseconds end
		// in 2262): refused, naming the option.
		{"huge absolute", []ginsession.Option{ginsession.WithAbsoluteTimeout(math.MaxInt64)}, "WithAbsoluteTimeout(2562047h47m16.854775807s): must be at most"},
		{"huge idle", []ginsession.Option{ginsession.WithAbsoluteTimeout(time.Hour), ginsession.WithIdleTimeout(math.MaxInt64)}, "WithIdleTimeout(2562047h47m16.854775807s)"},
		{"huge grace", []ginsession.Option{ginsession.WithRotationGrace(math.MaxInt64)}, "WithRotationGrace"},
		{"huge renewal", []ginsession.Option{ginsession.WithRenewalInterval(ginsession.MaxTimeout + 1)}, "WithRenewalInterval"},
		// Each message names the option at fault, not a neighbour.
		{"bad path with a domain set", []ginsession.Option{ginsession.WithCookieName("id"), ginsession.WithCookieDomain("example.com"), ginsession.WithCookiePath("/a;b")}, `WithCookiePath("/a;b")`},
		{"path without slash with a domain set", []ginsession.Option{ginsession.WithCookieName("id"), ginsession.WithCookieDomain("example.com"), ginsession.WithCookiePath("app")}, `WithCookiePath("app")`},
		{"domain list", []ginsession.Option{ginsession.WithCookieName("id"), ginsession.WithCookieDomain("a.com,b")}, `WithCookieDomain("a.com,b")`},
		{"domain with space", []ginsession.Option{ginsession.WithCookieName("id"), ginsession.WithCookieDomain("a.com b.com")}, `WithCookieDomain("a.com b.com")`},
		{"domain with empty label", []ginsession.Option{ginsession.WithCookieName("id"), ginsession.WithCookieDomain("a..com")}, `WithCookieDomain("a..com")`},
		// Browsers match the prefixes case-insensitively.
		{"lower-case host prefix without secure", []ginsession.Option{ginsession.WithCookieName("__host-id"), ginsession.WithCookieSecure(false)}, "WithCookieSecure(false)"},
		{"mixed-case host prefix with domain", []ginsession.Option{ginsession.WithCookieName("__HOST-id"), ginsession.WithCookieDomain("example.com")}, "requires no Domain"},
		{"upper-case secure prefix without secure", []ginsession.Option{ginsession.WithCookieName("__SECURE-id"), ginsession.WithCookieSecure(false)}, "requires Secure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "NewManager accepted an invalid configuration")
				msg, _ := r.(string)
				assert.Contains(t, msg, "ginsession.NewManager")
				assert.Contains(t, msg, tt.want)
			}()
			ginsession.NewManager(nil, tt.opts...).Close()
		})
	}
}

func TestValidOddOptions(t *testing.T) {
	for name, opts := range map[string][]ginsession.Option{
		"longest timeouts":   {ginsession.WithAbsoluteTimeout(ginsession.MaxTimeout), ginsession.WithIdleTimeout(ginsession.MaxTimeout)},
		"tiny timeouts":      {ginsession.WithAbsoluteTimeout(time.Nanosecond), ginsession.WithIdleTimeout(time.Nanosecond)},
		"leading-dot domain": {ginsession.WithCookieName("id"), ginsession.WithCookieDomain(".example.com")},
		"IP domain":          {ginsession.WithCookieName("id"), ginsession.WithCookieDomain("127.0.0.1")},
		"cap of one":         {ginsession.WithMaxSessionsPerUser(1)},
	} {
		t.Run(name, func(t *testing.T) {
			assert.NotPanics(t, func() { _ = ginsession.NewManager(nil, opts...).Close() })
		})
	}
}

func TestHostPrefixAcceptedWithSecureDefaults(t *testing.T) {
	m := ginsession.NewManager(nil, ginsession.WithCookieName("__Host-app"), ginsession.WithCookiePath("/"))
	assert.NoError(t, m.Close())
}
