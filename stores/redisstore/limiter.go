package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/stores"
)

const (
	// limEntrySize is the size of one admission time in a history: 8
	// bytes of seconds and 4 of nanoseconds.
	limEntrySize = 12
	// limFormat is the first byte of an encoded history.
	limFormat = 1
)

// errLimMalformed is returned for a history that does not decode.
var errLimMalformed = errors.New("redisstore: limiter history is malformed")

// limScript decides one admission in one command. KEYS[1] holds the key's
// history: a format byte (1) and the admission times still in the window,
// oldest first, each as 8 bytes of Unix seconds and 4 of nanoseconds,
// big-endian (struct ">i8I4"). ARGV: limit, window seconds, window
// nanoseconds, now seconds, now nanoseconds, and the history's lifetime in
// milliseconds.
//
// Times travel as (seconds, nanoseconds) pairs because Lua numbers are
// doubles: Unix nanoseconds (about 2^61) would lose their last bits, and
// the decision must be exact. Every number the script handles stays far
// below 2^53.
//
// It returns {1, remaining, reset seconds, reset nanoseconds, recorded
// seconds, recorded nanoseconds} for an admission, {0, 0, retry seconds,
// retry nanoseconds} for a refusal, which writes nothing.
var limScript = redis.NewScript(`
local E = 1000000000
local limit = tonumber(ARGV[1])
local ws, wn = tonumber(ARGV[2]), tonumber(ARGV[3])
local ts, tn = tonumber(ARGV[4]), tonumber(ARGV[5])
local function norm(s, n)
  while n < 0 do n = n + E; s = s - 1 end
  while n >= E do n = n - E; s = s + 1 end
  return s, n
end
local times = {}
local h = redis.call('GET', KEYS[1])
if h then
  if string.byte(h, 1) ~= 1 or (#h - 1) % 12 ~= 0 then
    return redis.error_reply('ERR malformed limiter history')
  end
  local pos = 2
  while pos <= #h do
    local s, n
    s, n, pos = struct.unpack('>i8I4', h, pos)
    if n >= E then
      return redis.error_reply('ERR malformed limiter history')
    end
    times[#times + 1] = {s, n}
  end
end
-- The admission would be recorded at c: now, or the latest recorded
-- admission if that is later.
local cs, cn = ts, tn
local last = times[#times]
if last and (last[1] > cs or (last[1] == cs and last[2] > cn)) then
  cs, cn = last[1], last[2]
end
-- Keep the admissions in (c-window, c].
local ls, ln = norm(cs - ws, cn - wn)
local first = 1
while first <= #times and (times[first][1] < ls or (times[first][1] == ls and times[first][2] <= ln)) do
  first = first + 1
end
local n = #times - first + 1
if n >= limit then
  local o = times[#times - limit + 1]
  local rs, rn = norm(o[1] + ws - ts, o[2] + wn - tn)
  return {0, 0, rs, rn}
end
local parts = {string.char(1)}
for i = first, #times do
  parts[#parts + 1] = struct.pack('>i8I4', times[i][1], times[i][2])
end
parts[#parts + 1] = struct.pack('>i8I4', cs, cn)
redis.call('SET', KEYS[1], table.concat(parts), 'PX', ARGV[6])
local o = times[first] or {cs, cn}
local rs, rn = norm(o[1] + ws - ts, o[2] + wn - tn)
return {1, limit - n - 1, rs, rn, cs, cn}
`)

// LimiterBackendOption configures a LimiterBackend.
type LimiterBackendOption func(*LimiterBackend)

// WithLimiterMaxItemSize sets the size limit of a key's history in bytes:
// 12 bytes per admission, plus 1. An Admit whose limit needs a larger
// history fails with stores.ErrTooLarge without reaching the server. It is
// at most 512 MiB. The default is DefaultMaxItemSize (1 MiB, limits up to
// 87,381 events per window).
func WithLimiterMaxItemSize(bytes int) LimiterBackendOption {
	return func(b *LimiterBackend) { b.maxItemSize = bytes }
}

