package ginsession

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzWellFormed checks that the ID check accepts exactly the canonical
// base64url encodings of 32 bytes, whatever the input.
func FuzzWellFormed(f *testing.F) {
	f.Add(newID())
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Add("é")
	f.Fuzz(func(t *testing.T, id string) {
		got := wellFormed(id)
		// The reference: a strict decode, except that encoding/base64 skips
		// CR and LF, which an ID never contains.
		b, err := base64.RawURLEncoding.Strict().DecodeString(id)
		want := err == nil && len(b) == idBytes && !strings.ContainsAny(id, "\r\n")
		if got != want {
			t.Fatalf("wellFormed(%q) = %v, want %v", id, got, want)
		}
	})
}
