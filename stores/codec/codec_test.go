package codec

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/storetest"
)

// fullRecord returns a record with every field set and every value type.
func fullRecord() *stores.Record {
	return &stores.Record{
		Kind:           stores.KindSession,
		UserID:         "user-42",
		Handle:         "5b0a3c1e-8f6a-4d43-9e7b-1d2c3b4a5f60",
		Data:           storetest.FidelityData(),
		CreatedAt:      time.Date(2025, 3, 30, 1, 59, 59, 999999999, time.FixedZone("CET", 3600)).UnixNano(),
		AbsoluteExpiry: time.Date(2025, 3, 31, 1, 59, 59, 0, time.UTC).UnixNano(),
		RenewedAt:      -5, // before 1970
		Secret:         [stores.SecretSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		Persistent:     true,
		Successor:      stores.Key(sha256.Sum256([]byte("next"))),
		Forwards: []stores.Forward{
			{Key: stores.Key(sha256.Sum256([]byte("a"))), Until: time.Date(2025, 3, 30, 2, 31, 0, 0, time.UTC).UnixNano()},
			{Key: stores.Key(sha256.Sum256([]byte("b"))), Until: math.MaxInt64},
		},
		Sessions: []stores.SessionRef{{
			Key: stores.Key(sha256.Sum256([]byte("s"))), Handle: "h",
			CreatedAt: time.Date(2025, 3, 30, 1, 0, 0, 0, time.UTC).UnixNano(), AbsoluteExpiry: time.Date(2025, 3, 31, 1, 0, 0, 0, time.UTC).UnixNano(),
			ExpiresAt: math.MinInt64,
		}, {
			Key: stores.Key(sha256.Sum256([]byte("t"))), Pending: []stores.Key{stores.Key(sha256.Sum256([]byte("u")))},
			Handle: "i",
		}},
	}
}

func roundTrip(t *testing.T, rec *stores.Record) *stores.Record {
	t.Helper()
	b, err := Append(nil, rec, 123, -456)
	require.NoError(t, err)
	got, exp, written, err := Decode(b)
	require.NoError(t, err)
	assert.EqualValues(t, 123, exp)
	assert.EqualValues(t, -456, written)
	return got
}

func TestCodecRoundTrip(t *testing.T) {
	for name, rec := range map[string]*stores.Record{
		"full":      fullRecord(),
		"zero":      {},
		"emptyData": {Data: map[string]any{}},
	} {
		t.Run(name, func(t *testing.T) {
			// Exactly equal, types and nil-ness included: times in UTC
			// and fixed zones read back as such.
			assert.Equal(t, rec, roundTrip(t, rec))
		})
	}
}

func TestCodecTimes(t *testing.T) {
	named, err := time.LoadLocation("America/New_York")
	if err != nil {
		named = time.FixedZone("EST", -5*3600)
	}
	for name, v := range map[string]time.Time{
		"zero":       {},
		"utc":        time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC),
		"local":      time.Date(2030, 1, 2, 3, 4, 5, 6, time.Local),
		"now":        time.Now(),
		"named":      time.Date(2030, 7, 1, 12, 0, 0, 0, named),
		"fixedUTC":   time.Date(2030, 1, 1, 0, 0, 0, 0, time.FixedZone("UTC", 0)),
		"halfHour":   time.Date(2030, 1, 1, 0, 0, 0, 0, time.FixedZone("", 5*3600+1800)),
		"beforeUnix": time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC),
		"far":        time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	} {
		t.Run(name, func(t *testing.T) {
			got := roundTrip(t, &stores.Record{Data: map[string]any{"t": v}}).Data["t"].(time.Time)
			assert.True(t, got.Equal(v), "instant: got %v, want %v", got, v)
			gotName, gotOff := got.Zone()
			wantName, wantOff := v.Zone()
			assert.Equal(t, wantName, gotName, "zone name")
			assert.Equal(t, wantOff, gotOff, "zone offset")
			assert.False(t, got.Equal(time.Time{}) != v.IsZero())
			switch v.Location() {
			case time.UTC:
				assert.Equal(t, v, got)
			case time.Local:
				assert.Same(t, time.Local, got.Location(), "Local stays Local")
				assert.Equal(t, v.Round(0), got, "the monotonic reading is dropped")
			}
		})
	}
}

func TestCodecTypes(t *testing.T) {
	data := storetest.FidelityData()
	got := roundTrip(t, &stores.Record{Data: data}).Data
	for k, v := range data {
		assert.IsType(t, v, got[k], k)
	}
	assert.Equal(t, data, got)
}

