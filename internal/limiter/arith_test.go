package limiter

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFloorDivMod(t *testing.T) {
	tests := []struct {
		a, b     int64
		quo, rem int64 // ⌊a/b⌋ and a mod b in [0, b)
	}{
		{a: 7, b: 2, quo: 3, rem: 1},
		{a: -7, b: 2, quo: -4, rem: 1},
		{a: -8, b: 2, quo: -4, rem: 0},
		{a: 0, b: 5, quo: 0, rem: 0},
		{a: -1, b: 1 << 40, quo: -1, rem: 1<<40 - 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d by %d", tt.a, tt.b), func(t *testing.T) {
			assert.Equal(t, tt.quo, floorDiv(tt.a, tt.b))
			assert.Equal(t, tt.rem, floorMod(tt.a, tt.b))
			assert.Equal(t, int(tt.rem), mod(tt.a, int(tt.b)))
		})
	}
}
