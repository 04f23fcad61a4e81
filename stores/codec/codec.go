// Package codec is a compact, versioned binary form of stores.Record, for
// stores that keep bytes (memcached, Redis, or a third-party store).
//
// It is written without reflection, gob or JSON. Every value type of
// stores.CheckValue reads back with the same Go type and value as it has
// in the memory store, nil and empty collections stay apart, and times
// keep their instant and zone offset. Decoding never panics and allocates
// in proportion to its input, whatever lengths the input claims, so bytes
// read from a shared server cannot exhaust the reader's memory.
//
// An encoded record starts with a format version; Decode reads the current
// version and every earlier one.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/securestack/ginsession/stores"
)

// The format, version 2:
//
//	byte    version (Version)
//	varint  expiry as written, Unix nanoseconds
//	varint  time of writing, Unix nanoseconds
//	byte    Kind
//	string  UserID
//	string  Handle
//	varint  CreatedAt
//	varint  AbsoluteExpiry
//	varint  RenewedAt
//	byte    flags: 1 Persistent, 2 Secret follows, 4 Successor follows
//	[16]    Secret, if flagged
//	[32]    Successor, if flagged
//	list    Forwards: per entry the 32 bytes of Key and varint Until
//	list    Sessions: per entry the 32 bytes of Key, a list of 32-byte
//	        Pending keys, string Handle, varints CreatedAt, ExpiresAt and
//	        AbsoluteExpiry
//	map     Data
//
// where varint is zigzag (encoding/binary.AppendVarint) and the record's
// times are Unix nanoseconds, a string is a uvarint length and the bytes,
// a time (a time.Time in Data) is a varint of Unix seconds, a
// uvarint of nanoseconds<<2 | zone kind (0 UTC, 1 Local, 2 fixed) and, for
// kinds 1 and 2, a varint zone offset in seconds and a string zone name.
// Collections (list, map) carry a uvarint of their length plus one, zero
// meaning nil, so that nil and empty survive the round trip. A value is a
// tag byte and a payload; see the tag constants.
//
// Version 1 had no Kind, flags, Secret, Persistent, Forwards, Pending or
// ExpiresAt, wrote the record's times as times, and had a successor byte
// (0, or 1 and the key) where the flags are; Decode derives the kind of a
// version 1 record from its fields.
const Version = 2

// version1 is the first format, still decoded.
const version1 = 1

// Value tags.
const (
	tagNil       = iota // no payload
	tagString           // string
	tagFalse            // no payload
	tagTrue             // no payload
	tagBytes            // length+1, bytes
	tagInt              // varint
	tagInt8             // varint
	tagInt16            // varint
	tagInt32            // varint
	tagInt64            // varint
	tagUint             // uvarint
	tagUint8            // one byte
	tagUint16           // uvarint
	tagUint32           // uvarint
	tagUint64           // uvarint
	tagFloat32          // 4 bytes, little-endian IEEE 754 bits
	tagFloat64          // 8 bytes, little-endian IEEE 754 bits
	tagTime             // time
	tagDuration         // varint nanoseconds
	tagStrings          // length+1, strings
	tagInts             // length+1, varints
	tagList             // length+1, values
	tagStringMap        // length+1, (string, string) pairs
	tagMap              // length+1, (string, value) pairs
)

// Zone kinds of an encoded time.
const (
	zoneUTC   = 0 // time.UTC
	zoneLocal = 1 // time.Local, if the reader's Local has the same zone
	zoneFixed = 2 // any other location, read back as a time.FixedZone

	// maxZoneOffset bounds a decoded zone offset, in seconds.
	maxZoneOffset = 24 * 60 * 60
)

// maxDecodeDepth bounds the nesting of decoded lists and maps; it is above
// what stores.CheckValue admits, and keeps hostile input from exhausting the
// stack.
const maxDecodeDepth = 40

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("codec: malformed record")

// Record flags.
const (
	flagPersistent = 1 << iota
	flagSecret
	flagSuccessor
)

