// Package storetest holds the conformance suites for implementations of
// stores.Store (Run) and stores.LimiterBackend (RunLimiterBackend).
//
// A store's test calls Run with a factory for fresh stores; each contract
// point of stores.Store is a subtest on a store of its own:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Harness {
//			clock := storetest.NewClock(time.Now())
//			return storetest.Harness{
//				Store:       mystore.New(mystore.WithClock(clock.Now)),
//				Now:         clock.Now,
//				Advance:     clock.Advance,
//				ExactExpiry: true,
//			}
//		})
//	}
//
// A limiter backend's test calls RunLimiterBackend with a factory for
// fresh histories, each seen by two backends, as two application instances
// see one server:
//
//	func TestLimiterConformance(t *testing.T) {
//		storetest.RunLimiterBackend(t, func(t *testing.T) storetest.LimiterHarness {
//			prefix := uniquePrefix()
//			return storetest.LimiterHarness{
//				Instances: [2]stores.LimiterBackend{
//					mylimiter.New(newClient(t), prefix),
//					mylimiter.New(newClient(t), prefix),
//				},
//				Exact: true,
//			}
//		})
//	}
//
// Like golang.org/x/net/nettest.TestConn and testing/fstest.TestFS, the
// suites have no false positives: every failure is a broken contract
// point. They run many goroutines against one key in places and are meant
// to be run with -race.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/stores"
)

// Harness is a fresh store under test and the means to control its clock.
type Harness struct {
	// Store is the store under test. It must hold nothing under the keys
	// the suite uses, which are digests of a counter and the time. The
	// suite closes it when the subtest ends.
	Store stores.Store

	// Now returns the store's current time. Nil means time.Now. It must
	// be set when Advance is.
	Now func() time.Time

	// Advance moves the store's clock forward by d. Nil means the store
	// runs on the real clock: the suite then waits in real time, with
	// lifetimes of about a second (memcached's resolution), and runs
	// those subtests in parallel so that the waits overlap. A factory
	// without Advance must therefore return stores that can be used
	// concurrently with each other.
	Advance func(d time.Duration)

	// ExactExpiry declares that Get reports Item.ExpiresAt exactly as
	// written (memory stores). Otherwise the suite accepts a report up to
	// one second before the requested expiry, and never after it: an
	// "at least until" time.
	ExactExpiry bool
}

// Lifetimes used by the suite. Real-clock stores see short lifetimes so
// that expiry subtests finish in a few seconds.
const (
	// long is a lifetime that no subtest outlives.
	long = time.Hour
	// short is the lifetime of items a subtest waits to expire.
	short = time.Second
	// grace is how long after its deadline a real-clock item may linger
	// (memcached's clock ticks once a second).
	grace = 3 * time.Second
)

