package memcached

import (
	"encoding/base64"
	"fmt"
	"math"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

const (
	// maxKeyLen is memcached's limit on the length of a key.
	maxKeyLen = 250

	// digestLen is the length of the unpadded base64url form of a 32-byte
	// digest, which ends every key.
	digestLen = 43

	// maxPrefixLen is the longest prefix that keeps every key within
	// maxKeyLen.
	maxPrefixLen = maxKeyLen - digestLen
)

// client is the memcached plumbing that Store and LimiterBackend share: a
// gomemcache Client and the prefix of the keys it builds. A client is
// immutable, so it is safe for concurrent use, as the gomemcache Client is.
type client struct {
	mc     *memcache.Client
	prefix string // legal, see makeClient
}

// makeClient returns a client sending commands through mc, with keys that
// start with prefix. It fails unless prefix keeps every key legal for
// memcached: at most maxPrefixLen bytes, without spaces or control
// characters. Its error message is meant to follow the name of the function
// or option that was given prefix.
func makeClient(mc *memcache.Client, prefix string) (client, error) {
	if err := checkPrefix(prefix); err != nil {
		return client{}, err
	}
	return client{mc: mc, prefix: prefix}, nil
}

// checkPrefix implements makeClient's rule.
func checkPrefix(prefix string) error {
	if len(prefix) > maxPrefixLen {
		return fmt.Errorf("prefix of %d bytes, over the %d that keep keys within memcached's %d", len(prefix), maxPrefixLen, maxKeyLen)
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("prefix %q has a space or control character at byte %d", prefix, i)
		}
	}
	return nil
}

// key returns the memcached key of digest: the prefix followed by the
// digest's 43-character unpadded base64url form.
func (c *client) key(digest [32]byte) string {
	var arr [maxKeyLen]byte
	b := append(arr[:0], c.prefix...)
	b = base64.RawURLEncoding.AppendEncode(b, digest[:])
	return string(b)
}

// Expirations.

// maxRelative is the longest expiration memcached reads as relative
// seconds; larger numbers are absolute Unix times.
const maxRelative = 30 * 24 * 60 * 60

// expireNow is the expiration that makes memcached expire an item at once.
// Zero would mean "never expire"; memcached reads any negative number as
// "already expired".
const expireNow = -1

// maxExpiry is the latest expiry memcached can hold: its absolute
// expirations are 32-bit Unix times.
var maxExpiry = time.Unix(math.MaxInt32, 0)

// expiration converts an absolute expiry into a memcached expiration at
// time now, following memcached's rules:
//
//   - an expiry at or before now gives expireNow;
//   - up to 30 days ahead it is relative seconds, rounded up, plus one:
//     memcached's clock ticks once a second and counts from its last
//     tick, so an item set just before a tick would otherwise expire up
//     to a second early (the item lives at least until expiresAt, at most
//     two seconds longer);
//   - further ahead it is an absolute Unix time, rounded up (memcached
//     compares those with the wall clock, so they are not early), capped
//     at maxExpiry.
//
// It never returns 0, which memcached reads as "never expire".
func expiration(expiresAt, now time.Time) int32 {
	d := expiresAt.Sub(now) // saturates instead of overflowing
	if d <= 0 {
		return expireNow
	}
	secs := d / time.Second
	if d%time.Second != 0 {
		secs++
	}
	if secs+1 <= maxRelative {
		return int32(secs + 1)
	}
	if !expiresAt.Before(maxExpiry) {
		return math.MaxInt32
	}
	abs := expiresAt.Unix()
	if expiresAt.Nanosecond() != 0 {
		abs++
	}
	return int32(abs)
}
