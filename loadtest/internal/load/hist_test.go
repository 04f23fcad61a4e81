package load

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistIndexIsMonotonic(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<20; v++ {
		i := histIndex(v)
		if i < prev || i > prev+1 {
			t.Fatalf("histIndex(%d) = %d after %d", v, i, prev)
		}
		if low := histLow(i); low > v {
			t.Fatalf("histLow(%d) = %d > %d", i, low, v)
		}
		prev = i
	}
	if i := histIndex(1 << 62); i >= histBuckets {
		t.Fatalf("histIndex(2^62) = %d, beyond %d buckets", i, histBuckets)
	}
}

func TestHistQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Hist
	var all []time.Duration
	for range 100_000 {
		d := time.Duration(r.ExpFloat64() * float64(time.Millisecond))
		h.Add(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := all[int(q*float64(len(all)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got) > float64(exact)*1.032 {
			t.Errorf("Quantile(%v) = %v, exact %v: want at or just above it (1.6%% buckets)", q, got, exact)
		}
	}
	if h.Max() != all[len(all)-1] {
		t.Errorf("Max = %v, want %v", h.Max(), all[len(all)-1])
	}
	var m Hist
	m.Merge(&h)
	m.Merge(&Hist{})
	if m.Count() != h.Count() || m.Quantile(0.99) != h.Quantile(0.99) || m.Max() != h.Max() {
		t.Errorf("Merge changed the figures")
	}
	if (&Hist{}).Quantile(0.5) != 0 {
		t.Errorf("empty Hist: want 0")
	}
}

func TestMixShares(t *testing.T) {
	for _, m := range []Mix{DefaultMix, {Profile: 60, Update: 20, Login: 12, Logout: 8}} {
		if err := m.check(); err != nil {
			t.Fatal(err)
		}
		// Simulate a client: a logout is followed by a login.
		r := rand.New(rand.NewPCG(3, 4))
		var n [numOps]int
		loggedIn := false
		const steps = 200_000
		for range steps {
			op := OpLogin
			if loggedIn {
				op = m.pick(r)
			}
			n[op]++
			loggedIn = op != OpLogout
		}
		for op, want := range map[Op]int{OpProfile: m.Profile, OpUpdate: m.Update, OpLogin: m.Login, OpLogout: m.Logout} {
			got := 100 * float64(n[op]) / steps
			if got < float64(want)-0.5 || got > float64(want)+0.5 {
				t.Errorf("mix %+v: %v is %.2f%% of requests, want %d%%", m, op, got, want)
			}
		}
	}
	for _, bad := range []Mix{{Profile: 70, Update: 20, Login: 4, Logout: 6}, {Profile: 70, Update: 20, Login: 5, Logout: 4}} {
		if bad.check() == nil {
			t.Errorf("mix %+v accepted", bad)
		}
	}
}
