# seckill — flash-sale slot tokens for lottery activities.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: run run-cluster test test-short fuzz build vet fmt clean

## run: start the service on the local defaults (Redis and MySQL on localhost)
run:
	$(GO) run ./cmd/seckill -walkthrough

## run-cluster: a Redis Cluster (3 masters, 3 replicas), seckill broker and three
## instances on 8081-8083, all on this machine, until Ctrl-C (scripts/run-cluster.sh
## names the ports and settings it reads from the environment)
run-cluster:
	@scripts/run-cluster.sh

## test: go vet and the linters, every test, against the real Redis and MariaDB/MySQL,
## with the race detector, then each fuzz target briefly
test: vet lint
	$(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) fuzz FUZZTIME=2000x

## test-short: the tests without the race detector
test-short:
	$(GO) test -count=1 ./...

## fuzz: each fuzz target for FUZZTIME, one after the other (go fuzzes one target at a time);
## a failing input is written to activity/httpapi/testdata/fuzz and replayed by every go test
# A count of inputs, not a duration: with a duration, Go 1.26's fuzzing
# coordinator can report its own deadline as a failure (golang/go#75804,
# fixed in Go 1.27) on a loaded machine.
FUZZTIME ?= 5000x
# The targets keep state between inputs (tokens taken, a draft edited), so an
# input's coverage does not always repeat: minimizing it would spend the
# default 60 s on each new input.
FUZZFLAGS = -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s
FUZZTARGETS = FuzzJoin FuzzAdminCreate FuzzAdminPatch FuzzFastJoinBody FuzzJoinAuthorization
fuzz:
	@$(GO) clean -fuzzcache # a corpus grown by earlier runs would use up FUZZTIME on its baseline
	@status=0; for f in $(FUZZTARGETS); do \
		echo "$(GO) test $(FUZZFLAGS) -fuzz '^$$f\$$' ./activity/httpapi/"; \
		$(GO) test $(FUZZFLAGS) -fuzz "^$$f\$$" ./activity/httpapi/ || status=1; \
	done; exit $$status

## mutate: mutation testing, not part of make test (docs/mutation.md gives the last
## scores): every Lua mutant of stock/testdata/lua-mutants.txt against the stock tests
## alone, then gremlins over each package of MUTATE_PKGS, its own files only (-E /:
## gremlins would take the packages below it too), survivors and uncovered mutants
## printed, and the package's testdata/go-mutants.txt: the mutants gremlins cannot run
GREMLINS_VERSION := v0.6.0
GREMLINS         := $(CURDIR)/bin/gremlins
MUTATE_PKGS      ?= ./stock ./activity ./mq
MUTATE_WORKERS   ?= 2
.PHONY: mutate mutate-go mutate-lua gremlins
mutate: mutate-lua mutate-go

## gremlins: install the pinned gremlins into bin/ when it is missing
gremlins:
	@test -x "$(GREMLINS)" || GOBIN="$(CURDIR)/bin" $(GO) install github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)

mutate-go: gremlins
	@status=0; for p in $(MUTATE_PKGS); do \
		d=$${p#./}; \
		echo "gremlins unleash $$p"; \
		"$(GREMLINS)" unleash --tags mutate --workers $(MUTATE_WORKERS) --timeout-coefficient 5 --output-statuses lctv -E / $$p || status=1; \
		if [ -f $$d/testdata/go-mutants.txt ]; then \
			$(GO) run ./internal/tools/mutants -pkg $$d -list $$d/testdata/go-mutants.txt -j $(MUTATE_WORKERS) || status=1; \
		fi; \
	done; exit $$status

mutate-lua:
	$(GO) run ./internal/tools/mutants -list stock/testdata/lua-mutants.txt -j $(MUTATE_WORKERS)

## bench: every design under the same load (loadtest/compare), then the plot;
## writes docs/benchmarks.json and docs/benchmarks.svg (BENCH_FLAGS="-d 5s" to change the run)
.PHONY: bench
bench:
	$(GO) run ./loadtest/compare -json docs/benchmarks.json $(BENCH_FLAGS)
	$(GO) run ./loadtest/plot -in docs/benchmarks.json -out docs/benchmarks.svg

## build: the server binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/seckill ./cmd/seckill

vet:
	$(GO) vet ./...

## lint: staticcheck over everything and errcheck over everything but the tests,
## both pinned and installed into bin/ when missing
STATICCHECK_VERSION := v0.8.2
ERRCHECK_VERSION    := v1.30.0
.PHONY: lint
lint:
	@test -x bin/staticcheck || GOBIN="$(CURDIR)/bin" $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@test -x bin/errcheck || GOBIN="$(CURDIR)/bin" $(GO) install github.com/kisielk/errcheck@$(ERRCHECK_VERSION)
	bin/staticcheck ./...
	bin/errcheck -ignoretests ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

# --- k6 load tests (loadtest/k6; how to read them: loadtest/k6/README.md) ----
# Against a running service (make run in another terminal). Scripts read
# SECKILL_URL (default http://127.0.0.1:8080) and SECKILL_ADMIN_TOKEN from the
# environment; K6_FLAGS passes extra flags to k6 run (e.g. -e SOAK_DURATION=30s).
K6_VERSION := v1.8.1
K6         := $(CURDIR)/bin/k6
K6_FLAGS   ?=
K6_RUN      = @mkdir -p loadtest/results && $(K6) run $(K6_FLAGS) --summary-export=loadtest/results/k6-$(1).json loadtest/k6/$(1).js

.PHONY: k6 loadtest loadtest-smoke loadtest-spike loadtest-soldout loadtest-soak loadtest-all

## k6: build the pinned k6 into bin/ when it is missing or another version
k6:
	@if ! "$(K6)" version 2>/dev/null | grep -q '^k6 $(K6_VERSION) '; then \
		echo "building k6 $(K6_VERSION) into $(CURDIR)/bin (takes a few minutes)"; \
		GOBIN="$(CURDIR)/bin" $(GO) install go.k6.io/k6@$(K6_VERSION); \
	fi

## loadtest: the flash-sale spike (stock 10,000, 3,000 new users/s) against a running service
loadtest: loadtest-spike

## loadtest-smoke: a handful of users, every endpoint once, correctness only
loadtest-smoke: k6
	$(call K6_RUN,smoke)

## loadtest-spike: the same as loadtest
loadtest-spike: k6
	$(call K6_RUN,spike)

## loadtest-soldout: the same crowd after a sell-out: every join must be a fast 409 sold_out
loadtest-soldout: k6
	$(call K6_RUN,soldout)

## loadtest-soak: 300 joins/s for SOAK_DURATION (default 3m) on a large stock
loadtest-soak: k6
	$(call K6_RUN,soak)

## loadtest-all: smoke, spike, sold-out storm and soak, one after the other
loadtest-all: loadtest-smoke loadtest-spike loadtest-soldout loadtest-soak
