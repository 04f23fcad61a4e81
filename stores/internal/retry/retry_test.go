package retry

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPause(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for attempt := range Immediate {
		assert.NoError(t, Pause(ctx, attempt), "attempt %d does not wait, so it does not look at ctx", attempt)
	}
	for _, attempt := range []int{Immediate, Immediate + 6, 1000} {
		assert.ErrorIs(t, Pause(ctx, attempt), context.Canceled, "attempt %d waits, and gives up when ctx ends", attempt)
	}
	assert.NoError(t, Pause(context.Background(), Immediate+20), "a long run of attempts pauses at most MaxPause")
}
