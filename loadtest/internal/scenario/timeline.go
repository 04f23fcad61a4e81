package scenario

import (
	"time"

	"github.com/securestack/ginsession/loadtest/internal/load"
)

// Helpers over a run's events (load.Result.Events), whose times are
// offsets from the run's start. A failure is an error or a 5xx answer
// (load.Event.Failed); a success a 200.

// firstOK returns the end of the first 200 among requests that started at
// or after t.
func firstOK(events []load.Event, t time.Duration) (time.Duration, bool) {
	best, found := time.Duration(0), false
	for _, e := range events {
		if e.Start >= t && e.OK() && (!found || e.End < best) {
			best, found = e.End, true
		}
	}
	return best, found
}

// lastFailureStartedAfter returns the end of the last failure among
// requests that started at or after t.
func lastFailureStartedAfter(events []load.Event, t time.Duration) (time.Duration, bool) {
	best, found := time.Duration(0), false
	for _, e := range events {
		if e.Start >= t && e.Failed() && e.End > best {
			best, found = e.End, true
		}
	}
	return best, found
}

// firstFailureEnd returns the first end of a failure at or after t.
func firstFailureEnd(events []load.Event, t time.Duration) (time.Duration, bool) {
	best, found := time.Duration(0), false
	for _, e := range events {
		if e.End >= t && e.Failed() && (!found || e.End < best) {
			best, found = e.End, true
		}
	}
	return best, found
}

// lastFailureEnd returns the last end of a failure.
func lastFailureEnd(events []load.Event) (time.Duration, bool) {
	best, found := time.Duration(0), false
	for _, e := range events {
		if e.Failed() && e.End > best {
			best, found = e.End, true
		}
	}
	return best, found
}

// failuresEndingBefore counts the failures that ended before t.
func failuresEndingBefore(events []load.Event, t time.Duration) int {
	n := 0
	for _, e := range events {
		if e.Failed() && e.End < t {
			n++
		}
	}
	return n
}

// failuresStartingAfter counts the failures among requests that started
// after t.
func failuresStartingAfter(events []load.Event, t time.Duration) int {
	n := 0
	for _, e := range events {
		if e.Failed() && e.Start > t {
			n++
		}
	}
	return n
}

// filterOps returns the events of the given kinds of request.
func filterOps(events []load.Event, ops ...load.Op) []load.Event {
	var out []load.Event
	for _, e := range events {
		for _, op := range ops {
			if e.Op == op {
				out = append(out, e)
				break
			}
		}
	}
	return out
}
