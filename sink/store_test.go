package sink_test

import (
	"context"
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"hitship/sink"
	"hitship/sink/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemStoreAcceptance(t *testing.T) {
	storetest.Acceptance(t, func(t *testing.T) (sink.Store, storetest.Reader) {
		m, err := sink.NewMemStore()
		if err != nil {
			t.Fatal(err)
		}
		return m, storetest.Reader{
			IfNoneMatch: true,
			Get: func(_ context.Context, key string) (storetest.Got, error) {
				o, ok := m.Get(key)
				if !ok {
					return storetest.Got{}, fmt.Errorf("no object %q", key)
				}
				return storetest.Got{Data: o.Data, ContentType: o.ContentType, ContentEncoding: o.ContentEncoding}, nil
			},
		}
	})
}
