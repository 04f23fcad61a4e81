package ginsession

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/securestack/ginsession/stores"
)

// Session IDs are 32 bytes (256 bits) from crypto/rand in unpadded
// base64url: 43 characters. That is twice the 128 bits of entropy that
// OWASP and ASVS ask for.
//
// With a server key (WithTokenHashKey) the token a client holds is the ID,
// a dot and a MAC of the ID: 9 bytes (72 bits) of HMAC-SHA-256 under the
// key, in 12 base64url characters. A token whose MAC does not verify is
// refused like any malformed one, without a store call, so random
// well-formed tokens cost the store nothing. Without a key the token is
// the ID alone.
const (
	idBytes  = 32
	idLen    = 43 // base64.RawURLEncoding.EncodedLen(idBytes)
	macBytes = 9
	macLen   = 12 // base64.RawURLEncoding.EncodedLen(macBytes)
	// maxTokenLen is the length of a token with its MAC.
	maxTokenLen = idLen + 1 + macLen
)

// newToken returns a fresh session token and the store key of its ID.
func (m *Manager) newToken() (string, stores.Key) {
	id := newID()
	key := m.hash.key(id)
	if !m.hash.keyed {
		return id, key
	}
	mac := m.hash.cookieMAC(id)
	return id + "." + base64.RawURLEncoding.EncodeToString(mac[:]), key
}

// parseToken checks that token could have been issued by newToken and
// returns the store key of its ID. It looks at nothing but the string (and
// the server key), so junk, probing and forged tokens are refused without
// a store call.
func (m *Manager) parseToken(token string) (stores.Key, bool) {
	if !m.hash.keyed {
		if !wellFormed(token) {
			return stores.Key{}, false
		}
		return m.hash.key(token), true
	}
	if len(token) != maxTokenLen || token[idLen] != '.' || !wellFormed(token[:idLen]) {
		return stores.Key{}, false
	}
	var got [macBytes]byte
	if n, err := base64.RawURLEncoding.Decode(got[:], []byte(token[idLen+1:])); err != nil || n != macBytes {
		return stores.Key{}, false
	}
	want := m.hash.cookieMAC(token[:idLen])
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return stores.Key{}, false
	}
	return m.hash.key(token[:idLen]), true
}

// newID returns a fresh session ID.
func newID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// wellFormed reports whether id could have been issued by newID: 43
// characters of the base64url alphabet whose last character carries no
// stray bits. It looks at nothing but the string, so junk and probing
// cookies are rejected without a store call.
func wellFormed(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < idLen; i++ {
		if b64Index[id[i]] < 0 {
			return false
		}
	}
	// 43 characters hold 258 bits; the last character's low 2 bits are
	// padding and must be zero in a canonical encoding.
	return b64Index[id[idLen-1]]&3 == 0
}

var b64Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

// hasher derives store keys from session IDs. Stores only ever see the
// derived key, so a dump of a store cannot be replayed as a cookie.
type hasher struct {
	// ipad and opad are the HMAC-SHA-256 pads of the server key; when
	// keyed is false plain SHA-256 is used.
	keyed      bool
	ipad, opad [sha256.BlockSize]byte
}

func newHasher(key []byte) hasher {
	var h hasher
	if len(key) == 0 {
		return h
	}
	h.keyed = true
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	copy(h.ipad[:], key)
	copy(h.opad[:], key)
	for i := range h.ipad {
		h.ipad[i] ^= 0x36
		h.opad[i] ^= 0x5c
	}
	return h
}

// key returns SHA-256(id), or HMAC-SHA-256(serverKey, id) when a key is
// configured. It does not allocate.
func (h *hasher) key(id string) stores.Key {
	if !h.keyed {
		// Hash from a stack copy: converting id to a []byte would allocate.
		var buf [2 * idLen]byte
		if len(id) <= len(buf) {
			n := copy(buf[:], id)
			return sha256.Sum256(buf[:n])
		}
		return sha256.Sum256([]byte(id))
	}
	return h.mac(id)
}

// cookieMAC returns the MAC of a token's ID: the first bytes of
// HMAC-SHA-256 of the ID under a label of its own, so that it reveals
// nothing of the ID's store key. It requires a keyed hasher.
func (h *hasher) cookieMAC(id string) [macBytes]byte {
	var buf [8 + idLen]byte
	n := copy(buf[:], "\x00mac\x00")
	n += copy(buf[n:], id)
	sum := h.mac(string(buf[:n]))
	return [macBytes]byte(sum[:macBytes])
}

// mac computes HMAC-SHA-256 from the precomputed pads: SHA-256(opad ||
// SHA-256(ipad || msg)). Inputs longer than the stack buffer (never a
// well-formed ID) fall back to the streaming hash.
func (h *hasher) mac(msg string) stores.Key {
	var buf [sha256.BlockSize + 64]byte
	var inner [sha256.Size]byte
	if len(msg) <= len(buf)-sha256.BlockSize {
		n := copy(buf[:], h.ipad[:])
		n += copy(buf[n:], msg)
		inner = sha256.Sum256(buf[:n])
	} else {
		d := sha256.New()
		d.Write(h.ipad[:])
		d.Write([]byte(msg))
		d.Sum(inner[:0])
	}
	n := copy(buf[:], h.opad[:])
	n += copy(buf[n:], inner[:])
	return sha256.Sum256(buf[:n])
}
