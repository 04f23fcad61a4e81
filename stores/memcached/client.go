package memcached

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/securestack/ginsession/stores"
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

// client is the memcached plumbing that Store and LimiterBackend share: it
// builds keys, sends commands through a gomemcache Client, sends a command
// again when it failed on a connection the server had closed, and maps the
// Client's errors to the sentinels of package stores.
//
// It never closes the Client, which may be the caller's and shared with
// other code; only Store.Close closes a Client that NewFromServers built.
// A client is immutable, so it is safe for concurrent use, as the gomemcache
// Client is.
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

// The commands. Each returns nil, one of the protocol answers
// memcache.ErrCacheMiss, memcache.ErrNotStored and memcache.ErrCASConflict
// as they are (what they mean depends on the caller), or an error from
// fail, whose message starts with "memcached: " and op.

// get runs gets (gomemcache's Get reads the CAS value too).
func (c *client) get(op, key string) (*memcache.Item, error) {
	var it *memcache.Item
	err := c.do(op, func() (err error) {
		it, err = c.mc.Get(key)
		return err
	})
	return it, err
}

// add runs add.
func (c *client) add(op string, it *memcache.Item) error {
	return c.do(op, func() error { return c.mc.Add(it) })
}

// cas runs cas with it.CasID.
func (c *client) cas(op string, it *memcache.Item) error {
	return c.do(op, func() error { return c.mc.CompareAndSwap(it) })
}

// touch runs touch.
func (c *client) touch(op, key string, exp int32) error {
	return c.do(op, func() error { return c.mc.Touch(key, exp) })
}

// delete runs delete.
func (c *client) delete(op, key string) error {
	return c.do(op, func() error { return c.mc.Delete(key) })
}

// do runs cmd, which sends one command, and sends it again while it fails
// because the server had closed the connection, at most staleRetries
// times. Then it returns cmd's error, mapped by fail unless it is a protocol
// answer.
//
// After a server restart every idle connection in the Client's pool is
// dead, and the first use of each fails with EOF, ECONNRESET or EPIPE (the
// server's end of it is gone). gomemcache closes a connection whose command
// failed, so each failed attempt takes one dead connection out of the pool,
// and once the pool is empty the Client dials a fresh one. The pool holds
// at most MaxIdleConns connections per server, hence the bound. A server
// that is down fails the dial (connection refused), which ends the retries
// at once. A timeout is never retried: the server may have run the command.
//
// Sending a command again after such an error is safe for every command,
// cas and add included: memcached answers each command it runs before it
// closes a connection, so a connection that the server had closed never
// delivered the command to a server that ran it. Either the command reached
// a process that was already gone (the previous one, before a restart), or
// the server died while running it, losing its items with it. The
// exception is a proxy between the Client and memcached that drops the
// Client's connection after forwarding a command: there a resent cas fails
// as a conflict (Update then reads the item again and calls its function
// on what it finds), and a resent add reports that the item exists.
func (c *client) do(op string, cmd func() error) error {
	err := cmd()
	if err == nil || isAnswer(err) {
		return err
	}
	for n := c.staleRetries(); n > 0 && peerClosed(err); n-- {
		err = cmd()
	}
	if err == nil || isAnswer(err) {
		return err
	}
	return fail(op, err)
}

// staleRetries returns how many times a command is sent again after it
// failed on a connection the server had closed: one more than the number
// of idle connections the Client keeps per server, all of which may be
// dead. The one more is a margin for a dead connection put back in the pool
// meanwhile by a command that succeeded just before the server went away.
func (c *client) staleRetries() int {
	n := c.mc.MaxIdleConns
	if n < 1 {
		n = memcache.DefaultMaxIdleConns // as gomemcache does
	}
	return n + 1
}

// isAnswer reports whether err is memcached's answer to a command, not a
// failure to run it.
func isAnswer(err error) bool {
	return errors.Is(err, memcache.ErrCacheMiss) || errors.Is(err, memcache.ErrNotStored) ||
		errors.Is(err, memcache.ErrCASConflict)
}

// fail wraps an error from the Client that is not a protocol answer, so
// that it matches stores.ErrTooLarge for an item the server refused as
// too large, stores.ErrUnavailable when the server could not be reached or
// failed (network error, timeout, server error), and neither otherwise.
func fail(op string, err error) error {
	switch {
	case isTooLarge(err):
		return fmt.Errorf("memcached: %s: %w: %w", op, stores.ErrTooLarge, err)
	case isUnavailable(err):
		return fmt.Errorf("memcached: %s: %w: %w", op, stores.ErrUnavailable, err)
	default:
		return fmt.Errorf("memcached: %s: %w", op, err)
	}
}

// peerClosed reports whether err says that the server had closed the
// connection.
func peerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// isUnavailable reports whether err says that the server could not be
// reached or failed.
func isUnavailable(err error) bool {
	var netErr net.Error
	var connectErr *memcache.ConnectTimeoutError
	return peerClosed(err) || errors.As(err, &netErr) || errors.As(err, &connectErr) ||
		errors.Is(err, memcache.ErrNoServers) || errors.Is(err, syscall.ECONNREFUSED) ||
		isServerError(err)
}

// isServerError reports whether err is a SERVER_ERROR reply (such as "out
// of memory storing object"), which gomemcache reports as an unexpected
// response line, or gomemcache's ErrServerError.
func isServerError(err error) bool {
	return errors.Is(err, memcache.ErrServerError) || strings.Contains(err.Error(), "SERVER_ERROR")
}

// isTooLarge reports whether err is the server's refusal of an item over
// its size limit ("SERVER_ERROR object too large for cache").
func isTooLarge(err error) bool {
	return strings.Contains(err.Error(), "object too large")
}
