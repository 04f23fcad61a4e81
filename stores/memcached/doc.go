// Package memcached is ginsession's production session store, on memcached.
//
// Several application instances share sessions through one memcached
// server or a pool of them (gomemcache spreads keys over the servers of a
// client). Each operation of stores.Store maps to one memcached command, or
// a few: Get is get, Add is add, Touch is touch (the value is not
// rewritten), Delete is delete, and Update is gets then cas, retried a
// bounded number of times when another writer got there first, so that
// concurrent merges into one session all keep their writes and a deleted
// session is never brought back. Updates of one session through one Store
// take turns in process, so only other instances' writes make a cas fail.
//
// # What memcached promises, and what it does not
//
// memcached is a cache. It keeps an item until the item's expiry, unless
// it needs the memory first: under memory pressure it evicts the least
// recently used items, live sessions included, and those users are logged
// out. Size the server's memory (-m) for the sessions you keep, and watch
// its "evictions" statistic. A server that restarts or is lost takes its
// sessions with it; with several servers, a server's loss loses the
// sessions that hashed to it, and there is no replication. Nothing is
// written to disk. This package says so plainly instead of hiding it:
// when a session matters more than a login, use a store with durability.
//
// memcached does not report an item's remaining lifetime, so
// stores.Item.ExpiresAt is an "at least until" time: the expiry written
// with the record, or a later one set by this process's Touch (remembered
// in a bounded in-process cache, see WithTouchCacheSize). The item's
// presence in memcached is the authority on whether it lives.
//
// # Expiry
//
// Lifetimes follow memcached's rules: up to 30 days they are sent as
// relative seconds, rounded up plus one second (memcached's clock ticks
// once a second, and an item must not expire early); beyond, as absolute
// Unix times, rounded up, which memcached compares with its wall clock (so
// the servers' clocks must be right). A lifetime is never sent as 0, which
// memcached reads as "never expire"; an expiry in the past expires the
// item at once. Absolute times end in 2038 (32 bits): later expiries are
// capped there.
//
// # Keys and values
//
// A memcached key is the prefix (WithPrefix, default "gs:") followed by the
// 43-character base64url form of the stores.Key, a digest of the session
// ID: the raw ID never reaches memcached. Values use the compact, versioned
// binary form of package stores/codec (no gob, no JSON, no reflection),
// under which every value type of stores.CheckValue reads back with the
// same Go type and value as from the memory store. Decoding never panics
// and allocates in proportion to the input, whatever lengths it claims.
// Items over the size limit (WithMaxItemSize, memcached's -I, default
// 1 MiB) fail with stores.ErrTooLarge before they are sent, and the
// server's own refusal maps to the same error; the stored item is left
// unchanged.
//
// # Connections and timeouts
//
// gomemcache's Client has no context: a Store checks ctx before each
// command (a canceled request sends nothing), and the client's Timeout
// bounds each dial, read and write. When the server cannot be reached,
// operations of a Store or a LimiterBackend fail with an error matching
// stores.ErrUnavailable (never stores.ErrNotFound): at once when the
// connection is refused, after the Timeout when the server does not
// answer. They work again as soon as the server is back, without a restart
// of the application.
//
// A server restart leaves every idle connection of the client dead, and
// the first use of each fails; gomemcache then closes it. So a command that
// fails because the server had closed its connection (EOF, ECONNRESET,
// EPIPE) is sent again, on the next idle connection or a new one, up to
// the client's MaxIdleConns plus one times (MaxIdleConns is 2 when unset,
// as in gomemcache), and the first operations after a restart succeed. This
// is safe for every command, cas and add included: memcached answers each
// command it runs before it closes a connection, so the command was not
// run, or was run by a server that died with its items. (It assumes that
// the client talks to memcached itself, not through a proxy that may drop
// a connection after forwarding a command.) A timeout is not retried: the
// server may have run the command.
//
// The package never closes a client passed to New or NewLimiterBackend,
// not even its idle connections, so one client may serve a Store,
// LimiterBackends and other code. Store.Close closes the idle connections
// of a client that NewFromServers built, and nothing else.
//
// NewFromServers builds a client with DefaultTimeout (500ms, gomemcache's
// own) and DefaultMaxIdleConns (64). gomemcache keeps 2 idle connections
// per server by default, which thrashes under concurrency: a command that
// finds no idle connection dials a new one, and every connection released
// while 2 are already idle is closed. BenchmarkIdleConns measures it on a
// local server (2 CPUs), with goroutines that do a Get, then 0-400µs of
// other work, as request handlers do:
//
//	goroutines  MaxIdleConns  connections dialled per Get  time per Get
//	         8             2                         0.21
//	         8            32                         0.0008
//	        64             2                         0.33          46µs
//	        64            32                         0.044         23µs
//	        64            64                         0.0009        20µs
//
// With 2 idle connections a third of the commands pay for a TCP handshake
// (and the server for an accept and a close); a pool as large as the
// number of concurrent requests removes that. Goroutines that call the
// store back to back, as a plain parallel benchmark does, hide the effect:
// each takes the connection it has just released. Clients passed to New
// or NewLimiterBackend are used as they are: set their MaxIdleConns at or
// above your peak number of concurrent requests per server, and their
// Timeout.
package memcached