// LimiterBackend is a stores.LimiterBackend on Redis, so that several
// application instances enforce one sliding-window limit together, with
// the same exact guarantee as the in-process limiter: for every key, no
// interval of length window holds more than limit recorded admissions.
//
// Each key has one Redis string, under the prefix followed by the unpadded
// base64url SHA-256 of the key (so no user input reaches Redis, and every
// key has the same shape). It holds the admission times still in the
// window, at most limit of them, to the nanosecond. An admission is one
// Lua script run on that key alone (so Redis Cluster works without hash
// tags), which reads the history, decides, and, for an admission only,
// writes the new history, atomically: admissions never race each other,
// so Admit never returns stores.ErrConflict, and a refusal writes nothing.
// Histories expire one second after the window, rounded up to the
// millisecond, once no admission has refreshed them. A refusal's
// RetryAfter is exact.
//
// Time comes from the callers and is compared across instances, so their
// clocks must be synchronized (NTP): a skew between instances shifts
// windows by as much. An admission is recorded no earlier than the latest
// admission already recorded for the key, so a clock that is behind or
// steps back never breaks the guarantee on the recorded times. History
// lifetimes are in real time, so now must be close to the real time.
//
// A Redis that loses the history (a restart without persistence, a
// failover before replication, an eviction under an allkeys-* policy)
// starts the key afresh, which can admit up to limit more events in that
// window.
//
// Errors: a failing or unreachable Redis is returned wrapped around
// stores.ErrUnavailable (and ErrOutOfMemory for a server at its maxmemory
// under noeviction), a limit whose history would exceed the size limit as
// stores.ErrTooLarge; a done context is returned as its error before any
// request. Whether the limiter then admits is its fail mode (see
// ginsession.WithBackendFailMode).
//
// A LimiterBackend is safe for concurrent use.
type LimiterBackend struct {
	client      redis.UniversalClient
	prefix      string
	maxItemSize int

	// record, when set (by tests), is called with every admission's
	// recorded time once it is stored.
	record func(key string, at int64)
}

var _ stores.LimiterBackend = (*LimiterBackend)(nil)

// NewLimiterBackend returns a LimiterBackend storing its histories in
// client under keys starting with prefix. Give each limiter its own prefix
// (for example "rl:login:"). It panics if client is nil, if prefix is
// longer than 512 bytes, holds control characters or a Redis Cluster hash
// tag ("{...}"), or if an option is invalid.
func NewLimiterBackend(client redis.UniversalClient, prefix string, opts ...LimiterBackendOption) *LimiterBackend {
	if client == nil {
		panic("redisstore.NewLimiterBackend expects a non-nil client")
	}
	if err := checkPrefix("prefix", prefix); err != nil {
		panic("redisstore.NewLimiterBackend: " + err.Error())
	}
	b := &LimiterBackend{client: client, prefix: prefix, maxItemSize: DefaultMaxItemSize}
	for _, o := range opts {
		o(b)
	}
	if b.maxItemSize <= 1+limEntrySize || b.maxItemSize > maxValueSize {
		panic(fmt.Sprintf("redisstore.NewLimiterBackend: WithLimiterMaxItemSize(%d) expects more than %d bytes and at most 512 MiB", b.maxItemSize, 1+limEntrySize))
	}
	return b
}

// Admit implements stores.LimiterBackend.
func (b *LimiterBackend) Admit(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (stores.Decision, error) {
	if limit <= 0 || window <= 0 {
		return stores.Decision{}, fmt.Errorf("redisstore: limiter: invalid policy limit=%d window=%s", limit, window)
	}
	if limit > (b.maxItemSize-1)/limEntrySize {
		return stores.Decision{}, fmt.Errorf("redisstore: limiter: %w: a limit of %d needs a history of %d bytes, over the limit of %d (WithLimiterMaxItemSize)", stores.ErrTooLarge, limit, 1+limEntrySize*int64(limit), b.maxItemSize)
	}
	if err := ctx.Err(); err != nil {
		return stores.Decision{}, err
	}
	ts, tn := splitNanos(now.UnixNano())
	ws, wn := splitNanos(int64(window))
	lifetime := (window+time.Millisecond-1)/time.Millisecond + 1000
	reply, err := limScript.Run(ctx, b.client, []string{b.itemKey(key)}, limit, ws, wn, ts, tn, int64(lifetime)).Int64Slice()
	if err != nil {
		if redis.HasErrorPrefix(err, "malformed limiter history") {
			return stores.Decision{}, errLimMalformed
		}
		return stores.Decision{}, fail(ctx, "limiter", err)
	}
	if len(reply) < 4 {
		return stores.Decision{}, fmt.Errorf("redisstore: limiter: unexpected reply %v", reply)
	}
	d := time.Duration(reply[2]*1e9 + reply[3])
	if reply[0] == 0 {
		return stores.Decision{RetryAfter: d, ResetAfter: d}, nil
	}
	if len(reply) < 6 {
		return stores.Decision{}, fmt.Errorf("redisstore: limiter: unexpected reply %v", reply)
	}
	if b.record != nil {
		b.record(key, reply[4]*1e9+reply[5])
	}
	return stores.Decision{Allowed: true, Remaining: int(reply[1]), ResetAfter: d}, nil
}

// splitNanos splits Unix nanoseconds into seconds and nanoseconds in
// [0, 1e9).
func splitNanos(ns int64) (sec, nsec int64) {
	sec, nsec = ns/1e9, ns%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	return sec, nsec
}

// itemKey returns the Redis key of a limiter key.
func (b *LimiterBackend) itemKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	var sb strings.Builder
	sb.Grow(len(b.prefix) + base64.RawURLEncoding.EncodedLen(len(sum)))
	sb.WriteString(b.prefix)
	sb.WriteString(base64.RawURLEncoding.EncodeToString(sum[:]))
	return sb.String()
}
