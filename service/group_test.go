package service_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// TestMoreMembersThanPartitions: a member without partitions is idle by design and
// must stay in its generation; if it left it, every member would rejoin over and
// over (a rebalance storm) and nothing would be delivered.
func TestMoreMembersThanPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	e := newEnv(t, 2, "b-one")
	cfg := e.config(t, integ("one", 1, "b-one", "ndjson"))
	ms := []*member{e.startMember(t, "a", cfg), e.startMember(t, "b", cfg), e.startMember(t, "c", cfg)}

	assigned := func() (sum float64) {
		for _, m := range ms {
			sum += gauge(t, m.reg, "hitship_kafka_assigned_partitions")
		}
		return sum
	}
	// Settled: all three members in the same generation and both partitions assigned.
	settled := func() bool {
		g := gauge(t, ms[0].reg, "hitship_kafka_group_generation")
		for _, m := range ms {
			if gauge(t, m.reg, "hitship_kafka_group_generation") != g || g == 0 {
				return false
			}
		}
		return assigned() == 2
	}
	waitFor(t, 30*time.Second, "all members in one generation, both partitions assigned", settled)
	gen := gauge(t, ms[0].reg, "hitship_kafka_group_generation")
	time.Sleep(8 * time.Second) // several session timeouts and heartbeats
	if g := gauge(t, ms[0].reg, "hitship_kafka_group_generation"); g != gen {
		t.Fatalf("generation moved from %v to %v with a stable membership: the group is rebalancing", gen, g)
	}
	idle := 0
	for _, m := range ms {
		if gauge(t, m.reg, "hitship_kafka_assigned_partitions") == 0 {
			idle++
		}
	}
	if idle != 1 {
		t.Fatalf("%d idle members, want 1", idle)
	}

	hits := e.produceHits(t, 500, []int64{1}, time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC), 10*time.Minute, 1, 7)
	waitFor(t, 60*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	n := 0
	for _, o := range e.objects(t, "b-one") {
		n += len(o.records)
	}
	if n != len(hits) {
		t.Fatalf("%d records delivered, want %d", n, len(hits))
	}
	var consumed float64
	for _, m := range ms {
		consumed += testutil.ToFloat64(counterVecSum(t, m.reg, "hitship_records_consumed_total"))
	}
	if consumed < float64(len(hits)) {
		t.Fatalf("consumed %v records, want at least %d", consumed, len(hits))
	}
}

// counterVecSum returns a gauge holding the sum of a counter's series.
func counterVecSum(t *testing.T, reg *prometheus.Registry, name string) prometheus.Gauge {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sum"})
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				g.Add(m.GetCounter().GetValue())
			}
		}
	}
	return g
}
