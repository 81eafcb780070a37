package vault

import (
	"encoding"
	"encoding/binary"
	"errors"
	"time"
)

// recordVersion prefixes a Record's binary form. Version 1 lacks the
// fields after Created (LastUsed, Forced); records written in it, or as
// JSON (before the binary form existed, starting with '{'), still read.
// Version 3 is version 2 followed by ProviderSID; it is written only for
// a record that has one, so records without stay readable by versions
// that predate it.
const (
	recordV1      = 1
	recordVersion = 2
	recordV3      = 3
)

// Bits of a binary record's flags.
const flagForced = 1 << 0

var (
	_ encoding.BinaryMarshaler   = Record{}
	_ encoding.BinaryUnmarshaler = (*Record)(nil)
)

// errRecordFormat is a plaintext that is not a Record.
var errRecordFormat = errors.New("vault: malformed record")

// MarshalBinary encodes r compactly: a version byte, then each string as a
// uvarint length and its bytes, then each time as varint Unix nanoseconds
// (0 for the zero time), then the flags as a uvarint. Reading it back
// takes a fraction of what JSON does, on the path every /bff/token request
// takes.
func (r Record) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 72+len(r.AccessToken)+len(r.RefreshToken)+len(r.Scope)+len(r.Subject)+len(r.Name)+len(r.TokenType)+len(r.ProviderSID))
	if r.ProviderSID != "" {
		b = append(b, recordV3)
	} else {
		b = append(b, recordVersion)
	}
	for _, s := range [...]string{r.AccessToken, r.TokenType, r.RefreshToken, r.Scope, r.Subject, r.Name} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, t := range [...]time.Time{r.IssuedAt, r.Expiry, r.RefreshExpiry, r.Created, r.LastUsed} {
		var n int64
		if !t.IsZero() {
			n = t.UnixNano()
		}
		b = binary.AppendVarint(b, n)
	}
	var flags uint64
	if r.Forced {
		flags |= flagForced
	}
	b = binary.AppendUvarint(b, flags)
	if r.ProviderSID != "" {
		b = binary.AppendUvarint(b, uint64(len(r.ProviderSID)))
		b = append(b, r.ProviderSID...)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || (b[0] != recordVersion && b[0] != recordV1 && b[0] != recordV3) {
		return errRecordFormat
	}
	v1, v3 := b[0] == recordV1, b[0] == recordV3
	b = b[1:]
	// One copy of the whole encoding: every string below is a slice of it
	// (one allocation instead of one a field, on the path every
	// /bff/token request takes). b is always a tail of it.
	src := string(b)
	str := func(dst *string, k int, n uint64) {
		at := len(src) - len(b) + k
		*dst = src[at : at+int(n)]
		b = b[k+int(n):]
	}
	for _, dst := range [...]*string{&r.AccessToken, &r.TokenType, &r.RefreshToken, &r.Scope, &r.Subject, &r.Name} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return errRecordFormat
		}
		str(dst, k, n)
	}
	times := [...]*time.Time{&r.IssuedAt, &r.Expiry, &r.RefreshExpiry, &r.Created, &r.LastUsed}
	r.LastUsed, r.Forced, r.ProviderSID = time.Time{}, false, ""
	if v1 {
		times[4] = nil
	}
	for _, dst := range times {
		if dst == nil {
			break
		}
		n, k := binary.Varint(b)
		if k <= 0 {
			return errRecordFormat
		}
		*dst = time.Time{}
		if n != 0 {
			*dst = time.Unix(0, n).UTC()
		}
		b = b[k:]
	}
	if !v1 {
		flags, k := binary.Uvarint(b)
		if k <= 0 || flags&^flagForced != 0 {
			return errRecordFormat
		}
		r.Forced = flags&flagForced != 0
		b = b[k:]
	}
	if v3 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n == 0 || n > uint64(len(b)-k) {
			return errRecordFormat
		}
		str(&r.ProviderSID, k, n)
	}
	if len(b) != 0 {
		return errRecordFormat
	}
	return nil
}
