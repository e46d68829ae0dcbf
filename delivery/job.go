package delivery

import (
	"context"

	"hitship/integrations"
	"hitship/sink"
)

// Job is one closed buffer on its way to a bucket. A partition worker
// (package consumer) makes it and hands it to a Delivery; the delivery owns
// it from then on, so the type lives here, with its consumer.
type Job struct {
	Target      *integrations.Target
	Topic       string
	Partition   int
	Key         string
	WindowStart int64 // Unix ms
	WindowEnd   int64 // Unix ms
	FirstOffset int64
	Late        bool
	Records     int
	// Buffer holds the records; the Delivery finishes it into an object and releases
	// it whatever the outcome.
	Buffer *sink.Buffer
	// Fence returns an error satisfying state.IsFenced when this worker no longer owns
	// the partition; the delivery must then not upload.
	Fence func(ctx context.Context) error
}
