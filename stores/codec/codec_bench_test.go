package codec_test

import (
	"testing"

	"github.com/securestack/ginsession/stores/codec"
	"github.com/securestack/ginsession/stores/storetest"
)

func BenchmarkEncode(b *testing.B) {
	rec := storetest.SessionRecord()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = codec.Append(buf[:0], rec, 1, 2); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecode(b *testing.B) {
	buf, err := codec.Append(nil, storetest.SessionRecord(), 1, 2)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := codec.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}
