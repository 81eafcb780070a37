package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
)

// Sealed values. A value written now is
//
//	sealFormat (1 byte) || key id (4 bytes) || nonce (12) || ciphertext || tag (16)
//
// sealed with AES-256-GCM under the key the id names, with the header and
// the full Redis key as additional data. Values written before key ids
// existed are nonce || ciphertext || tag, the Redis key alone as
// additional data; they still open, under any of the vault's keys.
const (
	sealFormat = 0x01
	keyIDSize  = 4
	headerSize = 1 + keyIDSize
)

// sealer is one AES-256-GCM key and its id.
type sealer struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// newSealer checks key and makes its cipher. The id is the first bytes of
// a SHA-256 of the key under a label of its own: it tells keys apart
// without saying anything useful about them.
func newSealer(key []byte) (sealer, error) {
	if len(key) != KeySize {
		return sealer{}, fmt.Errorf("vault: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, fmt.Errorf("vault: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealer{}, fmt.Errorf("vault: %w", err)
	}
	s := sealer{aead: aead}
	sum := sha256.Sum256(append([]byte("tether vault key id\x00"), key...))
	copy(s.id[:], sum[:])
	return s, nil
}

// KeyID returns the id that values sealed under key carry (see
// WithPreviousKeys), for logs and operators: it does not reveal the key.
func KeyID(key []byte) (string, error) {
	s, err := newSealer(key)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", s.id), nil
}

// seal encrypts plain under the vault's first key with a fresh random
// nonce, bound to the Redis key.
func (v *Vault) seal(key string, plain []byte) []byte {
	s := v.keys[0]
	ns := s.aead.NonceSize()
	out := make([]byte, headerSize+ns, headerSize+ns+len(plain)+s.aead.Overhead())
	out[0] = sealFormat
	copy(out[1:headerSize], s.id[:])
	rand.Read(out[headerSize:]) // never fails (crypto/rand, Go 1.24+)
	return s.aead.Seal(out, out[headerSize:], plain, appendAdditionalData(make([]byte, 0, headerSize+len(key)), out[:headerSize], key))
}

// errSealed is a value that does not open under any of the vault's keys.
var errSealed = errors.New("value does not open")

// openBuffer is scratch space for open: the additional data and the
// plaintext. Its plaintext is only lent: see withOpen.
type openBuffer struct{ ad, plain []byte }

// openBuffers keeps openBuffers between reads (a session read is on
// every token request).
var openBuffers = sync.Pool{New: func() any { return &openBuffer{ad: make([]byte, 0, 128), plain: make([]byte, 0, 512)} }}

// withOpen opens blob, read from key (see open), and calls use with the
// plaintext, which is valid only until use returns: use must copy what it
// keeps, as encoding.BinaryUnmarshaler and encoding/json do.
func (v *Vault) withOpen(key string, blob []byte, use func(plain []byte) error) error {
	buf := openBuffers.Get().(*openBuffer)
	plain, err := v.open(key, blob, buf)
	if err == nil {
		err = use(plain)
	}
	clear(plain) // the plaintext holds tokens: do not leave it in the pool
	if cap(plain) <= 64<<10 {
		buf.plain = plain[:0]
		openBuffers.Put(buf)
	}
	return err
}

// open decrypts what seal wrote under any of the vault's keys, or a value
// from before key ids, into buf.plain (which it returns, grown if need
// be) on success.
func (v *Vault) open(key string, blob []byte, buf *openBuffer) ([]byte, error) {
	ns, overhead := v.keys[0].aead.NonceSize(), v.keys[0].aead.Overhead()
	if len(blob) >= headerSize+ns+overhead && blob[0] == sealFormat {
		buf.ad = appendAdditionalData(buf.ad[:0], blob[:headerSize], key)
		nonce, ct := blob[headerSize:headerSize+ns], blob[headerSize+ns:]
		for _, s := range v.keys {
			if !bytes.Equal(s.id[:], blob[1:headerSize]) {
				continue
			}
			if plain, err := s.aead.Open(buf.plain[:0], nonce, ct, buf.ad); err == nil {
				return plain, nil
			}
		}
	}
	// A value from before key ids (its first byte is random: it may look
	// like sealFormat by chance).
	if len(blob) >= ns+overhead {
		buf.ad = appendAdditionalData(buf.ad[:0], nil, key) // no header before key ids
		for _, s := range v.keys {
			if plain, err := s.aead.Open(buf.plain[:0], blob[:ns], blob[ns:], buf.ad); err == nil {
				return plain, nil
			}
		}
	}
	return buf.plain[:0], errSealed
}

// appendAdditionalData appends what a sealed value authenticates besides
// its plaintext to b: its header and the key it is stored under (so that
// a value moved to another key does not open). open appends to its pooled
// buffer, to allocate nothing on the read path.
func appendAdditionalData(b, header []byte, key string) []byte {
	return append(append(b, header...), key...)
}