// Run runs the conformance suite. newHarness is called once per subtest,
// with that subtest's t, and must return a Harness with a fresh store.
//
// The subtests check: Get of a missing key; Add then Get, every Record
// field and value type read back as written (see FidelityData) with the
// expiry reported; Add over a live item (ErrExists, nothing changed) and
// over an expired one; expiry at the deadline, and an expiry in the past or
// now meaning "gone at once" for Add, Touch and Update; Touch extending a
// lifetime, and on a missing key; Update applying its function, deleting on
// a nil record, returning the function's error as is with nothing written,
// and never creating a missing item; Delete, also of a missing key; a
// canceled context; Close being idempotent, with ErrClosed after it; 50
// goroutines merging 20 keys each into one item, all 1000 kept (an
// ErrConflict is retried, as the contract allows); and Delete racing with
// Updates, the item staying deleted; for stores that implement
// stores.UpdaterFrom, UpdateFrom writing from a fresh item, falling back
// to a read when its version is stale (nothing lost), and never creating a
// deleted item. On a real clock the suite takes about
// three seconds.
//
// newHarness is called once per subtest, with that subtest's t, and must
// return a Harness with a fresh store; stores on the real clock return one
// with only Store set.
func Run(t *testing.T, newHarness MakeStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *harness)
		// realWait marks subtests that wait on the store's clock; on a
		// real clock they run in parallel.
		realWait bool
	}{
		{"GetMissing", testGetMissing, false},
		{"AddGet", testAddGet, false},
		{"AddExisting", testAddExisting, false},
		{"AddAfterExpiry", testAddAfterExpiry, true},
		{"Expiry", testExpiry, true},
		{"ExpiryInPast", testExpiryInPast, false},
		{"TouchExtends", testTouchExtends, true},
		{"TouchMissing", testTouchMissing, false},
		{"UpdateApplies", testUpdateApplies, false},
		{"UpdateNilDeletes", testUpdateNilDeletes, false},
		{"UpdateFuncError", testUpdateFuncError, false},
		{"UpdateMissing", testUpdateMissing, false},
		{"Delete", testDelete, false},
		{"DeleteMissing", testDeleteMissing, false},
		{"CanceledContext", testCanceledContext, false},
		{"Close", testClose, false},
		{"ConcurrentMerge", testConcurrentMerge, false},
		{"NoResurrection", testNoResurrection, false},
		{"ValueFidelity", testValueFidelity, false},
		{"RecordRoundTrip", testRecordRoundTrip, false},
		{"UpdateFrom", testUpdateFrom, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			require.NotNil(t, h.Store, "storetest: Harness.Store is nil")
			if h.Advance != nil {
				require.NotNil(t, h.Now, "storetest: Harness.Advance set without Harness.Now")
			} else if tt.realWait {
				t.Parallel()
			}
			if h.Now == nil {
				h.Now = time.Now
			}
			t.Cleanup(func() { _ = h.Store.Close() })
			tt.fn(t, &harness{Harness: h, t: t})
		})
	}
}

// MakeStore returns a Harness with a fresh store for one subtest, reporting
// to that subtest's t. Run calls it once per subtest, as
// nettest.TestConn calls its MakePipe.
type MakeStore func(t *testing.T) Harness

// Clock is a fake clock for tests: it stands still until Advance or Set
// moves it, so that expiry is tested in steps instead of sleeps. Pass its
// Now method to a store's or Manager's clock option, and its Advance
// method to Harness.Advance. A Clock is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward for a negative d).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// harness wraps a Harness with the suite's helpers, which report to t.
type harness struct {
	Harness
	t *testing.T
}

// with returns the harness reporting to the subtest t.
func (h *harness) with(t *testing.T) *harness {
	return &harness{Harness: h.Harness, t: t}
}

var keySeq atomic.Uint64

// newKey returns a key no other subtest uses.
func newKey() stores.Key {
	return stores.Key(sha256.Sum256([]byte("storetest:" + strconv.FormatUint(keySeq.Add(1), 10) + ":" + time.Now().String())))
}

// wait lets d pass on the store's clock.
func (h *harness) wait(d time.Duration) {
	if h.Advance != nil {
		h.Advance(d)
		return
	}
	time.Sleep(d)
}

// lifetime returns the expiry of an item that a subtest will see expire.
func (h *harness) lifetime() time.Time {
	return h.Now().Add(short)
}

// waitGone waits until key's item is gone, which must happen at deadline
// (fake clock) or within grace after it (real clock), and not before.
func (h *harness) waitGone(key stores.Key, deadline time.Time) {
	t := h.t
	t.Helper()
	ctx := context.Background()
	if h.Advance != nil {
		h.Advance(deadline.Sub(h.Now()) - time.Nanosecond)
		_, err := h.Store.Get(ctx, key)
		require.NoError(t, err, "item gone before its expiry")
		h.Advance(time.Nanosecond)
		_, err = h.Store.Get(ctx, key)
		require.ErrorIs(t, err, stores.ErrNotFound, "item alive at its expiry")
		return
	}
	for {
		_, err := h.Store.Get(ctx, key)
		now := time.Now()
		if errors.Is(err, stores.ErrNotFound) {
			require.False(t, now.Before(deadline), "item gone %v before its expiry", deadline.Sub(now))
			return
		}
		require.NoError(t, err)
		require.True(t, now.Before(deadline.Add(grace)), "item alive %v after its expiry", now.Sub(deadline))
		time.Sleep(50 * time.Millisecond)
	}
}

