package redisstore

import "github.com/redis/go-redis/v9"

// The store's Lua scripts. Each touches KEYS[1] only, so that in Redis
// Cluster it runs on the node owning that key's slot, with no hash tags.
// go-redis sends a script by its SHA-1 (EVALSHA) and falls back to EVAL
// when the server does not know it (NOSCRIPT: after a restart, a failover
// or SCRIPT FLUSH), so a script costs one command, two the first time a
// server sees it.
//
// A stored value is an 8-byte random version followed by the codec bytes
// of the record; see Store.

// getScript reads an item in one command: its value and its absolute
// expiry in Unix milliseconds (PEXPIRETIME, Redis 7.0+; -1 if the key has
// no expiry). It returns false (a nil reply) for a missing key.
//
// It is run with EVALSHA, not EVALSHA_RO: go-redis routes read-only
// commands to replicas when a cluster client has ReadOnly set, and a
// replica can still hold a session that was just revoked.
var getScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  return false
end
return {v, redis.call('PEXPIRETIME', KEYS[1])}
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
