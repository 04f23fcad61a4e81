package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/stores"
)

// Errors of this package. Both also match stores.ErrUnavailable, so that
// the Manager's middleware answers 503 Service Unavailable for them, as
// for a server that is down; match them with errors.Is to tell them apart.
var (
	// ErrOutOfMemory is returned when Redis refuses a write because it
	// reached its maxmemory limit under the noeviction policy ("OOM
	// command not allowed when used memory > 'maxmemory'"). Nothing was
	// written: the item, if any, is unchanged. Reads and deletes still
	// work on a full server. See the package documentation on memory
	// policies.
	ErrOutOfMemory = errors.New("redisstore: server out of memory (maxmemory)")

	// ErrNotReplicated is returned by writes of a store configured with
	// WithWait when fewer replicas than required acknowledged the write
	// within the timeout. The write was applied on the primary and is not
	// rolled back: it may still reach the replicas, or be lost if the
	// primary fails before it does.
	ErrNotReplicated = errors.New("redisstore: write not acknowledged by enough replicas")
)

// Errors without per-call state, allocated once.
var (
	errNotFound = fmt.Errorf("redisstore: %w", stores.ErrNotFound)
	errExists   = fmt.Errorf("redisstore: %w", stores.ErrExists)
	errClosed   = fmt.Errorf("redisstore: %w", stores.ErrClosed)
	errConflict = fmt.Errorf("redisstore: update: %w", stores.ErrConflict)
)

// fail wraps an error of the client for operation op:
//
//   - a done context (or one whose deadline has passed): its error;
//   - an OOM reply: ErrOutOfMemory and stores.ErrUnavailable;
//   - a reply saying the server cannot serve now (LOADING, READONLY,
//     MASTERDOWN, CLUSTERDOWN, TRYAGAIN, BUSY, max clients), and every
//     error that is not a server reply (network errors, timeouts, a
//     refused connection, pool timeouts, unreachable sentinels or
//     cluster nodes): stores.ErrUnavailable;
//   - any other reply (WRONGTYPE, NOPERM, NOAUTH, ...): wrapped as is.
func fail(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("redisstore: %s: %w", op, ctxErr)
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		// The client's socket deadline (ContextTimeoutEnabled) can fire
		// an instant before ctx reports its own.
		return fmt.Errorf("redisstore: %s: %w", op, context.DeadlineExceeded)
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// A context error without a done ctx: the client's own dial
		// or pool deadline.
		return fmt.Errorf("redisstore: %s: %w: %w", op, stores.ErrUnavailable, err)
	case redis.IsOOMError(err) || redis.HasErrorPrefix(err, "OOM "):
		return fmt.Errorf("redisstore: %s: %w: %w: %w", op, ErrOutOfMemory, stores.ErrUnavailable, err)
	case isUnavailable(err):
		return fmt.Errorf("redisstore: %s: %w: %w", op, stores.ErrUnavailable, err)
	default:
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
}

// unavailablePrefixes start the server replies that mean "not now".
var unavailablePrefixes = []string{
	"LOADING ", "READONLY ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ",
	"BUSY ", "NOREPLICAS ", "max number of clients",
}

// isUnavailable reports whether err says the server cannot be reached or
// cannot serve now.
func isUnavailable(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return true // not a server reply: the network, the pool, routing
	}
	msg := strings.TrimPrefix(rerr.Error(), "ERR ")
	for _, p := range unavailablePrefixes {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// isNoScript reports whether err is the server's NOSCRIPT reply.
func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}
