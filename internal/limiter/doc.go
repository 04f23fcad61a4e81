// Package limiter is the in-process engine behind ginsession.Limiter: a
// table of per-key sliding windows in which, for every key, no interval of
// length window ever holds more than limit admitted events.
//
// With a limit of at most ExactMax, the Table keeps each key's last limit
// admission times in a ring and is exact (exact.go). Above that, it counts
// admissions in buckets and refuses at most one bucket early (bucketed.go).
// Keys are spread over mutex-guarded shards, idle keys are swept by the
// operations themselves, and the number of keys is capped (table.go).
// ginsession.Limiter documents the model, the guarantee, the handling of
// time and the memory per key.
//
// The package validates nothing: ginsession.NewLimiter checks the
// configuration, with messages naming its options, before calling New.
package limiter
