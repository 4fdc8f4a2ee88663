# wren: make demo | make test | make bench | make lint | make check
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
export CGO_ENABLED ?= 1
GO ?= go
STATICCHECK_VERSION ?= v0.8.2
DEMO_STORE ?= $(CURDIR)/.wren

.PHONY: chromium all demo test test-s3 test-short bench fuzz lint check deps tools clean

all: test

RIE_VERSION ?= v0.0.0-20261030222936-bef5c4ba774d

## deps: download the Go modules, install the Lambda Runtime Interface
## Emulator the tests run, and check the tools the tests start
deps:
	@command -v $(GO) >/dev/null || { echo "Go is not installed (see README: Requirements)"; exit 1; }
	$(GO) mod download
	@command -v aws-lambda-rie >/dev/null || [ -x "$$($(GO) env GOPATH)/bin/aws-lambda-rie" ] || \
		$(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)
	@command -v redis-server >/dev/null || { echo "redis-server missing: sudo apt-get install -y redis-server"; exit 1; }

DEMO_DATA ?= $(CURDIR)/.wren-demo

## demo: the main jobs end to end on local defaults (worker processes, ./.wren)
demo: deps
	$(GO) build -o bin/montecarlo-pi ./examples/montecarlo-pi
	$(GO) build -o bin/featurize-imagenet ./examples/featurize-imagenet
	$(GO) build -o bin/hogwild ./examples/hogwild
	$(GO) build -o bin/sweep ./examples/sweep
	$(GO) build -o bin/wordcount ./examples/wordcount
	$(GO) build -o bin/mf ./examples/mf
	$(GO) build -o bin/wren ./cmd/wren
	./bin/montecarlo-pi -tasks 1000 -darts 1000000 -store $(DEMO_STORE) -timeline $(CURDIR)/timeline-pi.png
	rm -rf $(DEMO_DATA)
	./bin/featurize-imagenet -synthesize 10x40 -archive train -in $(DEMO_DATA)/imagenet -out $(DEMO_DATA)/features \
		-size 128 -per-call 20 -store $(DEMO_STORE) -fit -timeline $(CURDIR)/timeline-featurize.png
	./bin/hogwild -workers 4 -epochs 5 -store $(DEMO_STORE) -plot $(CURDIR)/loss.png
	./bin/sweep -store $(DEMO_STORE) -out $(CURDIR)/sweep.png
	./bin/mf -store $(DEMO_STORE)
	./bin/wordcount -store $(DEMO_STORE) -csv $(CURDIR)/wordcount.csv -timeline $(CURDIR)/timeline-wordcount.png
	./bin/wren sort -gen -ascii -size 200MB -out $(DEMO_DATA)/records
	./bin/wren sort -in $(DEMO_DATA)/records -out $(DEMO_DATA)/sorted -store $(DEMO_STORE) -timeline $(CURDIR)/timeline-sort.png
	./bin/wren sort -validate -in $(DEMO_DATA)/records -out $(DEMO_DATA)/sorted -store $(DEMO_STORE)
	rm -rf $(DEMO_DATA)
	@echo "the demo's jobs, live: ./bin/wren ui -store $(DEMO_STORE)   (then open http://127.0.0.1:8470/)"

## chromium: headless Chromium for wren ui's browser test (Debian's package)
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		echo "installing Debian's chromium for the browser test"; \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; \
		else sudo apt-get install -y -qq chromium; fi; }

## test: vet, every test with the race detector, then the numeric tests the
## race detector would slow tenfold (files tagged !race) without it
test: deps chromium
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -p 1 -count=1 -timeout 20m -run 'MNIST|Digits|Hogwild|Sparse|Sweep|GoSources|LargeStores' ./linear/ ./sgd/ ./examples/hogwild/ ./examples/sweep/ ./examples/wordcount/ ./internal/ui/ ./cmd/wren/
	# The portable kernels alone (as on a CPU without AVX2), and a build
	# for arm64 (Graviton Lambdas), where only they exist.
	WREN_KERNEL=go $(GO) test -count=1 ./internal/kernel/ ./linear/ ./featurize/
	CGO_ENABLED=0 GOARCH=arm64 $(GO) vet ./internal/kernel/
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build ./...

## test-s3: the blob conformance suite and the Lambda end-to-end tests
## against a real S3 server, SeaweedFS (weed mini on loopback), which checks
## signatures, multipart uploads and conditional puts. weed is built once
## (about 10 minutes on 2 cores) and kept in $(WEED_CACHE).
WEED_VERSION ?= v0.0.0-20261109003541-7506e5f91cd6
WEED_CACHE ?= $(HOME)/.cache/wren/weed-$(WEED_VERSION)
WEED := $(WEED_CACHE)/weed
$(WEED):
	$(GO) mod download github.com/seaweedfs/seaweedfs@$(WEED_VERSION)
	rm -rf $(WEED_CACHE)/src && mkdir -p $(WEED_CACHE)
	cp -r "$$($(GO) list -m -f '{{.Dir}}' github.com/seaweedfs/seaweedfs@$(WEED_VERSION))" $(WEED_CACHE)/src
	chmod -R u+w $(WEED_CACHE)/src
	cd $(WEED_CACHE)/src && CGO_ENABLED=0 $(GO) build -o $(WEED).tmp ./weed
	mv $(WEED).tmp $(WEED) && rm -rf $(WEED_CACHE)/src
test-s3: deps $(WEED)
	WREN_TEST_WEED=$(WEED) $(GO) test -count=1 -timeout 20m ./blob/s3blob ./worker/awslambda

## fuzz: each fuzz test of a decoder of untrusted bytes for FUZZTIME (make
## test runs their seed corpora, testdata/fuzz and f.Add, as plain tests)
FUZZTIME ?= 20s
FUZZ_TARGETS := ./internal/npy:FuzzRead ./linear:FuzzReadLibSVM ./featurize:FuzzDecode \
	./featurize:FuzzPNM ./job:FuzzParseInvocation ./blob/s3blob:FuzzParseURL \
	./mapreduce:FuzzRunReader ./job:FuzzReadPackIndex ./internal/redisaddr:FuzzParse \
	./internal/kernel:FuzzDgemm
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

## test-short: every test, no race detector
test-short:
	$(GO) test -count=1 ./...

## bench: the paper's microbenchmarks as JSON, then the testing.B benchmarks
bench: deps
	$(GO) build -o bin/wren ./cmd/wren
	./bin/wren bench tune -trials 200 -trial-ms 50
	./bin/wren bench sgd
	./bin/wren bench map -tasks 1000 -task-ms 20
	./bin/wren bench map -tasks 10000 -task-ms 0 -chunk 1
	./bin/wren bench map -tasks 10000 -task-ms 0 -chunk 10
	./bin/wren bench store -store $(DEMO_STORE) -size 64MiB
	./bin/wren bench ps -shards 1,2
	./bin/wren bench gist
	./bin/wren bench linear
	./bin/wren bench mapreduce -text-size 256MB -sort-size 1GB
	./bin/wren bench flops
	./bin/wren bench storage -store $(DEMO_STORE)
	./bin/wren bench redis
	$(GO) test -run '^$$' -bench . -benchmem ./...

tools:
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## lint: gofmt, go vet, staticcheck
lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

## check: lint and test
check: lint test

clean:
	rm -rf bin .wren .wren-demo .wren-wordcount timeline-*.png loss.png sweep*.png wordcount.csv
