package benchmarks

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/securestack/ginsession/stores/redisstore"
)

// TestRedisFloorSize checks that the go-redis floor reads a value the size
// of the session ginsession-redis stores for the benchmarks' login.
func TestRedisFloorSize(t *testing.T) {
	l := libraryNamed("ginsession-redis")
	s := l.setup(t)
	_, token, _ := strings.Cut(s.existing, "=")
	// The store's key: its prefix and the base64url SHA-256 of the ID
	// (no server key).
	sum := sha256.Sum256([]byte(token))
	key := redisstore.DefaultPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
	reply, err := sharedRD.Do("STRLEN", key)
	if err != nil {
		t.Fatal(err)
	}
	n64, ok := reply.(int64)
	if !ok || n64 == 0 {
		t.Fatalf("STRLEN %s = %v: no such session", key, reply)
	}
	n := int(n64)
	if d := n - rawRedisSize; d < -8 || d > 8 {
		t.Fatalf("the session takes %d bytes in Redis; the floor reads %d (rawRedisSize)", n, rawRedisSize)
	}
	t.Logf("session value: %d bytes; floor: %d", n, rawRedisSize)
}

// libraryNamed returns the library called name.
func libraryNamed(name string) library {
	for _, l := range libraries {
		if l.name == name {
			return l
		}
	}
	panic("no library " + name)
}

// countMemcachedCommands sets up a subject of l, prepares it for sc, sends
// one checked request and then n more, and returns the memcached commands
// per request those n cost, from the server's stats.
func countMemcachedCommands(tb testing.TB, l library, sc scenario, n int) map[string]float64 {
	tb.Helper()
	s := l.setupEnv(tb, env{keyed: sc.keyed})
	c := newClient(tb, sc, s)
	c.check(tb, l)
	before := s.mc.counts(tb)
	for range n {
		c.do()
	}
	after := s.mc.counts(tb)
	per := map[string]float64{}
	for name, d := range map[string]uint64{
		"get": after.get - before.get, "set": after.set - before.set,
		"touch": after.touch - before.touch, "delete": after.del - before.del,
	} {
		if d > 0 {
			per[name] = float64(d) / float64(n)
		}
	}
	return per
}

// count returns the commands per request of sc on l, from the counting
// proxy for Redis libraries and the server's stats for memcached ones.
func count(tb testing.TB, l library, sc scenario) map[string]float64 {
	tb.Helper()
	const n = 20
	if l.redis {
		if sharedRD == nil {
			skipOrFail(tb, sharedRDErr)
		}
		return countRedisCommands(tb, l, sc, n)
	}
	if sharedMC == nil {
		skipOrFail(tb, sharedMCErr)
	}
	return countMemcachedCommands(tb, l, sc, n)
}

// formatCounts renders commands per request as "1 EVALSHA + 1 GET".
func formatCounts(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, strconv.FormatFloat(m[k], 'g', 3, 64)+" "+k)
	}
	return strings.Join(parts, " + ")
}

// TestCommands checks the commands per request that the results table
// reports and the project claims, counted exactly as the benchmarks count
// them (Redis: what each client sends, through the counting proxy;
// memcached: the server's stats): for ginsession, one command per read,
// the read and one compare-and-swap per write, the same for a write
// through Manager.UpdateSession as through the Gin helper, and none for a
// forged token under a server key or for junk; for the peers, the reads
// described in the README's fairness notes.
func TestCommands(t *testing.T) {
	for _, tc := range []struct {
		lib, scenario, want string
	}{
		{"ginsession-redis", "ReadExisting", "1 GET"},
		{"ginsession-redis", "WriteOne", "1 EVALSHA + 1 GET"},
		{"ginsession-redis", "WriteOneManager", "1 EVALSHA + 1 GET"},
		{"ginsession-redis", "MissSigned", "none"},
		{"ginsession-redis", "Junk", "none"},
		{"goredis-get", "ReadExisting", "1 GET"},
		{"scs-redisstore", "ReadExisting", "1 GET"},
		{"scs-goredisstore", "ReadExisting", "1 GET"},
		{"gincontrib-redis", "ReadExisting", "1 GET + 1 PING"},
		{"ginsession-memcached", "ReadExisting", "1 get"},
		{"ginsession-memcached", "WriteOne", "1 get + 1 set"},
		{"ginsession-memcached", "WriteOneManager", "1 get + 1 set"},
		{"ginsession-memcached", "MissSigned", "none"},
		{"ginsession-memcached", "Junk", "none"},
	} {
		t.Run(tc.lib+"/"+tc.scenario, func(t *testing.T) {
			got := formatCounts(count(t, libraryNamed(tc.lib), scenarioNamed(tc.scenario)))
			if got != tc.want {
				t.Fatalf("commands per request: %s, want %s", got, tc.want)
			}
		})
	}
	// The logins, reported for the record (the results table has them
	// from the benchmark run).
	for _, lib := range []string{"ginsession-redis", "scs-redisstore", "scs-goredisstore", "gincontrib-redis", "ginsession-memcached", "gincontrib-memcached"} {
		for _, sc := range []string{"Create", "CreateReturning", "CreateAtCap"} {
			t.Logf("%s %s: %s", lib, sc, formatCounts(count(t, libraryNamed(lib), scenarioNamed(sc))))
		}
	}
}