// checkExpiry checks a reported expiry against the requested one.
func (h *harness) checkExpiry(want, got time.Time) {
	h.t.Helper()
	if h.ExactExpiry {
		assert.True(h.t, got.Equal(want), "ExpiresAt = %v, want exactly %v", got, want)
		return
	}
	assert.False(h.t, got.Before(want.Add(-time.Second)), "ExpiresAt = %v, more than 1s before the requested %v", got, want)
	assert.False(h.t, got.After(want), "ExpiresAt = %v, after the requested %v", got, want)
}

// add stores rec under key and fails the test on error.
func (h *harness) add(key stores.Key, rec *stores.Record, exp time.Time) {
	h.t.Helper()
	require.NoError(h.t, h.Store.Add(context.Background(), key, rec, exp))
}

// get returns key's item and fails the test on error.
func (h *harness) get(key stores.Key) stores.Item {
	h.t.Helper()
	it, err := h.Store.Get(context.Background(), key)
	require.NoError(h.t, err)
	require.NotNil(h.t, it.Record)
	return it
}

// requireGone checks that key has no live item.
func (h *harness) requireGone(key stores.Key) {
	h.t.Helper()
	it, err := h.Store.Get(context.Background(), key)
	require.ErrorIs(h.t, err, stores.ErrNotFound, "got %+v", it.Record)
}

// simple returns a small record.
func simple(user string) *stores.Record {
	return &stores.Record{
		UserID:    user,
		Data:      map[string]any{"n": 1},
		Kind:      stores.KindSession,
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano(),
	}
}

// merge returns an UpdateFunc that merges changes into the data and keeps
// the expiry.
func merge(changes map[string]any) stores.UpdateFunc {
	return func(cur stores.Item) (*stores.Record, time.Time, error) {
		data, err := stores.MergeData(cur.Record.Data, changes)
		if err != nil {
			return nil, time.Time{}, err
		}
		next := *cur.Record
		next.Data = data
		return &next, cur.ExpiresAt, nil
	}
}

func testGetMissing(t *testing.T, h *harness) {
	it, err := h.Store.Get(context.Background(), newKey())
	require.ErrorIs(t, err, stores.ErrNotFound)
	assert.Nil(t, it.Record)
}

func testAddGet(t *testing.T, h *harness) {
	key := newKey()
	exp := h.Now().Add(long)
	h.add(key, simple("alice"), exp)
	it := h.get(key)
	requireRecordEqual(t, simple("alice"), it.Record)
	h.checkExpiry(exp, it.ExpiresAt)
}

func testAddExisting(t *testing.T, h *harness) {
	key := newKey()
	exp := h.Now().Add(long)
	h.add(key, simple("alice"), exp)
	err := h.Store.Add(context.Background(), key, simple("mallory"), exp.Add(time.Hour))
	require.ErrorIs(t, err, stores.ErrExists)
	it := h.get(key)
	requireRecordEqual(t, simple("alice"), it.Record)
	h.checkExpiry(exp, it.ExpiresAt)
}

func testAddAfterExpiry(t *testing.T, h *harness) {
	key := newKey()
	exp := h.lifetime()
	h.add(key, simple("alice"), exp)
	h.waitGone(key, exp)
	h.add(key, simple("bob"), h.Now().Add(long))
	requireRecordEqual(t, simple("bob"), h.get(key).Record)
}