func TestCodecUnsupported(t *testing.T) {
	type custom struct{}
	deep := any("leaf")
	for range 50 {
		deep = []any{deep}
	}
	for name, v := range map[string]any{
		"struct":        custom{},
		"pointer":       new(int),
		"nested":        map[string]any{"ok": 1, "bad": []any{complex(1, 2)}},
		"map[int]int":   map[int]int{},
		"float slice":   []float64{1},
		"nested deeply": deep,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Append(nil, &stores.Record{Data: map[string]any{"k": v}}, 0, 0)
			var ute *stores.UnsupportedTypeError
			require.ErrorAs(t, err, &ute)
			assert.Equal(t, "k", ute.Key)
			assert.True(t, strings.HasPrefix(err.Error(), "codec: "), err.Error())
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	valid, err := Append(nil, fullRecord(), 1, 2)
	require.NoError(t, err)

	t.Run("EveryTruncation", func(t *testing.T) {
		for n := range len(valid) {
			_, _, _, err := Decode(valid[:n])
			require.ErrorIs(t, err, ErrMalformed, "truncated to %d of %d bytes", n, len(valid))
		}
	})
	t.Run("TrailingBytes", func(t *testing.T) {
		_, _, _, err := Decode(append(valid[:len(valid):len(valid)], 0))
		require.ErrorIs(t, err, ErrMalformed)
	})
	t.Run("Version", func(t *testing.T) {
		b := append([]byte(nil), valid...)
		b[0] = Version + 1
		_, _, _, err := Decode(b)
		require.ErrorIs(t, err, ErrMalformed)
		assert.Contains(t, err.Error(), "version")
	})

	// header returns the encoding of an empty record up to its Data.
	header := func() []byte {
		b, err := Append(nil, &stores.Record{}, 0, 0)
		require.NoError(t, err)
		return b[:len(b)-1]
	}
	data := func(parts ...[]byte) []byte {
		b := header()
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	huge := uv(math.MaxUint64)
	tests := map[string][]byte{
		"huge map":         data(huge),
		"huge key":         data(uv(2), huge),
		"huge string":      data(uv(2), uv(1), []byte("k"), []byte{tagString}, huge),
		"huge bytes":       data(uv(2), uv(0), []byte{tagBytes}, huge),
		"huge list":        data(uv(2), uv(0), []byte{tagList}, huge),
		"huge strings":     data(uv(2), uv(0), []byte{tagStrings}, huge),
		"huge ints":        data(uv(2), uv(0), []byte{tagInts}, huge),
		"huge string map":  data(uv(2), uv(0), []byte{tagStringMap}, huge),
		"huge nested map":  data(uv(2), uv(0), []byte{tagMap}, huge),
		"list longer":      data(uv(2), uv(0), []byte{tagList}, uv(1000), []byte{tagNil, tagNil}),
		"unknown tag":      data(uv(2), uv(0), []byte{200}),
		"int8 overflow":    data(uv(2), uv(0), []byte{tagInt8}, binary.AppendVarint(nil, 128)),
		"uint16 overflow":  data(uv(2), uv(0), []byte{tagUint16}, uv(1<<16)),
		"uint32 overflow":  data(uv(2), uv(0), []byte{tagUint32}, uv(1<<32)),
		"varint too long":  data(uv(2), uv(0), []byte{tagInt64}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}),
		"varint truncated": data(uv(2), uv(0), []byte{tagInt64, 0xff}),
		"float truncated":  data(uv(2), uv(0), []byte{tagFloat64, 1, 2, 3}),
		"bad nanoseconds":  data(uv(2), uv(0), []byte{tagTime}, uv(0), uv(1e9<<2)),
		"bad zone kind":    data(uv(2), uv(0), []byte{tagTime}, uv(0), uv(3)),
		"bad zone offset":  data(uv(2), uv(0), []byte{tagTime}, uv(0), uv(zoneFixed), binary.AppendVarint(nil, 90000), uv(0)),
		"unknown flags":    append(header()[:len(header())-3], 0x80, 0, 0),
		"deep nesting":     data(uv(2), uv(0), []byte(strings.Repeat(string([]byte{tagList, 2}), 100)), []byte{tagNil}),
		"empty":            {},
		"version only":     {Version},
		"truncated succ":   append(header()[:len(header())-3], flagSuccessor, 0, 0),
		"truncated secret": append(header()[:len(header())-3], flagSecret, 0, 0),
		"huge forwards":    append(header()[:len(header())-2], huge...),
		"huge pending":     append(header()[:len(header())-1], append(append(uv(2), make([]byte, 32)...), huge...)...),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			var err error
			allocs := testing.AllocsPerRun(10, func() { _, _, _, err = Decode(b) })
			require.ErrorIs(t, err, ErrMalformed)
			assert.LessOrEqual(t, allocs, float64(10+len(b)), "allocations on malformed input")
		})
	}
}

