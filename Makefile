# seckill — flash-sale slot tokens for lottery activities.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: run test test-short build vet fmt clean

## run: start the service on the local defaults (Redis and MySQL on localhost)
run:
	$(GO) run ./cmd/seckill -walkthrough

## test: every test, against the real Redis and MariaDB/MySQL, with the race detector
test: vet
	$(GO) test -race -count=1 -timeout 15m ./...

## test-short: the tests without the race detector
test-short:
	$(GO) test -count=1 ./...

## build: the server binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/seckill ./cmd/seckill

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
