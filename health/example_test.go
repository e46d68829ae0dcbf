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
	l, err := health.New(r.Client(), health.Config{Prefix: "{hitship}:", MinAttempts: 5})
	if err != nil {
		fmt.Println(err)
		return
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i, ok := range []bool{true, true, false, false, false} {
		d, err := l.Record(ctx, "acme", ok, at.Add(time.Duration(i)*time.Minute))
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%d/%d failed, disabled=%v\n", d.Failures, d.Attempts, d.Disabled)
		if d.Disabled {
			fmt.Println(d.Event.State, d.Event.Reason)
		}
	}
	// Output:
	// 0/1 failed, disabled=false
	// 0/2 failed, disabled=false
	// 1/3 failed, disabled=false
	// 2/4 failed, disabled=false
	// 3/5 failed, disabled=true
	// auto-disabled 60% of 5 uploads failed in 12 h
}