func TestDecodeAllocationBound(t *testing.T) {
	// A 20-byte input claiming 2^40 elements must not allocate for them.
	b := append([]byte{Version}, make([]byte, 12)...) // up to the flags
	b = binary.AppendUvarint(b, 1<<40)                // Forwards
	var err error
	bytes := testing.Benchmark(func(bm *testing.B) {
		bm.ReportAllocs()
		for bm.Loop() {
			_, _, _, err = Decode(b)
		}
	}).AllocedBytesPerOp()
	require.ErrorIs(t, err, ErrMalformed)
	assert.Less(t, bytes, int64(1024))
}

// FuzzDecode checks that decoding never panics, and that whatever decodes
// encodes again and decodes to a record of the same shape.
func FuzzDecode(f *testing.F) {
	for _, rec := range []*stores.Record{{}, {Data: map[string]any{}}, fullRecord(), {Kind: stores.KindTombstone}} {
		b, err := Append(nil, rec, 1, 2)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, exp, written, err := Decode(b)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		again, err := Append(nil, rec, exp, written)
		require.NoError(t, err, "a decoded record must encode")
		rec2, exp2, written2, err := Decode(again)
		require.NoError(t, err)
		assert.Equal(t, exp, exp2)
		assert.Equal(t, written, written2)
		assert.Equal(t, len(rec.Data), len(rec2.Data))
		assert.Equal(t, rec.UserID, rec2.UserID)
		assert.Equal(t, rec.Successor, rec2.Successor)
		assert.Equal(t, rec.Kind, rec2.Kind)
		assert.Equal(t, rec.Secret, rec2.Secret)
		assert.Equal(t, len(rec.Sessions), len(rec2.Sessions))
		assert.Equal(t, len(rec.Forwards), len(rec2.Forwards))
	})
}

// TestDecodeVersion1 decodes records written by the first format, which
// memcached servers may still hold after an upgrade, and derives their kind.
func TestDecodeVersion1(t *testing.T) {
	created := time.Date(2025, 3, 30, 1, 0, 0, 0, time.UTC).UnixNano()
	abs := time.Date(2025, 3, 30, 9, 0, 0, 0, time.UTC).UnixNano()
	for name, tt := range map[string]struct {
		hex  string
		want *stores.Record
	}{
		"session": {
			"01f601900705616c6963652435623061336331652d386636612d346434332d396537622d316432633362346135663630a0dec4fe0c00a0a0c8fe0c00a0dec4fe0c0000000304726f6c65010561646d696e016e050e",
			&stores.Record{Kind: stores.KindSession, UserID: "alice", Handle: "5b0a3c1e-8f6a-4d43-9e7b-1d2c3b4a5f60",
				Data: map[string]any{"role": "admin", "n": 7}, CreatedAt: created, AbsoluteExpiry: abs, RenewedAt: created},
		},
		"stub": {
			"01f601900705616c69636500ffdb8ff9ce0300a0a0c8fe0c00ffdb8ff9ce030001c6c1c9a9c8543f1e4cd980064cf1625eeb61a90703b2464fff039f21682508b30000",
			&stores.Record{Kind: stores.KindForward, UserID: "alice", AbsoluteExpiry: abs, Successor: stores.Key(sha256.Sum256([]byte("next")))},
		},
		"index": {
			"01f601900705616c69636500ffdb8ff9ce0300a0a0c8fe0c00ffdb8ff9ce03000002043a718774c572bd8a25adbeb1bfcd5c0256ae11cecf9f9c3f925d0e52beaf890168a0dec4fe0c00a0a0c8fe0c0000",
			&stores.Record{Kind: stores.KindIndex, UserID: "alice", AbsoluteExpiry: abs, Sessions: []stores.SessionRef{
				{Key: stores.Key(sha256.Sum256([]byte("s"))), Handle: "h", CreatedAt: created, AbsoluteExpiry: abs}}},
		},
		"empty index": {
			"01f601900705616c69636500ffdb8ff9ce0300a0a0c8fe0c00ffdb8ff9ce0300000000",
			&stores.Record{Kind: stores.KindIndex, UserID: "alice", AbsoluteExpiry: abs},
		},
		"tombstone": {
			"01f60190070000ffdb8ff9ce0300ffdb8ff9ce0300ffdb8ff9ce0300000000",
			&stores.Record{Kind: stores.KindTombstone},
		},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := hex.DecodeString(tt.hex)
			require.NoError(t, err)
			got, exp, written, err := Decode(b)
			require.NoError(t, err)
			assert.EqualValues(t, 123, exp)
			assert.EqualValues(t, 456, written)
			// (A zero time.Time in version 1 reads back as 0.)
			assert.Equal(t, tt.want, got)
		})
	}
}
