package ginsession_test

import (
	"fmt"
	"time"

	"github.com/securestack/ginsession"
)

func ExampleLimiter_AllowAt() {
	// At most 2 events per client in any minute.
	l := ginsession.NewLimiter(2, time.Minute)
	start := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	for _, after := range []time.Duration{0, 10 * time.Second, 30 * time.Second, 60 * time.Second, 65 * time.Second, 70 * time.Second} {
		fmt.Printf("%v: %v\n", after, l.AllowAt("203.0.113.7", start.Add(after)))
	}
	// Another key has its own quota.
	fmt.Println("other client:", l.AllowAt("198.51.100.2", start.Add(65*time.Second)))
	// Output:
	// 0s: true
	// 10s: true
	// 30s: false
	// 1m0s: true
	// 1m5s: false
	// 1m10s: true
	// other client: true
}

func ExampleLimiter_ReserveAt() {
	l := ginsession.NewLimiter(3, time.Minute)
	start := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	for i := range 4 {
		d := l.ReserveAt("alice", start.Add(time.Duration(i)*10*time.Second))
		fmt.Printf("allowed=%v remaining=%d retry after=%s\n", d.Allowed, d.Remaining, d.RetryAfter)
	}
	// Output:
	// allowed=true remaining=2 retry after=0s
	// allowed=true remaining=1 retry after=0s
	// allowed=true remaining=0 retry after=0s
	// allowed=false remaining=0 retry after=30s
}
