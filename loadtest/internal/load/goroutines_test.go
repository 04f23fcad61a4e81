package load

import (
	"strings"
	"testing"
)

func TestGoroutinesGroupsByOrigin(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	for range 3 {
		go parked(stop)
	}
	g := Goroutines()
	n := 0
	for origin, c := range g {
		if strings.Contains(origin, "TestGoroutinesGroupsByOrigin") {
			n += c
		}
	}
	if n < 3 {
		t.Fatalf("found %d goroutines started by the test, want 3: %v", n, g)
	}
}

func parked(stop chan struct{}) { <-stop }
