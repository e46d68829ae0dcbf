# hitship — see README.md. `make run` runs the service end to end on embedded
# defaults; `make test` runs the tests (installs the test tools it needs first).
GO        ?= go
BIN       := $(CURDIR)/bin
VERSITYGW_VERSION ?= v1.8.0
STATICCHECK_VERSION ?= v0.8.2
export HITSHIP_VERSITYGW ?= $(BIN)/versitygw

# Every build names its commit (hitship version, hitship_build_info): set at link
# time, since Go's own VCS stamp is off here (GOFLAGS=-buildvcs=false) and does not
# see git worktrees. internal/buildinfo documents it; testenv.BuildHitship does the
# same for the tests and benchmarks that build the binary.
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
LDFLAGS  := -X hitship/internal/buildinfo.revision=$(REVISION) -X hitship/internal/buildinfo.version=$(VERSION)

.PHONY: run test test-short bench bench-soak redis-sizing lint tools build fuzz fuzz-short isolation deploy-check image chaos chaos-redis screenshots

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/hitship ./cmd/hitship

# Built, then exec'd: the demo stops cleanly on Ctrl-C and exits 0, which `go run`
# turned into "make: *** ... Interrupt" / "Error 1". DEMO_FLAGS are passed on
# (make run DEMO_FLAGS="--window 10s").
run: build
	@exec $(BIN)/hitship demo $(DEMO_FLAGS)

# versitygw is a production S3 gateway the S3 store's acceptance suite (sink/s3) runs against.
# If it cannot be built (no module proxy), that suite skips with the reason.
tools: $(BIN)/versitygw

$(BIN)/versitygw:
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION) || \
		echo "versitygw could not be built: its acceptance run will be skipped"

test: tools
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz-short

# Issue #4's 10-minute failure isolation: B's bucket fails for 10 minutes while A
# shares its partitions, per-partition and staged (TestIsolationStagedLong, issue
# #12: A's p99 while B fails vs while B is healthy); about 50 minutes in all; the
# short forms run in `make test`.
isolation:
	HITSHIP_ISOLATION_FAIL=10m $(GO) test -count=1 -timeout 120m -v -run 'TestIsolationLong|TestIsolationStagedLong' ./service/

test-short:
	$(GO) test -short -count=1 ./...

# Each e2e mode takes 30 s to 5 min (bench/README.md); the soak has its own target.
# -staged runs the mode's per-partition figure, then the same with staged delivery
# (issue #12), and prints the staged targets' verdicts beside it; -formats makes one
# staged run per format, with records/s per core of each (ocsf-parquet beside ndjson,
# issue #15).
bench:
	$(GO) test -run '^$$' -bench 'HotPath|JSONValid' -benchmem ./consumer/
	$(GO) test -run '^$$' -bench . -benchmem ./hit/ ./window/ ./sink/ ./sink/parquet/ ./ocsf/
	$(GO) run ./bench/e2e -staged -formats ndjson,ocsf-parquet
	$(GO) run ./bench/e2e -tenants 1000 -keyed -s3 https
	$(GO) run ./bench/e2e -tenants 1000 -windows 3 -s3 https -staged
	$(GO) run ./bench/e2e -catchup
	$(GO) run ./bench/e2e -live 2m -staged
	$(GO) run ./bench/e2e -live 2m -keyed -staged-only
	$(GO) run ./bench/e2e -live 2m -tenants 1000
	$(GO) run ./bench/e2e -big -staged

bench-soak:
	$(GO) run ./bench/e2e -live 10m -tenants 100

# Redis memory per partition, integration and parked object, the events
# stream's cap, commands per window (README, "Redis in production"); about
# 7 minutes, hitship runs as the least-privilege ACL user. Not in make test.
redis-sizing:
	$(GO) run ./bench/redis-sizing

FUZZ_TIME ?= 30s
fuzz:
	$(MAKE) fuzz-short FUZZ_SHORT=$(FUZZ_TIME)

# Each fuzz target briefly (part of `make test`); the crash corpora in
# */testdata/fuzz also run as regular tests in every `go test`.
FUZZ_SHORT ?= 10s
fuzz-short:
	$(GO) test -run '^$$' -fuzz '^FuzzScan$$' -fuzztime $(FUZZ_SHORT) ./hit/
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZ_SHORT) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzKeyRender$$' -fuzztime $(FUZZ_SHORT) ./sink/
	$(GO) test -run '^$$' -fuzz '^FuzzKeyTemplate$$' -fuzztime $(FUZZ_SHORT) ./sink/
	$(GO) test -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime $(FUZZ_SHORT) ./secrets/
	$(GO) test -run '^$$' -fuzz '^FuzzParseKeyring$$' -fuzztime $(FUZZ_SHORT) ./secrets/
	$(GO) test -run '^$$' -fuzz '^FuzzMap$$' -fuzztime $(FUZZ_SHORT) ./ocsf/
	$(GO) test -run '^$$' -fuzz '^FuzzColumnsMatchJSON$$' -fuzztime $(FUZZ_SHORT) ./sink/parquet/

lint:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting" && exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# The deploy artifacts against the code: dashboard and alert metric names, promtool
# rule tests, Kubernetes and compose config (also part of `make test`).
deploy-check:
	$(GO) test -count=1 ./deploy
	promtool test rules deploy/prometheus/alerts_test.yml

# Needs a Docker engine (not available on the development machine).
image:
	docker build --build-arg REVISION=$(REVISION) --build-arg VERSION=$(VERSION) -t hitship:dev .

# The chaos run (chaos/doc.go): three real replicas in one group, 1,000,000 hits of
# 50 tenants, SIGKILLs, two broker cuts, a Redis restart, S3 faults, a 2-minute bucket
# failure, a Redis FLUSHALL and a restart without data, a reload that adds, re-tenants,
# moves and removes integrations, a disable/enable, a dead-letter topic outage and a
# full spool disk (a tmpfs: run as root), then an exactly-once check from S3 alone.
# It runs staged delivery (delivery.staged), with a 20-s staging-bucket outage and a
# kill of a replica while it assembles; HITSHIP_CHAOS_PATH=partition runs the
# per-partition path. The short form (2-4 minutes) runs in `make test`.
chaos:
	HITSHIP_CHAOS=long $(GO) test -count=1 -timeout 3h -v -run TestChaos ./chaos/
	$(MAKE) chaos-redis

# The chaos run on a highly available Redis (chaos/redis_test.go): a master with a
# replica and three sentinels, whose master is SIGKILLed mid-run (a failover), and a
# three-master Redis Cluster whose master of hitship's slot is restarted.
chaos-redis:
	HITSHIP_CHAOS=long HITSHIP_CHAOS_REDIS=sentinel $(GO) test -count=1 -timeout 3h -v -run TestChaos ./chaos/
	HITSHIP_CHAOS=long HITSHIP_CHAOS_REDIS=cluster $(GO) test -count=1 -timeout 3h -v -run TestChaos ./chaos/

# The console's pictures in the README (docs/console-list.png, console-dialog.png):
# the browser test (service TestConsole, about 40 s) writes them as it goes. It
# needs Debian's chromium (apt-get install --no-install-recommends chromium, as
# .ci/run does); without it `make test` skips that test, and fails it under CI=true.
screenshots:
	HITSHIP_UI_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run '^TestConsole$$' ./service/