func testExpiry(t *testing.T, h *harness) {
	key, other := newKey(), newKey()
	exp := h.lifetime()
	h.add(key, simple("alice"), exp)
	h.add(other, simple("bob"), h.Now().Add(long))
	h.get(key)
	h.waitGone(key, exp)
	requireRecordEqual(t, simple("bob"), h.get(other).Record)
}

func testExpiryInPast(t *testing.T, h *harness) {
	ctx := context.Background()
	t.Run("Add", func(t *testing.T) {
		h := h.with(t)
		key := newKey()
		require.NoError(t, h.Store.Add(ctx, key, simple("alice"), h.Now().Add(-time.Second)))
		h.requireGone(key)
		h.add(key, simple("bob"), h.Now().Add(long)) // the dead item does not block Add
		requireRecordEqual(t, simple("bob"), h.get(key).Record)
	})
	t.Run("AddNow", func(t *testing.T) {
		h := h.with(t)
		key := newKey()
		require.NoError(t, h.Store.Add(ctx, key, simple("alice"), h.Now()))
		h.requireGone(key)
	})
	t.Run("Touch", func(t *testing.T) {
		h := h.with(t)
		key := newKey()
		h.add(key, simple("alice"), h.Now().Add(long))
		require.NoError(t, h.Store.Touch(ctx, key, h.Now().Add(-time.Hour)))
		h.requireGone(key)
	})
	t.Run("Update", func(t *testing.T) {
		h := h.with(t)
		key := newKey()
		h.add(key, simple("alice"), h.Now().Add(long))
		err := h.Store.Update(ctx, key, func(cur stores.Item) (*stores.Record, time.Time, error) {
			return cur.Record, h.Now().Add(-time.Minute), nil
		})
		require.NoError(t, err)
		h.requireGone(key)
	})
}

func testTouchExtends(t *testing.T, h *harness) {
	ctx := context.Background()
	key := newKey()
	old := h.lifetime()
	h.add(key, simple("alice"), old)
	next := h.Now().Add(10 * short)
	require.NoError(t, h.Store.Touch(ctx, key, next))
	it := h.get(key)
	requireRecordEqual(t, simple("alice"), it.Record)
	h.checkExpiry(next, it.ExpiresAt)

	// Past the old deadline, including a real clock's grace, the item
	// lives on.
	wait := old.Sub(h.Now()) + time.Nanosecond
	if h.Advance == nil {
		wait += short + 200*time.Millisecond
	}
	h.wait(wait)
	it = h.get(key)
	requireRecordEqual(t, simple("alice"), it.Record)
	h.checkExpiry(next, it.ExpiresAt)
}

func testTouchMissing(t *testing.T, h *harness) {
	key := newKey()
	err := h.Store.Touch(context.Background(), key, h.Now().Add(long))
	require.ErrorIs(t, err, stores.ErrNotFound)
	h.requireGone(key)
}

func testUpdateApplies(t *testing.T, h *harness) {
	key := newKey()
	exp := h.Now().Add(long)
	h.add(key, simple("alice"), exp)
	next := exp.Add(time.Hour)
	var calls int
	err := h.Store.Update(context.Background(), key, func(cur stores.Item) (*stores.Record, time.Time, error) {
		calls++
		requireRecordEqual(t, simple("alice"), cur.Record)
		h.checkExpiry(exp, cur.ExpiresAt)
		rec := *cur.Record
		rec.UserID = "bob"
		rec.Data = map[string]any{"n": 2, "s": "x"}
		return &rec, next, nil
	})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, calls, 1)
	it := h.get(key)
	want := simple("bob")
	want.Data = map[string]any{"n": 2, "s": "x"}
	requireRecordEqual(t, want, it.Record)
	h.checkExpiry(next, it.ExpiresAt)
}

func testUpdateNilDeletes(t *testing.T, h *harness) {
	key := newKey()
	h.add(key, simple("alice"), h.Now().Add(long))
	err := h.Store.Update(context.Background(), key, func(stores.Item) (*stores.Record, time.Time, error) {
		return nil, time.Time{}, nil
	})
	require.NoError(t, err)
	h.requireGone(key)
	require.ErrorIs(t, h.Store.Update(context.Background(), key, merge(map[string]any{"x": 1})), stores.ErrNotFound)
}

