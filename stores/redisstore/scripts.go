package redisstore

import "github.com/redis/go-redis/v9"

// The store's Lua scripts. Each touches KEYS[1] only, so that in Redis
// Cluster it runs on the node owning that key's slot, with no hash tags.
// go-redis sends a script by its SHA-1 (EVALSHA) and falls back to EVAL
// when the server does not know it (NOSCRIPT: after a restart, a failover
// or SCRIPT FLUSH), so a script costs one command, two the first time a
// server sees it.
//
// A stored value is an 8-byte random version, the item's expiry in Unix
// milliseconds (8 bytes, big-endian), then the codec bytes of the record;
// see Store. A read is a plain GET: the value carries the expiry.

// touchScript sets an item's expiry in one command: ARGV[1] is the new
// expiry in Unix milliseconds, as the 8 bytes that a value holds after its
// version, and ARGV[2] the same as a number. It rewrites those 8 bytes in
// place (SETRANGE keeps the key's expiry) and sets the key's expiry to
// match (PEXPIREAT), so that a plain GET reads the expiry any process set.
// It returns 0 for a missing key.
var touchScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('SETRANGE', KEYS[1], 8, ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
`)

// Results of casScript.
const (
	casWritten  = 1  // the new value is stored, or the key deleted
	casMissing  = 0  // no item
	casConflict = -1 // another version is stored
)

// casScript replaces an item if it is still at the version the caller
// read: ARGV[1] is that version (8 bytes), ARGV[2] the new value, or the
// empty string to delete the item, and ARGV[3] the new expiry in Unix
// milliseconds (SET ... PXAT). It compares only the stored value's first
// 8 bytes (GETRANGE), so a large item is not copied into the script.
//
// It returns casWritten, casMissing or casConflict. A value that already
// starts with the new value's version is this very write, applied by an
// earlier attempt whose reply was lost (the client retries commands on
// network errors): it counts as written, so retries never apply a change
// twice.
var casScript = redis.NewScript(`
local cur = redis.call('GETRANGE', KEYS[1], 0, 7)
if cur == ARGV[1] then
  if ARGV[2] == '' then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
  end
  return 1
end
if cur == '' then
  return 0
end
if ARGV[2] ~= '' and cur == string.sub(ARGV[2], 1, 8) then
  return 1
end
return -1
`)
