package store

import "time"

// Both stores keep instants as Unix milliseconds, with 0 for the zero time
// (a member never revoked, a lease not set).

// Millis is t in Unix milliseconds; 0 for the zero time.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMillis is the UTC instant v Unix milliseconds; the zero time for 0.
func FromMillis(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
