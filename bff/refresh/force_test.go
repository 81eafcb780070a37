package refresh

import (
	"fmt"
	"testing"
	"time"
)

// TestForceMinAge: a token a forced refresh issued is not replaced by
// another forced refresh before min(ForceMinAge, a quarter of its life);
// a token from a login or a proactive refresh always may be.
func TestForceMinAge(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	r := New(nil, nil, Config{Now: func() time.Time { return now }})
	cases := []struct {
		life, age time.Duration
		forced    bool
		want      bool
	}{
		{time.Hour, 4 * time.Second, true, true},              // 5 s
		{time.Hour, 5 * time.Second, true, false},             //
		{4 * time.Second, 900 * time.Millisecond, true, true}, // a quarter of 4 s: 1 s
		{4 * time.Second, time.Second, true, false},           //
		{0, 4 * time.Second, true, true},                      // no expiry: 5 s
		{0, 6 * time.Second, true, false},                     //
		{time.Hour, 0, false, false},                          // not from a forced refresh
		{4 * time.Second, 0, false, false},                    //
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("life=%v,age=%v,forced=%v", c.life, c.age, c.forced), func(t *testing.T) {
			rec := recordAt(now.Add(-c.age), c.life)
			rec.Forced = c.forced
			if got := r.tooSoon(rec); got != c.want {
				t.Errorf("tooSoon = %v; want %v", got, c.want)
			}
		})
	}
}
