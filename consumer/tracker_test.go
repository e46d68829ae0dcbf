package consumer

import "testing"

func TestTrackerCommittable(t *testing.T) {
	tests := []struct {
		name    string
		next    int64
		hold    []int64
		release []int64
		want    int64
	}{
		{name: "nothing held: after the last record", next: 42, want: 42},
		{name: "smallest held offset", next: 42, hold: []int64{30, 10, 20}, want: 10},
		{name: "released offsets stop holding", next: 42, hold: []int64{30, 10, 20}, release: []int64{10}, want: 20},
		{name: "shared first offset needs every release", next: 42, hold: []int64{10, 10, 20}, release: []int64{10}, want: 10},
		{name: "all released", next: 42, hold: []int64{10, 10}, release: []int64{10, 10}, want: 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(0)
			for _, o := range tt.hold {
				tr.hold(o)
			}
			tr.read(tt.next)
			for _, o := range tt.release {
				tr.release(o)
			}
			if got := tr.committable(); got != tt.want {
				t.Fatalf("committable = %d, want %d", got, tt.want)
			}
		})
	}
}
