// Package metrics holds every Prometheus metric hitship exports, registered on a
// registerer that main (or a test) injects: there is no global registry. Label
// values known at start-up (partitions, integrations, reasons, results) are
// pre-created so their series exist at zero. All methods are safe for concurrent use.
package metrics

import (
	"hitship/hit"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Delivery results, the `result` label.
const (
	ResultOK      = "ok"      // written
	ResultExists  = "exists"  // 412: the same object was already there (a replay)
	ResultError   = "error"   // an attempt failed (it is retried)
	ResultAborted = "aborted" // given up because the generation ended or hitship stopped
	// ResultDuplicate: staged segments whose records were all in objects already.
	ResultDuplicate = "duplicate"
)

// Metrics is the set of hitship metrics.
type Metrics struct {
	RecordsConsumed  *prometheus.CounterVec // partition
	RecordsSkipped   *prometheus.CounterVec // reason: no_integration, disabled, removed
	BadRecords       *prometheus.CounterVec // reason
	DeadLettered     prometheus.Counter
	LateHits         prometheus.Counter
	ClampedTimes     prometheus.Counter
	FallbackTimes    prometheus.Counter
	HitsDelivered    *prometheus.CounterVec // integration, result
	ObjectsWritten   *prometheus.CounterVec // integration, result
	UploadAttempts   *prometheus.CounterVec // integration, result
	UploadBytes      *prometheus.CounterVec // integration
	UploadDuration   *prometheus.HistogramVec
	DeliveryLatency  *prometheus.HistogramVec // integration: seconds from window end to object written
	OpenBuffers      prometheus.Gauge
	SpoolBytes       *prometheus.GaugeVec // where: memory, disk
	Undelivered      prometheus.Gauge     // closed buffers not yet delivered
	CommittedOffset  *prometheus.GaugeVec // partition
	IdleCloses       prometheus.Counter
	Generation       prometheus.Gauge
	AssignedParts    prometheus.Gauge
	PausedPartitions prometheus.Gauge
	// RedisUp is 1 while Redis answers the periodic PING, 0 during an outage.
	RedisUp prometheus.Gauge
	// PendingSnapshots counts window snapshots of committed offsets held in memory
	// because Redis did not take them; they are written back when it answers.
	PendingSnapshots prometheus.Gauge
	// SpoolErrors counts spool disk errors (a full disk) by op: append (a record
	// into a buffer) or finish (a closed buffer into an object). Each makes the
	// partition restart from its committed offset once the disk takes writes.
	SpoolErrors *prometheus.CounterVec // op
	// LogTruncations counts partitions found with their committed or read offset
	// past the log end (unclean leader election, topic re-created).
	LogTruncations prometheus.Counter

	// ConsumerLag is the partition's high-water mark minus this replica's
	// committed offset, by partition (records).
	ConsumerLag *prometheus.GaugeVec
	// OldestUncommittedAge is, by partition, the seconds since the Kafka
	// timestamp of the first record not yet committed (0 when all read records
	// are committed).
	OldestUncommittedAge *prometheus.GaugeVec
	// SegmentsStaged counts staged delivery's segment writes to the staging
	// bucket by result (ok, error); StagedBytes their bytes; Assembled the
	// customer objects assembled from segments, by kind (main, late) and
	// result (ok, duplicate: every record was already in an object, error).
	SegmentsStaged *prometheus.CounterVec // result
	StagedBytes    prometheus.Counter
	Assembled      *prometheus.CounterVec // kind, result
	// ObjectsParked counts objects this replica parked after cycle 1 failed.
	ObjectsParked *prometheus.CounterVec // integration
	// ObjectsDeadLettered counts parked objects moved to the dead-letter prefix.
	ObjectsDeadLettered *prometheus.CounterVec // integration
	// RetriesInProgress is the number of retry entries this replica holds a lease on.
	RetriesInProgress *prometheus.GaugeVec // integration
	// RetryQueueEntries is the number of parked objects waiting in the shared Redis
	// retry queue (every replica reports the same figure: aggregate with max).
	RetryQueueEntries *prometheus.GaugeVec // integration
	// IntegrationEnabled is 1 while an integration is enabled, 0 while disabled.
	IntegrationEnabled *prometheus.GaugeVec // integration
	// IntegrationAutoDisabled is 1 while the health ledger has disabled it.
	IntegrationAutoDisabled *prometheus.GaugeVec // integration
	// IntegrationPreviousExternalID is 1 while the integration's role was
	// last assumed with the previous external-ID secret's ID (a rotation in
	// progress, its customer not moved yet).
	IntegrationPreviousExternalID *prometheus.GaugeVec // integration
	// IntegrationSuccessRatio is the share of successful attempts in the last 12
	// hours (1 when there were none).
	IntegrationSuccessRatio *prometheus.GaugeVec // integration
	// StatesReconciled counts integration states this replica copied between
	// Redis and the durable copy (kafka.integrations_topic), by action:
	// restored (into Redis: Redis had lost or regressed them), published (to
	// the topic), removed (from Redis, forgotten).
	StatesReconciled *prometheus.CounterVec // action
	// BuildInfo is always 1; its labels say what is running.
	BuildInfo *prometheus.GaugeVec // version, revision, goversion
	// ParkedMissing counts retry entries whose parked object was gone without
	// a dead-letter copy (dead-lettered with reason "parked object missing").
	ParkedMissing *prometheus.CounterVec // integration
	// RetryEntriesRestored counts retry entries made again from objects of
	// the parking bucket after Redis lost them, by kind (parked, dead).
	RetryEntriesRestored *prometheus.CounterVec // integration, kind
}

// New registers the metrics on reg.
func New(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		RecordsConsumed: f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_records_consumed_total", Help: "Kafka records read, by partition."}, []string{"partition"}),
		RecordsSkipped:  f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_records_skipped_total", Help: "Well-formed hits not delivered by design: no_integration (tenant has none), disabled (per integration not routed to), or removed (per integration no longer configured)."}, []string{"reason"}),
		BadRecords:      f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_bad_records_total", Help: "Records sent to the dead-letter topic, by reason."}, []string{"reason"}),
		DeadLettered:    f.NewCounter(prometheus.CounterOpts{Name: "hitship_dead_letter_records_total", Help: "Records acknowledged by the dead-letter topic."}),
		LateHits:        f.NewCounter(prometheus.CounterOpts{Name: "hitship_late_hits_total", Help: "Hits whose window had already closed; they go to late buffers."}),
		ClampedTimes:    f.NewCounter(prometheus.CounterOpts{Name: "hitship_clamped_times_total", Help: "Hits whose time was more than max_future_skew ahead of the record timestamp."}),
		FallbackTimes:   f.NewCounter(prometheus.CounterOpts{Name: "hitship_fallback_times_total", Help: "Hits without a usable time; the record timestamp was used."}),
		HitsDelivered:   f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_hits_delivered_total", Help: "Hits in objects written, by integration and result."}, []string{"integration", "result"}),
		ObjectsWritten:  f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_objects_written_total", Help: "Objects delivered, by integration and result."}, []string{"integration", "result"}),
		UploadAttempts:  f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_upload_attempts_total", Help: "Upload attempts, by integration and result."}, []string{"integration", "result"}),
		UploadBytes:     f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_upload_bytes_total", Help: "Bytes of objects delivered, by integration."}, []string{"integration"}),
		UploadDuration: f.NewHistogramVec(prometheus.HistogramOpts{Name: "hitship_upload_duration_seconds", Help: "Duration of one upload attempt.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}, []string{"integration"}),
		DeliveryLatency: f.NewHistogramVec(prometheus.HistogramOpts{Name: "hitship_delivery_latency_seconds", Help: "Time from the end of a window to its object being written.",
			Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}}, []string{"integration"}),
		OpenBuffers:      f.NewGauge(prometheus.GaugeOpts{Name: "hitship_open_buffers", Help: "Window buffers collecting records."}),
		SpoolBytes:       f.NewGaugeVec(prometheus.GaugeOpts{Name: "hitship_spool_bytes", Help: "Bytes held by buffers and objects not yet delivered, in memory or on disk."}, []string{"where"}),
		Undelivered:      f.NewGauge(prometheus.GaugeOpts{Name: "hitship_undelivered_objects", Help: "Closed objects not yet delivered."}),
		CommittedOffset:  f.NewGaugeVec(prometheus.GaugeOpts{Name: "hitship_committed_offset", Help: "Last offset committed by this replica, by partition."}, []string{"partition"}),
		IdleCloses:       f.NewCounter(prometheus.CounterOpts{Name: "hitship_idle_closes_total", Help: "Watermark advances taken on the wall clock because a partition was idle."}),
		Generation:       f.NewGauge(prometheus.GaugeOpts{Name: "hitship_kafka_group_generation", Help: "Current consumer group generation id of this replica."}),
		AssignedParts:    f.NewGauge(prometheus.GaugeOpts{Name: "hitship_kafka_assigned_partitions", Help: "Partitions assigned to this replica."}),
		PausedPartitions: f.NewGauge(prometheus.GaugeOpts{Name: "hitship_paused_partitions", Help: "Partitions not fetching: the spool is over its disk limit, the dead-letter topic is 1,024 records behind, or a spool error waits for the disk (back-pressure)."}),
		RedisUp:          f.NewGauge(prometheus.GaugeOpts{Name: "hitship_redis_up", Help: "1 while Redis answers the periodic PING, 0 while it is unreachable (degraded)."}),
		PendingSnapshots: f.NewGauge(prometheus.GaugeOpts{Name: "hitship_pending_snapshots", Help: "Window snapshots of committed offsets held in memory until Redis takes them."}),
		SpoolErrors: f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_spool_errors_total",
			Help: "Spool disk errors (disk full), by op: append or finish; the partition restarts from its committed offset once the disk takes writes."}, []string{"op"}),
		LogTruncations: f.NewCounter(prometheus.CounterOpts{Name: "hitship_log_truncations_total",
			Help: "Times a partition's committed or read offset was past the log end (unclean leader election, topic re-created); reading moved back to the first record it may not have read."}),

		ConsumerLag: f.NewGaugeVec(prometheus.GaugeOpts{Name: "hitship_consumer_lag_records",
			Help: "High-water mark minus the committed offset, by partition assigned to this replica."}, []string{"partition"}),
		OldestUncommittedAge: f.NewGaugeVec(prometheus.GaugeOpts{Name: "hitship_oldest_uncommitted_record_age_seconds",
			Help: "Seconds since the Kafka timestamp of the first record not yet committed, by partition (0 when everything read is committed)."}, []string{"partition"}),
		SegmentsStaged: f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_segments_staged_total",
			Help: "Attempts to write a closed per-partition buffer as a segment to the staging bucket, by result."}, []string{"result"}),
		StagedBytes: f.NewCounter(prometheus.CounterOpts{Name: "hitship_staged_bytes_total",
			Help: "Bytes of segments written to the staging bucket."}),
		Assembled: f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_objects_assembled_total",
			Help: "Customer objects assembled from staged segments, by kind (main, late) and result (ok, duplicate, error)."}, []string{"kind", "result"}),
		ObjectsParked: f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_objects_parked_total",
			Help: "Objects written to the parking bucket after retry cycle 1 failed, by integration."}, []string{"integration"}),
		ObjectsDeadLettered: f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_objects_dead_lettered_total",
			Help: "Parked objects moved to the dead-letter prefix after the last retry, by integration."}, []string{"integration"}),
		RetriesInProgress: f.NewGaugeVec(prometheus.GaugeOpts{Name: "hitship_retries_in_progress",
			Help: "Retry entries this replica holds a lease on, by integration."}, []string{"integration"}),
		RetryQueueEntries: f.NewGaugeVec(prometheus.GaugeOpts{Name: "hitship_retry_queue_entries",
			Help: "Parked objects waiting in the shared Redis retry queue, by integration (the same in every replica: aggregate with max)."}, []string{"integration"}),
		IntegrationEnabled: f.NewGaugeVec(prometheus.GaugeOpts{Name: "hitship_integration_enabled",
			Help: "1 while the integration is enabled, 0 while disabled by an operator or the health ledger."}, []string{"integration"}),
		IntegrationAutoDisabled: f.NewGaugeVec(prometheus.GaugeOpts{Name: "hitship_integration_auto_disabled",
			Help: "1 while the integration is disabled by the health ledger (60% or more failed attempts in 12 hours)."}, []string{"integration"}),
		IntegrationPreviousExternalID: f.NewGaugeVec(prometheus.GaugeOpts{Name: "hitship_integration_previous_external_id",
			Help: "1 while the integration's role was last assumed with the previous external ID (external_id.previous_secret_*): its customer has not moved to the new one."}, []string{"integration"}),
		IntegrationSuccessRatio: f.NewGaugeVec(prometheus.GaugeOpts{Name: "hitship_integration_success_ratio",
			Help: "Share of successful upload attempts in the last 12 hours (1 when there were none)."}, []string{"integration"}),
		StatesReconciled: f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_integration_states_reconciled_total",
			Help: "Integration states copied between Redis and the integrations topic, by action (restored into Redis, published to the topic, removed from Redis)."}, []string{"action"}),
		BuildInfo: f.NewGaugeVec(prometheus.GaugeOpts{Name: "hitship_build_info",
			Help: "Always 1; the labels say which build is running."}, []string{"version", "revision", "goversion"}),
		ParkedMissing: f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_parked_objects_missing_total",
			Help: "Retry entries whose parked object was gone without a dead-letter copy; each became a dead letter (reason \"parked object missing\"), by integration."}, []string{"integration"}),
		RetryEntriesRestored: f.NewCounterVec(prometheus.CounterOpts{Name: "hitship_retry_entries_restored_total",
			Help: "Retry entries made again from the parking bucket after Redis lost them, by integration and kind (parked: queued again; dead: a dead letter again)."}, []string{"integration", "kind"}),
	}
	for _, r := range hit.Reasons() {
		m.BadRecords.WithLabelValues(string(r))
	}
	for _, r := range []string{"no_integration", "disabled", "removed"} {
		m.RecordsSkipped.WithLabelValues(r)
	}
	for _, w := range []string{"memory", "disk"} {
		m.SpoolBytes.WithLabelValues(w)
	}
	for _, a := range []string{"restored", "published", "removed"} {
		m.StatesReconciled.WithLabelValues(a)
	}
	for _, op := range []string{"append", "finish"} {
		m.SpoolErrors.WithLabelValues(op)
	}
	for _, r := range []string{ResultOK, ResultError} {
		m.SegmentsStaged.WithLabelValues(r)
	}
	for _, k := range []string{"main", "late"} {
		for _, r := range []string{ResultOK, ResultDuplicate} {
			m.Assembled.WithLabelValues(k, r)
		}
	}
	m.Assembled.WithLabelValues("any", ResultError)
	return m
}

// Integration pre-creates the series of one integration.
func (m *Metrics) Integration(name string) {
	for _, r := range []string{ResultOK, ResultExists, ResultError, ResultAborted} {
		m.HitsDelivered.WithLabelValues(name, r)
		m.ObjectsWritten.WithLabelValues(name, r)
		m.UploadAttempts.WithLabelValues(name, r)
	}
	m.UploadBytes.WithLabelValues(name)
	m.ObjectsParked.WithLabelValues(name)
	m.ObjectsDeadLettered.WithLabelValues(name)
	m.ParkedMissing.WithLabelValues(name)
	for _, k := range []string{"parked", "dead"} {
		m.RetryEntriesRestored.WithLabelValues(name, k)
	}
	m.RetriesInProgress.WithLabelValues(name)
	m.RetryQueueEntries.WithLabelValues(name)
	m.IntegrationEnabled.WithLabelValues(name)
	m.IntegrationAutoDisabled.WithLabelValues(name)
	m.IntegrationPreviousExternalID.WithLabelValues(name)
	m.IntegrationSuccessRatio.WithLabelValues(name).Set(1)
	m.UploadDuration.WithLabelValues(name)
	m.DeliveryLatency.WithLabelValues(name)
}
