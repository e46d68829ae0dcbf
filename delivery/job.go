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
	// CloseAt is the watermark boundary at which the buffer closed and Digest
	// names its records (sink.DigestOffset): staged delivery names the
	// buffer's segment by them.
	CloseAt int64
	Digest  uint64
	Late    bool
	Records int
	// Buffer holds the records; the Delivery finishes it into an object and releases
	// it whatever the outcome.
	Buffer *sink.Buffer
	// Object, when set instead of Buffer, is the finished object (staged
	// delivery assembles it); the caller keeps it and releases it after done.
	Object *sink.Object
	// Parked, if set, is called when the object was parked rather than
	// delivered (before done(nil)).
	Parked func()
	// Fence returns an error satisfying state.IsFenced when this worker no longer owns
	// the partition; the delivery must then not upload.
	Fence func(ctx context.Context) error
}
