package store

import (
	"testing"
	"time"
)

func TestMillis(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	for _, tc := range []struct {
		name string
		in   time.Time
		want int64
		back time.Time
	}{
		{"zero time is 0", time.Time{}, 0, time.Time{}},
		{"an instant", at, at.UnixMilli(), at},
		{"sub-millisecond dropped", at.Add(999 * time.Microsecond), at.UnixMilli(), at},
		{"other zones come back in UTC", at.In(time.FixedZone("x", 3600)), at.UnixMilli(), at},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Millis(tc.in)
			if got != tc.want {
				t.Fatalf("Millis = %d, want %d", got, tc.want)
			}
			if back := FromMillis(got); !back.Equal(tc.back) || back.Location() != time.UTC {
				t.Fatalf("FromMillis = %v, want %v in UTC", back, tc.back)
			}
		})
	}
}
