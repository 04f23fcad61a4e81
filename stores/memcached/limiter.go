package memcached

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/securestack/ginsession/stores"
)

// DefaultLimiterMaxAttempts is the number of read-modify-write attempts a
// LimiterBackend makes per admission when WithLimiterMaxAttempts is not
// given. Only admissions write, so a caller loses a round only to another
// caller's admission: with limits up to about 30 per window, 32 attempts
// never run out.
const DefaultLimiterMaxAttempts = 32

// limFormat is the first byte of an encoded item.
const limFormat = 1

// LimiterBackendOption configures a LimiterBackend.
type LimiterBackendOption func(*LimiterBackend)

// WithLimiterMaxAttempts sets how many read-modify-write attempts an
// admission makes before it fails with stores.ErrConflict. n must be
// positive. The default is DefaultLimiterMaxAttempts.
func WithLimiterMaxAttempts(n int) LimiterBackendOption {
	return func(b *LimiterBackend) { b.maxAttempts = n }
}

// LimiterBackend is a stores.LimiterBackend on memcached, so that several
// application instances enforce one sliding-window limit together, with
// the same exact guarantee as the in-process limiter: for every key, no
// interval of length window holds more than limit recorded admissions.
//
// Each key has one item, under the prefix followed by the unpadded
// base64url SHA-256 of the key (so no user input reaches memcached, and
// every key is legal). The item holds the admission times still in the
// window, at most limit of them, in Unix nanoseconds: a format byte, the
// count, and the times as varint deltas, a few bytes each, which keeps
// limits up to about 100,000 within memcached's default 1 MB item size. An
// admission reads the item with gets and writes it back with cas (add for
// a new key), retrying up to the attempt bound when another admission wins
// the race; a refusal writes nothing. Each write sets the item to expire
// one window after it, by the Store's rules (see Expiry in the package
// documentation: never early, at most two seconds late, as an absolute time
// for windows over 30 days), so an item outlives its latest admission by at
// least the window. A refusal's RetryAfter is exact for the history read.
//
// Time comes from the callers, as Unix time, and is compared across
// instances, so their clocks must be synchronized (NTP): a skew between
// instances shifts windows by as much. An admission is recorded no earlier
// than the latest admission already in the item, so a clock that is behind
// or steps back never breaks the guarantee on the recorded times. Item
// lifetimes are in real time, so now must be close to the real time.
//
// Memcached may evict an item or lose it with a node; the key's history
// then starts afresh, which can admit up to limit more events in that
// window. Size memcached so that limiter items are not evicted.
//
// Errors are mapped as the Store maps them: a failing memcached (network
// error, timeout, server error) is returned wrapped around
// stores.ErrUnavailable, an item too large for the server as
// stores.ErrTooLarge, and an exhausted attempt bound as stores.ErrConflict;
// a done context is returned as its error before any further request.
// Whether the limiter then admits is its fail mode (see
// ginsession.WithBackendFailMode). gomemcache does not take a context: the
// client's Timeout bounds each request. After a memcached restart,
// commands that meet the client's dead idle connections are sent again, as
// the Store's are (see Connections in the package documentation), so the
// restart does not fail admissions.
//
// A LimiterBackend is safe for concurrent use. The client is used as
// given, and never closed: it may be shared with a Store and other code.
// Raise its MaxIdleConns (gomemcache keeps 2 idle connections per server by
// default) to about the number of concurrent admissions.
type LimiterBackend struct {
	client      client
	maxAttempts int

	// record, when set (by tests), is called with every admission's
	// recorded time once it is stored.
	record func(key string, at int64)
}

var _ stores.LimiterBackend = (*LimiterBackend)(nil)

// NewLimiterBackend returns a LimiterBackend storing its items in client
// under keys starting with prefix. Give each limiter its own prefix (for
// example "rl:login:"). It panics if client is nil, if prefix is longer
// than 207 bytes or holds spaces or control characters, or if an option is
// invalid.
func NewLimiterBackend(client *memcache.Client, prefix string, opts ...LimiterBackendOption) *LimiterBackend {
	if client == nil {
		panic("memcached.NewLimiterBackend expects a non-nil client")
	}
	c, err := makeClient(client, prefix)
	if err != nil {
		panic("memcached.NewLimiterBackend: " + err.Error())
	}
	b := &LimiterBackend{client: c, maxAttempts: DefaultLimiterMaxAttempts}
	for _, o := range opts {
		o(b)
	}
	if b.maxAttempts <= 0 {
		panic(fmt.Sprintf("memcached.NewLimiterBackend: WithLimiterMaxAttempts(%d) expects n > 0", b.maxAttempts))
	}
	return b
}

