package vault

import (
	"encoding/binary"
	"testing"
	"time"
)

// marshalV1 is the binary form version 1 wrote: no LastUsed, no flags.
func marshalV1(r Record) []byte {
	b := []byte{recordV1}
	for _, s := range [...]string{r.AccessToken, r.TokenType, r.RefreshToken, r.Scope, r.Subject, r.Name} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, t := range [...]time.Time{r.IssuedAt, r.Expiry, r.RefreshExpiry, r.Created} {
		var n int64
		if !t.IsZero() {
			n = t.UnixNano()
		}
		b = binary.AppendVarint(b, n)
	}
	return b
}

// TestRecordBinaryVersions: the fields version 2 added round-trip, and a
// record written in version 1 still reads (into a Record whose new fields
// were set before: they are cleared), through the vault too.
func TestRecordBinaryVersions(t *testing.T) {
	rec := *sampleRecord()
	rec.LastUsed, rec.Forced = rec.Created.Add(time.Hour), true
	b, _ := rec.MarshalBinary()
	var got Record
	if err := got.UnmarshalBinary(b); err != nil || got != rec {
		t.Fatalf("version 2 round trip: %+v, %v; want %+v", got, err, rec)
	}
	bad := append([]byte(nil), b...)
	bad[len(bad)-1] = 0x02 // an unknown flag
	if err := new(Record).UnmarshalBinary(bad); err == nil {
		t.Error("an unknown flag decoded")
	}

	old := rec
	old.LastUsed, old.Forced = time.Time{}, false
	got = rec // new fields set: decoding must clear them
	if err := got.UnmarshalBinary(marshalV1(old)); err != nil || got != old {
		t.Fatalf("a version 1 record: %+v, %v; want %+v", got, err, old)
	}
	v1 := marshalV1(old)
	for i := range len(v1) {
		if err := new(Record).UnmarshalBinary(v1[:i]); err == nil {
			t.Errorf("a version 1 record cut at %d of %d bytes decoded", i, len(v1))
		}
	}

	v, err := Open(t.Context(), "", testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	key := v.sessionKey("v1")
	if err := v.rdb.Set(t.Context(), key, v.seal(key, v1), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if r, err := v.Get(t.Context(), "v1"); err != nil || *r != old {
		t.Fatalf("a version 1 record in the vault: %+v, %v; want %+v", r, err, old)
	}
}

// TestRecordProviderSID: a record with a provider sid is written in
// version 3 and round-trips; one without stays version 2 (readable by the
// versions before the field); a version 2 record read into a Record with
// a provider sid clears it; a cut or padded version 3 does not decode.
func TestRecordProviderSID(t *testing.T) {
	rec := *sampleRecord()
	rec.ProviderSID = "op-session-1"
	b, _ := rec.MarshalBinary()
	if b[0] != recordV3 {
		t.Fatalf("version byte %d; want %d", b[0], recordV3)
	}
	var got Record
	if err := got.UnmarshalBinary(b); err != nil || got != rec {
		t.Fatalf("version 3 round trip: %+v, %v; want %+v", got, err, rec)
	}
	for i := range len(b) {
		if err := new(Record).UnmarshalBinary(b[:i]); err == nil {
			t.Errorf("a version 3 record cut at %d of %d bytes decoded", i, len(b))
		}
	}
	if err := new(Record).UnmarshalBinary(append(b, 0)); err == nil {
		t.Error("a version 3 record with a trailing byte decoded")
	}
	plain := rec
	plain.ProviderSID = ""
	b2, _ := plain.MarshalBinary()
	if b2[0] != recordVersion {
		t.Fatalf("without a provider sid: version %d; want %d", b2[0], recordVersion)
	}
	got = rec
	if err := got.UnmarshalBinary(b2); err != nil || got != plain {
		t.Fatalf("version 2 into a record with a provider sid: %+v, %v; want %+v", got, err, plain)
	}
}

// FuzzRecordBinary: any bytes decode into a record or errRecordFormat,
// never a panic; a record that decoded encodes to a form that decodes to
// the same record.
func FuzzRecordBinary(f *testing.F) {
	for _, r := range []Record{*sampleRecord(), {ProviderSID: "psid", Forced: true}, {}} {
		b, err := r.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(marshalV1(*sampleRecord()))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := r.UnmarshalBinary(b); err != nil {
			if err != errRecordFormat {
				t.Fatalf("UnmarshalBinary: %v; want errRecordFormat", err)
			}
			return
		}
		again, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var r2 Record
		if err := r2.UnmarshalBinary(again); err != nil {
			t.Fatalf("a decoded record's own encoding does not decode: %v", err)
		}
		if r2 != r {
			t.Fatalf("round trip:\n%+v\n%+v", r, r2)
		}
	})
}
