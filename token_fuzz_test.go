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

// FuzzParseToken checks that, with a server key, a token is accepted
// exactly when it is a well-formed ID, a dot and that ID's MAC, and that it
// then maps to the store key of its ID.
func FuzzParseToken(f *testing.F) {
	m := NewManager(nil, WithTokenHashKey([]byte("fuzz key")))
	f.Cleanup(func() { _ = m.Close() })
	tok, _ := m.newToken()
	f.Add(tok)
	f.Add(tok[:idLen])
	f.Add(tok[:len(tok)-1] + "A")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		key, ok := m.parseToken(token)
		want := false
		if len(token) == maxTokenLen && token[idLen] == '.' && wellFormed(token[:idLen]) {
			mac := m.hash.cookieMAC(token[:idLen])
			want = token[idLen+1:] == base64.RawURLEncoding.EncodeToString(mac[:])
		}
		if ok != want {
			t.Fatalf("parseToken(%q) = %v, want %v", token, ok, want)
		}
		if ok && key != m.hash.key(token[:idLen]) {
			t.Fatalf("parseToken(%q): wrong store key", token)
		}
	})
}
