package health_test

import (
	"context"
	"fmt"
	"time"

	"hitship/health"
	"hitship/internal/testenv"
)

func ExampleLedger_Record() {
	r, err := testenv.StartRedis(testenv.RedisOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	ctx := context.Background()
	// Five attempts at least, and customer-side failures over 2 minutes.
	l, err := health.New(r.Client(), health.Config{Prefix: "{hitship}:", MinAttempts: 5, MinFailing: 2 * time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	outcomes := []health.Outcome{health.Success, health.FailProvider, health.FailCustomer, health.FailCustomer, health.FailCustomer}
	for i, o := range outcomes {
		d, err := l.Record(ctx, "acme", o, at.Add(time.Duration(i)*time.Minute))
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%d/%d failed (%d on the customer side, over %s), disabled=%v\n",
			d.Failures, d.Attempts, d.CustomerFailures, d.FailingSpan, d.Disabled)
		if d.Disabled {
			fmt.Println(d.Event.State, d.Event.Reason)
		}
	}
	// Output:
	// 0/1 failed (0 on the customer side, over 0s), disabled=false
	// 1/2 failed (0 on the customer side, over 0s), disabled=false
	// 2/3 failed (1 on the customer side, over 0s), disabled=false
	// 3/4 failed (2 on the customer side, over 1m0s), disabled=false
	// 4/5 failed (3 on the customer side, over 2m0s), disabled=true
	// auto-disabled 60% of 5 uploads failed on the customer side over 2 min in 12 h
}