func testUpdateFuncError(t *testing.T, h *harness) {
	key := newKey()
	exp := h.Now().Add(long)
	h.add(key, simple("alice"), exp)
	errBoom := errors.New("storetest: boom")
	err := h.Store.Update(context.Background(), key, func(cur stores.Item) (*stores.Record, time.Time, error) {
		rec := *cur.Record
		rec.UserID = "mallory"
		return &rec, exp.Add(time.Hour), errBoom
	})
	require.Equal(t, errBoom, err, "the UpdateFunc's error must be returned as is")
	it := h.get(key)
	requireRecordEqual(t, simple("alice"), it.Record)
	h.checkExpiry(exp, it.ExpiresAt)
}

func testUpdateMissing(t *testing.T, h *harness) {
	key := newKey()
	called := false
	err := h.Store.Update(context.Background(), key, func(cur stores.Item) (*stores.Record, time.Time, error) {
		called = true
		return simple("mallory"), h.Now().Add(long), nil
	})
	require.ErrorIs(t, err, stores.ErrNotFound)
	assert.False(t, called, "UpdateFunc called for a missing item")
	h.requireGone(key)
}

func testDelete(t *testing.T, h *harness) {
	key, other := newKey(), newKey()
	h.add(key, simple("alice"), h.Now().Add(long))
	h.add(other, simple("bob"), h.Now().Add(long))
	require.NoError(t, h.Store.Delete(context.Background(), key))
	h.requireGone(key)
	requireRecordEqual(t, simple("bob"), h.get(other).Record)
	require.NoError(t, h.Store.Delete(context.Background(), key), "second Delete")
}

func testDeleteMissing(t *testing.T, h *harness) {
	require.NoError(t, h.Store.Delete(context.Background(), newKey()))
}

func testCanceledContext(t *testing.T, h *harness) {
	key := newKey()
	h.add(key, simple("alice"), h.Now().Add(long))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	noop := func(cur stores.Item) (*stores.Record, time.Time, error) {
		t.Error("UpdateFunc called with a canceled context")
		return cur.Record, cur.ExpiresAt, nil
	}
	_, err := h.Store.Get(ctx, key)
	assert.ErrorIs(t, err, context.Canceled, "Get")
	assert.ErrorIs(t, h.Store.Add(ctx, newKey(), simple("bob"), h.Now().Add(long)), context.Canceled, "Add")
	assert.ErrorIs(t, h.Store.Update(ctx, key, noop), context.Canceled, "Update")
	assert.ErrorIs(t, h.Store.Touch(ctx, key, h.Now().Add(long)), context.Canceled, "Touch")
	assert.ErrorIs(t, h.Store.Delete(ctx, key), context.Canceled, "Delete")
	requireRecordEqual(t, simple("alice"), h.get(key).Record)
}

func testClose(t *testing.T, h *harness) {
	ctx := context.Background()
	key := newKey()
	h.add(key, simple("alice"), h.Now().Add(long))
	require.NoError(t, h.Store.Close())
	require.NoError(t, h.Store.Close(), "second Close")
	_, err := h.Store.Get(ctx, key)
	assert.ErrorIs(t, err, stores.ErrClosed, "Get")
	assert.ErrorIs(t, h.Store.Add(ctx, newKey(), simple("bob"), h.Now().Add(long)), stores.ErrClosed, "Add")
	assert.ErrorIs(t, h.Store.Update(ctx, key, merge(map[string]any{"x": 1})), stores.ErrClosed, "Update")
	assert.ErrorIs(t, h.Store.Touch(ctx, key, h.Now().Add(long)), stores.ErrClosed, "Touch")
	assert.ErrorIs(t, h.Store.Delete(ctx, key), stores.ErrClosed, "Delete")
}

