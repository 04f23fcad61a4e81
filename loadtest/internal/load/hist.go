package load

import (
	"math/bits"
	"time"
)

// histSub is the number of sub-buckets per power of two: values are kept
// to within 1/64 (1.6%) of their size, the way HdrHistogram keeps two
// significant digits.
const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	histBuckets = (64-histSubBits)*histSub + 2*histSub
)

// Hist is a latency histogram with constant memory: a million samples cost
// no more than ten. Quantiles are exact to 1.6%; Max and Min are exact.
// The zero value is empty and ready to use. A Hist is not safe for
// concurrent use: give each goroutine its own and Merge them.
type Hist struct {
	counts [histBuckets]uint64
	n      uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

// histIndex returns the bucket of v (nanoseconds, v >= 0).
func histIndex(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1 // v>>shift is in [histSub, 2*histSub)
	return shift*histSub + int(v>>shift)
}

// histLow returns the smallest value of bucket i.
func histLow(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	return uint64(i-shift*histSub) << shift
}

// Add records one latency.
func (h *Hist) Add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histIndex(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.n++
	h.sum += d
}

// Merge adds o's samples to h.
func (h *Hist) Merge(o *Hist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of samples.
func (h *Hist) Count() uint64 { return h.n }

// Max returns the largest sample, exactly.
func (h *Hist) Max() time.Duration { return h.max }

// Mean returns the mean sample.
func (h *Hist) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the q-quantile (0 < q <= 1): a value at or above q of
// the samples, to within 1.6%, and never above Max. It returns 0 for an
// empty Hist.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			// The bucket's upper end, so that the answer is never below
			// the true quantile.
			hi := histLow(i+1) - 1
			return min(time.Duration(hi), h.max)
		}
	}
	return h.max
}
