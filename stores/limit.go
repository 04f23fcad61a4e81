package stores

import (
	"context"
	"time"
)

// Decision is the outcome of one admission attempt by a sliding-window rate
// limiter. The zero value is a refusal with nothing more known.
type Decision struct {
	// Allowed reports whether the event was admitted (and recorded).
	Allowed bool

	// Remaining is how many more events the key may have admitted before
	// the oldest admission still in the window leaves it. It is zero when
	// the event was refused.
	Remaining int

	// RetryAfter is zero when the event was admitted. Otherwise it is how
	// long, from the time passed to the limiter, until an event for the key
	// would be admitted, assuming no other admission happens in between.
	RetryAfter time.Duration

	// ResetAfter is how long, from the time passed to the limiter, until
	// the oldest admission in the key's window leaves it and Remaining
	// grows by at least one. It is zero when the window holds no admission.
	// For a refusal it equals RetryAfter.
	ResetAfter time.Duration
}

// LimiterBackend keeps the admission history of a sliding-window rate
// limiter outside the process. Package ginsession's Limiter keeps its
// history in process unless given one; package stores/memcached provides a
// LimiterBackend that several application instances share.
//
// Implementations are safe for concurrent use.
type LimiterBackend interface {
	// Admit decides whether one event for key at time now is admitted
	// under the policy "at most limit events in any interval of length
	// window", records it if so, and returns the decision.
	//
	// Implementations keep that guarantee exactly for the admission times
	// they record, whatever the order in which calls and their now values
	// arrive: an admission is recorded no earlier than the latest
	// admission already recorded for the key, so a now that steps back is
	// decided, and recorded, at that later instant. They may refuse early,
	// never admit more, and document by how much.
	//
	// limit and window come with every call, so that one backend may serve
	// several limiters whose keys differ; a key must always be used with
	// the same limit and window.
	//
	// On error, the returned Decision is meaningless and the outcome is
	// unknown: the admission may or may not have been recorded. Errors
	// wrap ErrUnavailable when the backend cannot be reached, ErrConflict
	// when concurrent writers kept it from recording within its retry
	// bound, and ErrTooLarge when the history does not fit the backend's
	// item size. A context that is done is reported as its error.
	Admit(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (Decision, error)
}