// maxConflictRetries bounds updateRetrying.
const maxConflictRetries = 100

// updateRetrying runs Update, retrying on ErrConflict (which the contract
// allows under contention) up to maxConflictRetries times, and returns the
// number of conflicts seen and the final error.
func updateRetrying(ctx context.Context, s stores.Store, key stores.Key, fn stores.UpdateFunc) (int, error) {
	conflicts := 0
	for {
		err := s.Update(ctx, key, fn)
		if !errors.Is(err, stores.ErrConflict) || conflicts == maxConflictRetries {
			return conflicts, err
		}
		conflicts++
	}
}

func testConcurrentMerge(t *testing.T, h *harness) {
	const goroutines, perGoroutine = 50, 20
	key := newKey()
	h.add(key, &stores.Record{UserID: "alice", Data: map[string]any{}}, h.Now().Add(long))
	var (
		wg        sync.WaitGroup
		conflicts atomic.Int64
	)
	errs := make(chan error, goroutines*perGoroutine)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				k := fmt.Sprintf("g%02d-k%02d", g, i)
				c, err := updateRetrying(context.Background(), h.Store, key, merge(map[string]any{k: i}))
				conflicts.Add(int64(c))
				if err != nil {
					errs <- fmt.Errorf("%s: %w", k, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := conflicts.Load(); n > 0 {
		t.Logf("%d updates returned ErrConflict and were retried", n)
	}
	data := h.get(key).Record.Data
	require.Len(t, data, goroutines*perGoroutine, "lost updates")
	for g := range goroutines {
		for i := range perGoroutine {
			k := fmt.Sprintf("g%02d-k%02d", g, i)
			require.Equal(t, i, data[k], "key %s", k)
		}
	}
}

func testNoResurrection(t *testing.T, h *harness) {
	const goroutines, perGoroutine = 8, 25
	ctx := context.Background()
	key := newKey()
	h.add(key, &stores.Record{UserID: "alice", Data: map[string]any{}}, h.Now().Add(long))
	var (
		wg      sync.WaitGroup
		started sync.WaitGroup
		deleted atomic.Bool
	)
	errs := make(chan error, goroutines*perGoroutine)
	started.Add(goroutines)
	for g := range goroutines {
		wg.Go(func() {
			started.Done()
			for i := range perGoroutine {
				wasDeleted := deleted.Load()
				_, err := updateRetrying(ctx, h.Store, key, merge(map[string]any{fmt.Sprintf("g%d-%d", g, i): i}))
				switch {
				case err == nil && wasDeleted:
					errs <- errors.New("update succeeded after Delete returned")
				case err != nil && !errors.Is(err, stores.ErrNotFound):
					errs <- err
				}
			}
		})
	}
	started.Wait()
	require.NoError(t, h.Store.Delete(ctx, key))
	deleted.Store(true)
	h.requireGone(key)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	h.requireGone(key)
}

// FidelityData returns session data holding every value type listed in
// stores.CheckValue, with edge cases: extreme numbers, empty and nil
// slices and maps, times in UTC, in a fixed non-UTC zone and the zero time,
// and nested lists and maps. Store tests may use it beyond the suite.
func FidelityData() map[string]any {
	ist := time.FixedZone("IST", 5*3600+1800)
	minus := time.FixedZone("", -7*3600)
	when := time.Date(2024, 2, 29, 23, 59, 58, 123456789, ist)
	return map[string]any{
		"string":       "héllo, 世界",
		"stringEmpty":  "",
		"true":         true,
		"false":        false,
		"bytes":        []byte{0, 1, 0x7f, 0xff},
		"bytesEmpty":   []byte{},
		"bytesNil":     []byte(nil),
		"int":          42,
		"intMin":       math.MinInt,
		"intMax":       math.MaxInt,
		"int8":         int8(math.MinInt8),
		"int16":        int16(math.MaxInt16),
		"int32":        int32(math.MinInt32),
		"int64":        int64(math.MaxInt64),
		"int64Neg":     int64(-1),
		"uint":         uint(math.MaxUint),
		"uint8":        uint8(255),
		"uint16":       uint16(math.MaxUint16),
		"uint32":       uint32(math.MaxUint32),
		"uint64":       uint64(math.MaxUint64),
		"float32":      float32(3.25),
		"float32Small": float32(math.SmallestNonzeroFloat32),
		"float64":      math.Pi,
		"float64Inf":   math.Inf(-1),
		"float64Max":   math.MaxFloat64,
		"time":         when,
		"timeUTC":      time.Date(2025, 6, 1, 12, 0, 0, 1, time.UTC),
		"timeWest":     time.Date(1969, 7, 20, 20, 17, 40, 0, minus),
		"timeZero":     time.Time{},
		"duration":     90*time.Minute + 5*time.Nanosecond,
		"durationNeg":  -time.Second,
		"strings":      []string{"a", "", "ç"},
		"stringsEmpty": []string{},
		"stringsNil":   []string(nil),
		"ints":         []int{0, -1, math.MaxInt, math.MinInt},
		"intsEmpty":    []int{},
		"intsNil":      []int(nil),
		"list": []any{
			"x", 1, int64(2), uint8(3), float32(0.5), nil, true,
			[]byte("b"), when, time.Duration(7),
			[]any{[]any{}, []int{1}}, map[string]any{"k": uint16(9)},
			map[string]string{"a": "b"}, []string{"s"},
		},
		"listEmpty": []any{},
		"listNil":   []any(nil),
		"smap":      map[string]string{"a": "b", "": "empty key"},
		"smapEmpty": map[string]string{},
		"smapNil":   map[string]string(nil),
		"mapEmpty":  map[string]any{},
		"mapNil":    map[string]any(nil),
		"map":       map[string]any{"nil": nil, "nested": map[string]any{"deep": []any{float32(1.5), map[string]any{"t": when}}}},
		"":          "empty key",
		"unicode ☃": int32(1),
	}
}

func testValueFidelity(t *testing.T, h *harness) {
	data := FidelityData()
	for k, v := range data {
		require.NoError(t, stores.CheckValue(v), "FidelityData()[%q]", k)
	}
	rec := &stores.Record{UserID: "alice", Data: data}

	t.Run("Add", func(t *testing.T) {
		h := h.with(t)
		key := newKey()
		h.add(key, rec, h.Now().Add(long))
		requireRecordEqual(t, rec, h.get(key).Record)
	})
	t.Run("Update", func(t *testing.T) {
		h := h.with(t)
		key := newKey()
		h.add(key, &stores.Record{UserID: "alice"}, h.Now().Add(long))
		require.NoError(t, h.Store.Update(context.Background(), key, merge(FidelityData())))
		requireRecordEqual(t, rec, h.get(key).Record)
	})
}

func testRecordRoundTrip(t *testing.T, h *harness) {
	day := time.Date(2025, 3, 30, 1, 59, 59, 999999999, time.UTC).UnixNano()
	rec := &stores.Record{
		Kind:           stores.KindSession,
		Persistent:     true,
		Secret:         [stores.SecretSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		UserID:         "user-42 ✓",
		Handle:         "5b0a3c1e-8f6a-4d43-9e7b-1d2c3b4a5f60",
		Data:           map[string]any{"role": "admin", "n": 3},
		CreatedAt:      day,
		AbsoluteExpiry: day + int64(24*time.Hour),
		RenewedAt:      day + 5,
		Forwards:       []stores.Forward{{Key: stores.Key(sha256.Sum256([]byte("f1"))), Until: day + 7}},
	}
	index := &stores.Record{
		Kind:           stores.KindIndex,
		UserID:         "alice",
		AbsoluteExpiry: day + int64(24*time.Hour),
		Sessions: []stores.SessionRef{
			{
				Key: stores.Key(sha256.Sum256([]byte("s1"))), Handle: "h1",
				Pending:   []stores.Key{stores.Key(sha256.Sum256([]byte("p1"))), stores.Key(sha256.Sum256([]byte("p2")))},
				CreatedAt: day + 1, ExpiresAt: day + 2, AbsoluteExpiry: day + 3,
			},
			{Key: stores.Key(sha256.Sum256([]byte("s2"))), Handle: "", CreatedAt: math.MinInt64, AbsoluteExpiry: math.MaxInt64},
		},
	}
	for name, r := range map[string]*stores.Record{
		"Session":    rec,
		"Empty":      {},
		"Forward":    {Kind: stores.KindForward, UserID: "alice", Successor: stores.Key(sha256.Sum256([]byte("successor"))), AbsoluteExpiry: rec.AbsoluteExpiry},
		"Index":      index,
		"EmptyIndex": {Kind: stores.KindIndex, UserID: "alice", AbsoluteExpiry: rec.AbsoluteExpiry, Sessions: []stores.SessionRef{}},
		"Tombstone":  {Kind: stores.KindTombstone},
	} {
		t.Run(name, func(t *testing.T) {
			h := h.with(t)
			key := newKey()
			h.add(key, r, h.Now().Add(long))
			requireRecordEqual(t, r, h.get(key).Record)
		})
	}
}

// requireRecordEqual checks that got holds the same values as want, with
// the same Go types and nil-ness. Times in Data compare by instant and
// zone (name and offset), as stores.CheckValue promises; everything else
// compares deeply.
func requireRecordEqual(t *testing.T, want, got *stores.Record) {
	t.Helper()
	require.NotNil(t, got)
	w, g := *want, *got
	w.Data, g.Data = nil, nil
	require.Equal(t, w, g)
	require.Equal(t, normalize(want.Data), normalize(got.Data))
}

// normalTime is the comparable form of a time.Time.
type normalTime struct {
	Instant string
	Zone    string
	Offset  int
}

func normalizeTime(v time.Time) normalTime {
	name, off := v.Zone()
	return normalTime{Instant: v.UTC().Format(time.RFC3339Nano), Zone: name, Offset: off}
}

// normalize replaces the times inside v by their comparable form, keeping
// every other value, its type and its nil-ness.
func normalize(v any) any {
	switch v := v.(type) {
	case time.Time:
		return normalizeTime(v)
	case []any:
		if v == nil {
			return v
		}
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = normalize(e)
		}
		return s
	case map[string]any:
		if v == nil {
			return v
		}
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = normalize(e)
		}
		return m
	default:
		return v
	}
}

func testUpdateFrom(t *testing.T, h *harness) {
	uf, ok := h.Store.(stores.UpdaterFrom)
	if !ok {
		t.Skip("the store does not implement stores.UpdaterFrom")
	}
	ctx := context.Background()
	key := newKey()
	h.add(key, simple("alice"), h.Now().Add(long))

	// From a fresh read: applied.
	cur := h.get(key)
	require.NoError(t, uf.UpdateFrom(ctx, key, cur, merge(map[string]any{"a": 1})))
	assert.Equal(t, 1, h.get(key).Record.Data["a"])

	// From a stale read: the change made since is kept.
	stale := cur
	require.NoError(t, uf.UpdateFrom(ctx, key, stale, merge(map[string]any{"b": 2})))
	data := h.get(key).Record.Data
	assert.Equal(t, 1, data["a"], "a write made after the stale read survives")
	assert.Equal(t, 2, data["b"])

	// From a read of an item deleted since: not found, nothing created.
	cur = h.get(key)
	require.NoError(t, h.Store.Delete(ctx, key))
	err := uf.UpdateFrom(ctx, key, cur, merge(map[string]any{"c": 3}))
	require.ErrorIs(t, err, stores.ErrNotFound)
	h.requireGone(key)
}