// Append appends the encoding of rec, written at writtenAt with the given
// expiry (both Unix nanoseconds, which Decode returns as they were), to
// buf. It returns an error wrapping a *stores.UnsupportedTypeError if the
// data holds a value of another type than those of stores.CheckValue.
func Append(buf []byte, rec *stores.Record, expiresAt, writtenAt int64) ([]byte, error) {
	buf = append(buf, Version)
	buf = binary.AppendVarint(buf, expiresAt)
	buf = binary.AppendVarint(buf, writtenAt)
	buf = append(buf, byte(rec.Kind))
	buf = appendString(buf, rec.UserID)
	buf = appendString(buf, rec.Handle)
	buf = binary.AppendVarint(buf, rec.CreatedAt)
	buf = binary.AppendVarint(buf, rec.AbsoluteExpiry)
	buf = binary.AppendVarint(buf, rec.RenewedAt)
	var flags byte
	if rec.Persistent {
		flags |= flagPersistent
	}
	if rec.Secret != ([stores.SecretSize]byte{}) {
		flags |= flagSecret
	}
	if rec.Successor != (stores.Key{}) {
		flags |= flagSuccessor
	}
	buf = append(buf, flags)
	if flags&flagSecret != 0 {
		buf = append(buf, rec.Secret[:]...)
	}
	if flags&flagSuccessor != 0 {
		buf = append(buf, rec.Successor[:]...)
	}
	buf = appendLen(buf, len(rec.Forwards), rec.Forwards == nil)
	for _, f := range rec.Forwards {
		buf = append(buf, f.Key[:]...)
		buf = binary.AppendVarint(buf, f.Until)
	}
	buf = appendLen(buf, len(rec.Sessions), rec.Sessions == nil)
	for _, r := range rec.Sessions {
		buf = append(buf, r.Key[:]...)
		buf = appendLen(buf, len(r.Pending), r.Pending == nil)
		for _, k := range r.Pending {
			buf = append(buf, k[:]...)
		}
		buf = appendString(buf, r.Handle)
		buf = binary.AppendVarint(buf, r.CreatedAt)
		buf = binary.AppendVarint(buf, r.ExpiresAt)
		buf = binary.AppendVarint(buf, r.AbsoluteExpiry)
	}
	if rec.Data == nil {
		return append(buf, 0), nil
	}
	buf = binary.AppendUvarint(buf, uint64(len(rec.Data))+1)
	for k, v := range rec.Data {
		buf = appendString(buf, k)
		var err error
		if buf, err = appendValue(buf, k, v, 0); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// appendLen appends the length of a collection, n+1, or 0 for nil.
func appendLen(buf []byte, n int, isNil bool) []byte {
	if isNil {
		return append(buf, 0)
	}
	return binary.AppendUvarint(buf, uint64(n)+1)
}

func appendTime(buf []byte, t time.Time) []byte {
	kind := uint64(zoneFixed)
	switch t.Location() {
	case time.UTC:
		kind = zoneUTC
	case time.Local:
		kind = zoneLocal
	}
	buf = binary.AppendVarint(buf, t.Unix())
	buf = binary.AppendUvarint(buf, uint64(t.Nanosecond())<<2|kind)
	if kind != zoneUTC {
		name, offset := t.Zone()
		buf = binary.AppendVarint(buf, int64(offset))
		buf = appendString(buf, name)
	}
	return buf
}

// appendValue appends a tagged session value. key is the top-level data
// key, for error messages.
func appendValue(buf []byte, key string, v any, depth int) ([]byte, error) {
	if depth > maxDecodeDepth-2 {
		return nil, fmt.Errorf("codec: encode: %w", &stores.UnsupportedTypeError{Key: key, Type: "value nested too deeply"})
	}
	switch v := v.(type) {
	case nil:
		return append(buf, tagNil), nil
	case string:
		return appendString(append(buf, tagString), v), nil
	case bool:
		if v {
			return append(buf, tagTrue), nil
		}
		return append(buf, tagFalse), nil
	case []byte:
		buf = appendLen(append(buf, tagBytes), len(v), v == nil)
		return append(buf, v...), nil
	case int:
		return binary.AppendVarint(append(buf, tagInt), int64(v)), nil
	case int8:
		return binary.AppendVarint(append(buf, tagInt8), int64(v)), nil
	case int16:
		return binary.AppendVarint(append(buf, tagInt16), int64(v)), nil
	case int32:
		return binary.AppendVarint(append(buf, tagInt32), int64(v)), nil
	case int64:
		return binary.AppendVarint(append(buf, tagInt64), v), nil
	case uint:
		return binary.AppendUvarint(append(buf, tagUint), uint64(v)), nil
	case uint8:
		return append(buf, tagUint8, v), nil
	case uint16:
		return binary.AppendUvarint(append(buf, tagUint16), uint64(v)), nil
	case uint32:
		return binary.AppendUvarint(append(buf, tagUint32), uint64(v)), nil
	case uint64:
		return binary.AppendUvarint(append(buf, tagUint64), v), nil
	case float32:
		return binary.LittleEndian.AppendUint32(append(buf, tagFloat32), math.Float32bits(v)), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(buf, tagFloat64), math.Float64bits(v)), nil
	case time.Time:
		return appendTime(append(buf, tagTime), v), nil
	case time.Duration:
		return binary.AppendVarint(append(buf, tagDuration), int64(v)), nil
	case []string:
		buf = appendLen(append(buf, tagStrings), len(v), v == nil)
		for _, s := range v {
			buf = appendString(buf, s)
		}
		return buf, nil
	case []int:
		buf = appendLen(append(buf, tagInts), len(v), v == nil)
		for _, n := range v {
			buf = binary.AppendVarint(buf, int64(n))
		}
		return buf, nil
	case []any:
		buf = appendLen(append(buf, tagList), len(v), v == nil)
		for _, e := range v {
			var err error
			if buf, err = appendValue(buf, key, e, depth+1); err != nil {
				return nil, err
			}
		}
		return buf, nil
	case map[string]string:
		buf = appendLen(append(buf, tagStringMap), len(v), v == nil)
		for k, s := range v {
			buf = appendString(appendString(buf, k), s)
		}
		return buf, nil
	case map[string]any:
		buf = appendLen(append(buf, tagMap), len(v), v == nil)
		for k, e := range v {
			buf = appendString(buf, k)
			var err error
			if buf, err = appendValue(buf, key, e, depth+1); err != nil {
				return nil, err
			}
		}
		return buf, nil
	default:
		return nil, fmt.Errorf("codec: encode: %w", &stores.UnsupportedTypeError{Key: key, Type: fmt.Sprintf("%T", v)})
	}
}

// Decode decodes a record encoded by Append, of this version or an
// earlier one, and returns it with the expiry and time of writing given
// to Append. It never panics, and it allocates in proportion to len(b)
// whatever lengths b claims. Strings in the record share one copy of b; b
// itself is not retained. Errors wrap ErrMalformed.
func Decode(b []byte) (rec *stores.Record, expiresAt, writtenAt int64, err error) {
	if len(b) == 0 {
		return nil, 0, 0, fmt.Errorf("%w: empty", ErrMalformed)
	}
	version := b[0]
	if version != Version && version != version1 {
		return nil, 0, 0, fmt.Errorf("%w: unknown version %d", ErrMalformed, b[0])
	}
	d := decoder{s: string(b[1:])}
	rec = new(stores.Record)
	expiresAt = d.varint()
	writtenAt = d.varint()
	if version != version1 {
		rec.Kind = stores.Kind(d.byte())
	}
	rec.UserID = d.string()
	rec.Handle = d.string()
	rec.CreatedAt = d.stamp(version)
	rec.AbsoluteExpiry = d.stamp(version)
	rec.RenewedAt = d.stamp(version)
	if version == version1 {
		d.v1Successor(rec)
	} else {
		flags := d.byte()
		if flags&^(flagPersistent|flagSecret|flagSuccessor) != 0 {
			d.fail("unknown flags")
		}
		rec.Persistent = flags&flagPersistent != 0
		if flags&flagSecret != 0 {
			copy(rec.Secret[:], d.take(stores.SecretSize))
		}
		if flags&flagSuccessor != 0 {
			copy(rec.Successor[:], d.take(stores.KeySize))
		}
		// An entry takes at least 32 bytes of key and 1 of time.
		if n, isNil := d.length(stores.KeySize + 1); !isNil && d.err == nil {
			rec.Forwards = make([]stores.Forward, n)
			for i := range rec.Forwards {
				f := &rec.Forwards[i]
				copy(f.Key[:], d.take(stores.KeySize))
				f.Until = d.varint()
				if d.err != nil {
					break
				}
			}
		}
	}
	d.sessions(rec, version)
	if n, isNil := d.length(2); !isNil && d.err == nil {
		rec.Data = make(map[string]any, n)
		for range n {
			k := d.string()
			rec.Data[k] = d.value(1)
			if d.err != nil {
				break
			}
		}
	}
	if d.err == nil && len(d.s) > 0 {
		d.fail(strconv.Itoa(len(d.s)) + " trailing bytes")
	}
	if d.err != nil {
		return nil, 0, 0, d.err
	}
	if version == version1 {
		rec.Kind = v1Kind(rec)
	}
	return rec, expiresAt, writtenAt, nil
}

// stamp reads one of the record's times as Unix nanoseconds: a varint, or
// in version 1 a time, saturated at the int64 range.
func (d *decoder) stamp(version byte) int64 {
	if version != version1 {
		return d.varint()
	}
	t := d.time()
	switch {
	case t.IsZero():
		return 0
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// v1Successor reads version 1's successor: a byte 0, or 1 and the key.
func (d *decoder) v1Successor(rec *stores.Record) {
	switch d.byte() {
	case 0:
	case 1:
		copy(rec.Successor[:], d.take(stores.KeySize))
	default:
		d.fail("bad successor flag")
	}
}

// sessions reads a user index's entries.
func (d *decoder) sessions(rec *stores.Record, version byte) {
	// An entry takes at least 32 bytes of key and 5 more of handle and
	// times, which bounds the allocation by the input's size.
	n, isNil := d.length(stores.KeySize + 5)
	if isNil || d.err != nil {
		return
	}
	rec.Sessions = make([]stores.SessionRef, n)
	for i := range rec.Sessions {
		r := &rec.Sessions[i]
		copy(r.Key[:], d.take(stores.KeySize))
		if version != version1 {
			if m, isNil := d.length(stores.KeySize); !isNil && d.err == nil {
				r.Pending = make([]stores.Key, m)
				for j := range r.Pending {
					copy(r.Pending[j][:], d.take(stores.KeySize))
				}
			}
		}
		r.Handle = d.string()
		r.CreatedAt = d.stamp(version)
		if version != version1 {
			r.ExpiresAt = d.varint()
		}
		r.AbsoluteExpiry = d.stamp(version)
		if d.err != nil {
			return
		}
	}
}

// v1Kind derives the kind of a version 1 record from its fields.
func v1Kind(rec *stores.Record) stores.Kind {
	switch {
	case rec.Successor != (stores.Key{}):
		return stores.KindForward
	case rec.Sessions != nil || (rec.UserID != "" && rec.Handle == ""):
		return stores.KindIndex
	case rec.Handle == "":
		return stores.KindTombstone
	default:
		return stores.KindSession
	}
}

// decoder reads from s, the unread rest of the input. After the first
// error every read returns a zero value and err keeps that error.
type decoder struct {
	s   string
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	d.s = ""
}

func (d *decoder) byte() byte {
	if len(d.s) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.s[0]
	d.s = d.s[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	var shift uint
	for i := 0; i < len(d.s); i++ {
		c := d.s[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			d.fail("varint overflows 64 bits")
			return 0
		}
		if c < 0x80 {
			d.s = d.s[i+1:]
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.fail("truncated varint")
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// bounded reads a varint and checks that it lies in [lo, hi].
func (d *decoder) bounded(lo, hi int64) int64 {
	x := d.varint()
	if x < lo || x > hi {
		d.fail("integer out of range")
		return 0
	}
	return x
}

func (d *decoder) ubounded(hi uint64) uint64 {
	x := d.uvarint()
	if x > hi {
		d.fail("integer out of range")
		return 0
	}
	return x
}

// take returns the next n bytes.
func (d *decoder) take(n uint64) string {
	if n > uint64(len(d.s)) {
		d.fail("truncated")
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}

func (d *decoder) string() string {
	return d.take(d.uvarint())
}

// length reads a collection length (n+1, or 0 for nil). Every element
// takes at least minSize bytes, so a length that the rest of the input
// cannot hold is rejected before anything is allocated for it.
func (d *decoder) length(minSize int) (n int, isNil bool) {
	v := d.uvarint()
	if d.err != nil {
		return 0, true
	}
	if v == 0 {
		return 0, true
	}
	if v-1 > uint64(len(d.s)/minSize) {
		d.fail("length exceeds input")
		return 0, true
	}
	return int(v - 1), false
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	x := d.uvarint()
	nsec, kind := int64(x>>2), x&3
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 {
		d.fail("nanoseconds out of range")
		return time.Time{}
	}
	t := time.Unix(sec, nsec)
	if kind == zoneUTC {
		return t.UTC()
	}
	offset := int(d.bounded(-maxZoneOffset, maxZoneOffset))
	name := d.string()
	if d.err != nil {
		return time.Time{}
	}
	switch kind {
	case zoneLocal:
		if lt := t.In(time.Local); sameZone(lt, name, offset) {
			return lt
		}
	case zoneFixed:
	default:
		d.fail("bad zone kind")
		return time.Time{}
	}
	if name == "UTC" && offset == 0 {
		// FixedZone("UTC", 0) reads back as UTC itself.
		return t.UTC()
	}
	return t.In(time.FixedZone(name, offset))
}

func sameZone(t time.Time, name string, offset int) bool {
	n, o := t.Zone()
	return n == name && o == offset
}

// value reads one tagged value at the given nesting depth.
func (d *decoder) value(depth int) any {
	if depth > maxDecodeDepth {
		d.fail("nested too deeply")
		return nil
	}
	switch tag := d.byte(); tag {
	case tagNil:
		return nil
	case tagString:
		return d.string()
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagBytes:
		n, isNil := d.length(1)
		if isNil {
			return []byte(nil)
		}
		return []byte(d.take(uint64(n)))
	case tagInt:
		return int(d.bounded(math.MinInt, math.MaxInt))
	case tagInt8:
		return int8(d.bounded(math.MinInt8, math.MaxInt8))
	case tagInt16:
		return int16(d.bounded(math.MinInt16, math.MaxInt16))
	case tagInt32:
		return int32(d.bounded(math.MinInt32, math.MaxInt32))
	case tagInt64:
		return d.varint()
	case tagUint:
		return uint(d.ubounded(math.MaxUint))
	case tagUint8:
		return d.byte()
	case tagUint16:
		return uint16(d.ubounded(math.MaxUint16))
	case tagUint32:
		return uint32(d.ubounded(math.MaxUint32))
	case tagUint64:
		return d.uvarint()
	case tagFloat32:
		b := d.take(4)
		if d.err != nil {
			return nil
		}
		return math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
	case tagFloat64:
		b := d.take(8)
		if d.err != nil {
			return nil
		}
		var u uint64
		for i := 7; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
		return math.Float64frombits(u)
	case tagTime:
		return d.time()
	case tagDuration:
		return time.Duration(d.varint())
	case tagStrings:
		n, isNil := d.length(1)
		if isNil {
			return []string(nil)
		}
		s := make([]string, n)
		for i := range s {
			s[i] = d.string()
		}
		return s
	case tagInts:
		n, isNil := d.length(1)
		if isNil {
			return []int(nil)
		}
		s := make([]int, n)
		for i := range s {
			s[i] = int(d.bounded(math.MinInt, math.MaxInt))
		}
		return s
	case tagList:
		n, isNil := d.length(1)
		if isNil {
			return []any(nil)
		}
		s := make([]any, n)
		for i := range s {
			if s[i] = d.value(depth + 1); d.err != nil {
				break
			}
		}
		return s
	case tagStringMap:
		n, isNil := d.length(2)
		if isNil {
			return map[string]string(nil)
		}
		m := make(map[string]string, n)
		for range n {
			k := d.string()
			m[k] = d.string()
			if d.err != nil {
				break
			}
		}
		return m
	case tagMap:
		n, isNil := d.length(2)
		if isNil {
			return map[string]any(nil)
		}
		m := make(map[string]any, n)
		for range n {
			k := d.string()
			if m[k] = d.value(depth + 1); d.err != nil {
				break
			}
		}
		return m
	default:
		d.fail("unknown tag " + strconv.Itoa(int(tag)))
		return nil
	}
}
