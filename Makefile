# The two commands a newcomer needs:
#   go run ./_example    run the example app on http://localhost:3000
#   make test            run the whole test suite (installs memcached if it can)

GO      ?= go
PKGS    := ./... ./_example
FUZZTIME ?= 10s

.PHONY: test check vet fmt-check unit fuzz bench memcached

test: memcached check unit

memcached:
	@scripts/ensure-memcached.sh

check: fmt-check vet

fmt-check:
	@out="$$(gofmt -l . )"; if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 . ./stores/... | tee bench.txt