// Admit implements stores.LimiterBackend.
func (b *LimiterBackend) Admit(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (stores.Decision, error) {
	if limit <= 0 || window <= 0 {
		return stores.Decision{}, fmt.Errorf("memcached: limiter: invalid policy limit=%d window=%s", limit, window)
	}
	mkey := b.itemKey(key)
	t := now.UnixNano()
	w := int64(window)
	wall := time.Now() // item lifetimes are in real time
	exp := expiration(wall.Add(window), wall)
	for range b.maxAttempts {
		if err := ctx.Err(); err != nil {
			return stores.Decision{}, err
		}
		it, err := b.client.get("limiter get", mkey)
		var times []int64
		switch {
		case errors.Is(err, memcache.ErrCacheMiss):
			it = nil
		case err != nil:
			return stores.Decision{}, err
		default:
			times, err = limDecode(it.Value)
			if err != nil {
				return stores.Decision{}, err
			}
		}

		c := t
		if n := len(times); n > 0 {
			c = max(c, times[n-1])
		}
		// Keep the admissions in (c-window, c], at most limit of them.
		first := 0
		for first < len(times) && times[first] <= c-w {
			first++
		}
		if n := len(times) - first; n >= limit {
			wait := time.Duration(times[len(times)-limit] + w - t)
			return stores.Decision{RetryAfter: wait, ResetAfter: wait}, nil
		}
		times = append(times[first:], c)

		value := limEncode(times)
		if it == nil {
			err = b.client.add("limiter write", &memcache.Item{Key: mkey, Value: value, Expiration: exp})
		} else {
			it.Value, it.Expiration = value, exp
			err = b.client.cas("limiter write", it)
		}
		switch {
		case err == nil:
			if b.record != nil {
				b.record(key, c)
			}
			return stores.Decision{
				Allowed:    true,
				Remaining:  limit - len(times),
				ResetAfter: time.Duration(times[0] + w - t),
			}, nil
		case errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrCASConflict), errors.Is(err, memcache.ErrCacheMiss):
			// Another admission won the race (or the item expired or was
			// evicted in between): read again.
			continue
		default:
			return stores.Decision{}, err
		}
	}
	return stores.Decision{}, fmt.Errorf("memcached: limiter: %w: gave up after %d attempts", stores.ErrConflict, b.maxAttempts)
}

// itemKey returns the memcached key of a limiter key: the prefix and the
// SHA-256 of the key.
func (b *LimiterBackend) itemKey(key string) string {
	return b.client.key(sha256.Sum256([]byte(key)))
}

// limEncode encodes sorted admission times: a format byte, the count as a
// uvarint, the first time as a varint and the gaps as uvarints.
func limEncode(times []int64) []byte {
	buf := make([]byte, 0, 1+binary.MaxVarintLen64*(1+len(times)))
	buf = append(buf, limFormat)
	buf = binary.AppendUvarint(buf, uint64(len(times)))
	for i, t := range times {
		if i == 0 {
			buf = binary.AppendVarint(buf, t)
		} else {
			buf = binary.AppendUvarint(buf, uint64(t-times[i-1]))
		}
	}
	return buf
}

// errLimMalformed is returned for an item that does not decode.
var errLimMalformed = errors.New("memcached: limiter item is malformed")

// limDecode decodes what limEncode encoded.
func limDecode(b []byte) ([]int64, error) {
	if len(b) == 0 || b[0] != limFormat {
		return nil, errLimMalformed
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errLimMalformed
	}
	b = b[k:]
	times := make([]int64, 0, n+1)
	var prev int64
	for i := range n {
		var t int64
		if i == 0 {
			v, k := binary.Varint(b)
			if k <= 0 {
				return nil, errLimMalformed
			}
			t, b = v, b[k:]
		} else {
			d, k := binary.Uvarint(b)
			if k <= 0 || d > 1<<62 {
				return nil, errLimMalformed
			}
			t, b = prev+int64(d), b[k:]
		}
		times = append(times, t)
		prev = t
	}
	if len(b) != 0 {
		return nil, errLimMalformed
	}
	return times, nil
}
