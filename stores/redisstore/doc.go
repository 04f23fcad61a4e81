// Package redisstore is ginsession's session store on Redis, through the
// go-redis client the application already has: a single server, a
// Sentinel failover client or a Cluster client (redis.UniversalClient).
// It is a module of its own, so that applications that do not use Redis
// never download a Redis client.
//
// Each operation of stores.Store is one Redis command:
//
//	Get         GET key (the value carries the item's expiry)
//	Add         SET key value NX PXAT t GET
//	Touch       one Lua script: PEXPIREAT key t, and the copy of t in the value
//	Delete      DEL key
//	UpdateFrom  one Lua script: compare the version, then SET ... PXAT, or DEL
//	Update      Get, then that script; retried when another writer got there first
//
// so a request that reads its session costs one round trip, and one that
// changes it one more (stores.UpdaterFrom). Updates are atomic without
// WATCH: concurrent merges into one session all keep their writes, and a
// deleted session is never brought back. Every script touches a single
// key, so Redis Cluster works without hash tags, and sessions spread over
// its nodes. Scripts are sent by their SHA-1 (EVALSHA); after a restart, a
// failover or SCRIPT FLUSH the server answers NOSCRIPT and the script is
// sent once in full (EVAL), transparently. Reads use no script: a GET costs
// the server a fraction of an EVALSHA. Redis 7.0 or later is required (SET
// NX with GET), or Valkey.
//
// A LimiterBackend keeps a sliding-window rate limiter's history in Redis
// too, one Lua script per admission, so that all instances of an
// application share one exact limit.
//
// # Keys, values and versions
//
// A key is the prefix (WithPrefix, default "gs:") followed by the
// 43-character base64url form of the stores.Key, a digest of the session
// ID: the raw ID never reaches Redis, its logs or a dump of it. A value is
// an 8-byte random version, the item's expiry in Unix milliseconds (8
// bytes), then the record in the compact, versioned binary form of package
// stores/codec (no gob, no JSON, no reflection),
// under which every value type of stores.CheckValue reads back with the
// same Go type and value as from the memory store.
//
// Every write draws a new random 64-bit version, which Get reports as
// stores.Item.Version and the compare-and-swap script checks. Versions are
// random rather than counters because keys are deleted and created again
// (a user's index, a revoked session's tombstone): a counter restarting
// after a deletion would let a stale compare-and-swap succeed (ABA). A
// random version also makes writes safe to repeat: go-redis sends a command
// again when its reply is lost (MaxRetries), and a write that finds its own
// new version already stored reports success instead of stores.ErrExists
// or a conflict, so it is never applied twice.
//
// Values over the size limit (WithMaxItemSize, default 1 MiB) fail with
// stores.ErrTooLarge before they are sent, and the stored item is left
// unchanged. Redis itself takes values up to 512 MiB and drops the
// connection of a client that sends a longer one, which would look like an
// outage.
//
// # Expiry
//
// Redis's own expiry is the authority on whether an item lives: Add and
// Update write it with PXAT, and Touch with PEXPIREAT. Each also writes the
// same instant into the value, which Get reads back, so
// stores.Item.ExpiresAt is exact to the millisecond and shows a refresh
// made by any instance. On a full server (maxmemory under noeviction),
// which refuses the rewrite of the value, Touch sets the key's expiry
// alone, and Get reports the older instant, one the item lives at least
// until, as the stores.Store contract allows. Expiries are absolute Unix
// milliseconds, rounded down (an item never outlives its deadline), and
// compared with the server's clock: keep the application's and the servers'
// clocks synchronized (NTP). An expiry at or before now is sent as PXAT 1, a
// moment long past for any clock, so the item is gone at once; the store
// never sends a relative duration, and never one of zero or less, which
// go-redis would turn into a key that never expires (go-redis#1948).
// Expiries after 2262 are kept as 2262, as in the memory store.
//
// # Errors
//
//	server down, refused, unreachable, timing out,   stores.ErrUnavailable (wrapped around the cause)
//	  LOADING, READONLY, MASTERDOWN, CLUSTERDOWN,
//	  TRYAGAIN, BUSY, max clients, pool timeout
//	write refused at maxmemory (noeviction)          ErrOutOfMemory, also stores.ErrUnavailable
//	WithWait: too few replicas acknowledged          ErrNotReplicated, also stores.ErrUnavailable
//	value over WithMaxItemSize                       stores.ErrTooLarge (nothing sent)
//	done context                                     its error (before sending: nothing sent)
//	stored bytes that do not decode                  codec.ErrMalformed
//	other replies (WRONGTYPE, NOPERM, NOAUTH, ...)   wrapped as they are
//
// The Manager's middleware answers 503 Service Unavailable for errors
// matching stores.ErrUnavailable, and the application recovers by itself as
// soon as Redis is back. Error messages start with "redisstore: " and never
// hold a key.
//
// # Production: Redis
//
// What Redis promises, and what it does not:
//
//   - Replication is asynchronous. A primary acknowledges a write before
//     any replica has it, so a failover (Sentinel or Cluster) can lose the
//     last writes: a new session (the user logs in again), a data change,
//     or a logout or revocation, whose session then comes back. WithWait
//     makes every write wait until replicas acknowledged it (WAIT) and
//     report ErrNotReplicated when they did not in time; it narrows the
//     window, it does not make Redis strongly consistent (a replica's copy
//     is in memory, and a write that timed out stays on the primary).
//   - Persistence is configuration. With neither RDB snapshots nor the AOF
//     (save "" and appendonly no), a restart loses every session. With the
//     AOF and appendfsync everysec (the usual choice), a crash loses up to
//     about a second of writes; always is durable and slow; RDB alone loses
//     everything since the last snapshot.
//   - Memory: with maxmemory set, maxmemory-policy decides what happens
//     when it is reached. noeviction (the default) refuses writes: logins
//     and session changes fail with ErrOutOfMemory (503) while reads,
//     refreshes and logouts keep working, and nothing is lost silently.
//     allkeys-lru, allkeys-lfu and allkeys-random evict live sessions, which
//     logs those users out, and can evict a user's index or a revocation's
//     tombstone. Every key of this store has an expiry, so the volatile-*
//     policies treat sessions like the allkeys-* ones; volatile-ttl evicts
//     the sessions closest to expiring first, the least harm if eviction
//     must be. Prefer a Redis (or a database) of its own for sessions, with
//     noeviction and an alert on used_memory well below maxmemory; on a
//     shared cache with an eviction policy, sessions are as volatile as in
//     memcached.
//   - Clocks: expiries are absolute times judged by the server's clock, so
//     the application's and the servers' clocks must agree (NTP).
//
// # Client settings
//
// The store uses the client as it is given. go-redis's defaults suit a
// cache more than a session store, whose every request waits on it:
//
//	redis.NewClient(&redis.Options{
//		Addr:                  "redis:6379",
//		DialTimeout:           500 * time.Millisecond,
//		ReadTimeout:           500 * time.Millisecond,
//		WriteTimeout:          500 * time.Millisecond,
//		ContextTimeoutEnabled: true,
//		MaxRetries:            1,
//		DialerRetries:         1,
//		PoolSize:              256, // peak concurrent requests per process
//		PoolTimeout:           time.Second,
//	})
//
// Each setting, and why:
//
//   - Timeouts: a session command takes well under a millisecond on a LAN;
//     500ms bounds how long a request waits for a hung server. The
//     defaults (5s dial, 5s read) hold requests far longer.
//   - ContextTimeoutEnabled: without it go-redis ignores the request's
//     context deadline once a command is sent. The store checks the
//     context before each command either way, so a canceled request sends
//     nothing.
//   - MaxRetries and DialerRetries: by default go-redis retries a failed
//     command 3 times with backoff, and each dial 5 times 100ms apart, so
//     with the server down a Get takes about 1.7s to fail (measured here,
//     TestUnavailableDefaultClient). With MaxRetries 1 and DialerRetries 1
//     it fails in about 20ms, and a hung server costs (MaxRetries+1) ×
//     ReadTimeout. Retried writes are safe (see Keys, values and versions).
//   - PoolSize bounds the connections, hence the concurrent commands, per
//     process (default 10 per CPU); a command that finds them all busy
//     waits up to PoolTimeout (default ReadTimeout + 1s) and fails with
//     stores.ErrUnavailable. Unlike gomemcache's, go-redis's pool keeps
//     the connections it opened: BenchmarkPoolSize opens well under one
//     connection per thousand reads, whatever the size.
//   - Do not route reads to replicas (ReadOnly, RouteByLatency,
//     RouteRandomly) and do not cache session keys on the client
//     (client-side caching): both can serve a session after its logout.
//     New refuses a cluster client set to route reads to replicas: the
//     store's reads are plain GETs, which such a client would send there.
//   - With WithWait, ReadTimeout must exceed the WAIT timeout.
//   - Cluster: set ClusterStateReloadInterval to about a second. go-redis
//     re-reads the slot map every 60 seconds by default, and a refused
//     connection does not make it look again, so after a master fails its
//     replica's promotion goes unseen: sessions in the failed master's
//     slots stayed unreachable for about 40 s in the failover run of
//     RELIABILITY.md, against about 2.4 s with 1 s. Run the cluster with
//     cluster-require-full-coverage no, or requests for the other masters'
//     sessions fail too while a master is down.
//   - A restarted server is seen again within about a second: go-redis
//     stops dialing after repeated failures and probes once a second.
//
// A Store is safe for concurrent use.
package redisstore
