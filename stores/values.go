package stores

import (
	"fmt"
	"time"
)

// UnsupportedTypeError reports a session value whose type is not in the
// supported list (see CheckValue). It is returned before anything is
// written, by every store alike.
type UnsupportedTypeError struct {
	Key  string // the top-level data key holding the value
	Type string // the offending Go type, as printed by %T
}

func (e *UnsupportedTypeError) Error() string {
	return fmt.Sprintf("stores: data key %q: unsupported value type %s", e.Key, e.Type)
}

// CheckValue reports whether v may be stored in session data. The
// supported types, which every conforming store reads back with the same Go
// type and value, are:
//
//	string, bool, []byte,
//	int, int8, int16, int32, int64,
//	uint, uint8, uint16, uint32, uint64,
//	float32, float64,
//	time.Time, time.Duration,
//	[]string, []int, []any,
//	map[string]string, map[string]any,
//
// where the elements of []any and map[string]any are themselves supported
// values or nil. Times keep their instant and their location's offset; the
// monotonic clock reading is dropped.
func CheckValue(v any) error {
	return checkValue("", v, 0)
}

// maxDepth bounds the nesting of []any and map[string]any values.
const maxDepth = 32

func checkValue(key string, v any, depth int) error {
	if depth > maxDepth {
		return &UnsupportedTypeError{Key: key, Type: "value nested too deeply"}
	}
	switch v := v.(type) {
	case nil:
		if depth == 0 {
			return &UnsupportedTypeError{Key: key, Type: "<nil>"}
		}
		return nil
	case string, bool, []byte,
		int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64,
		float32, float64,
		time.Time, time.Duration,
		[]string, []int, map[string]string:
		return nil
	case []any:
		for _, e := range v {
			if err := checkValue(key, e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		for _, e := range v {
			if err := checkValue(key, e, depth+1); err != nil {
				return err
			}
		}
		return nil
	default:
		return &UnsupportedTypeError{Key: key, Type: fmt.Sprintf("%T", v)}
	}
}

// MergeData returns a new map holding cur with the entries of changes
// applied: a nil value removes its key, any other value replaces it. Values
// from changes are deep-copied, so the caller may keep modifying its maps
// and slices. cur is not modified. It returns an *UnsupportedTypeError if a
// value is not supported.
func MergeData(cur, changes map[string]any) (map[string]any, error) {
	for k, v := range changes {
		if v == nil {
			continue
		}
		if err := checkValue(k, v, 0); err != nil {
			return nil, err
		}
	}
	next := make(map[string]any, len(cur)+len(changes))
	for k, v := range cur {
		next[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(next, k)
			continue
		}
		next[k] = cloneValue(v)
	}
	return next, nil
}

// CloneValue returns a deep copy of the mutable parts (slices and maps) of
// a supported value, so that the copy can be modified without touching
// data shared with a store. Other values are returned as they are, and a
// time.Time loses its monotonic clock reading.
func CloneValue(v any) any { return cloneValue(v) }

// cloneValue deep-copies the mutable parts of a supported value.
func cloneValue(v any) any {
	switch v := v.(type) {
	case []byte:
		return cloneSlice(v)
	case []string:
		return cloneSlice(v)
	case []int:
		return cloneSlice(v)
	case time.Time:
		return v.Round(0)
	case map[string]string:
		if v == nil {
			return v
		}
		m := make(map[string]string, len(v))
		for k, e := range v {
			m[k] = e
		}
		return m
	case []any:
		if v == nil {
			return v
		}
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = cloneValue(e)
		}
		return s
	case map[string]any:
		if v == nil {
			return v
		}
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = cloneValue(e)
		}
		return m
	default:
		return v
	}
}

// cloneSlice copies s, keeping a nil slice nil and an empty one empty.
func cloneSlice[S ~[]E, E any](s S) S {
	if s == nil {
		return nil
	}
	return append(make(S, 0, len(s)), s...)
}
