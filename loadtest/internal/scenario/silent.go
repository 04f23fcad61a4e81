package scenario

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/loadtest/internal/load"
	"github.com/securestack/ginsession/loadtest/internal/servers"
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/redisstore"
)

// silentSlack is what a request may take beyond the store client's
// timeout bound on a loaded machine: the application's own work and the
// scheduler.
const silentSlack = 250 * time.Millisecond

// Silent points the application at a store that accepts connections and
// never answers (servers.Silent) and sends it, for opt.SilentDuration,
// logins (which write) and profile reads with a well-formed session
// cookie (which read): every request must be answered 503 within the
// store client's timeout, none may hang until the HTTP client's.
func Silent(ctx context.Context, kind string, opt Options) *Report {
	opt.defaults()
	start := time.Now()
	r := newReport("silent-"+kind, "Store that accepts connections and never answers: "+kind)
	g, err := servers.NewGroup()
	if err != nil {
		return r.fail(err).finish(start)
	}
	defer g.Close()
	sl, err := g.Silent()
	if err != nil {
		return r.fail(err).finish(start)
	}

	var (
		store stores.Store
		bound time.Duration
	)
	switch kind {
	case Memcached:
		if store, err = openMemcached(sl.Addr); err != nil {
			return r.fail(err).finish(start)
		}
		bound = memcachedBound
		r.Setup = "memcached.NewFromServers (Timeout 500 ms, not retried)"
	case Redis:
		client := redis.NewClient(redisOptions(sl.Addr))
		defer client.Close()
		store = redisstore.New(client)
		bound = redisBound
		r.Setup = "go-redis with ReadTimeout 500 ms and MaxRetries 1 (two attempts)"
	default:
		return r.fail(fmt.Errorf("unknown store %q", kind)).finish(start)
	}
	defer store.Close()
	clients := min(opt.Clients, 32)
	r.Setup = fmt.Sprintf("%d clients for %v against a listener that accepts and never reads or writes; %s; HTTP client timeout 5 s", clients, opt.SilentDuration, r.Setup)

	a, err := load.Serve(store)
	if err != nil {
		return r.fail(err).finish(start)
	}
	defer a.Close()
	before := load.Stats()
	opt.step("%d clients for %v against a silent %s", clients, opt.SilentDuration, kind)
	res := hammer(ctx, a.URL, clients, opt.SilentDuration)
	sl.Close()
	after, settled := settle(before)

	r.fig("requests", "%s (%s logins, %s profile reads with a well-formed cookie)", thousands(res.n), thousands(res.logins), thousands(res.reads))
	r.fig("statuses", "%s", statuses(res.status))
	r.fig("errors by kind", "%s", failures(res.errs))
	r.fig("latency p50 / p99 / max", "%s / %s / %s (bound: the store client's %s)", ms(res.lat.Quantile(0.5)), ms(res.lat.Quantile(0.99)), ms(res.lat.Max()), ms(bound))
	r.fig("connections the silent listener accepted", "%s", thousands(int64(sl.Accepted())))
	procFigures(r, before, after, settled)

	st503 := res.status[http.StatusServiceUnavailable]
	r.check("every request answered 503, none hung", st503 == res.n && len(res.errs) == 0,
		"%d of %d answered 503; %s", st503, res.n, failures(res.errs))
	r.check("latency bounded by the store client's timeout, not a hang", res.lat.Max() <= bound+silentSlack,
		"max %s, bound %s + %s", ms(res.lat.Max()), ms(bound), ms(silentSlack))
	r.check("no panic", a.Panics.Count() == 0 && res.status[http.StatusInternalServerError] == 0, "%d panics, %d answers 500", a.Panics.Count(), res.status[http.StatusInternalServerError])
	checkProc(r, before, after)
	return r.finish(start)
}

type hammerResult struct {
	n, logins, reads int64
	status           map[int]int64
	errs             map[string]int64
	lat              load.Hist
}

// hammer sends, from each of n goroutines until d has passed, a login and
// a profile read with a forged well-formed cookie in turn.
func hammer(ctx context.Context, url string, n int, d time.Duration) *hammerResult {
	res := &hammerResult{status: map[int]int64{}, errs: map[string]int64{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for i := range n {
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			var lat load.Hist
			for j := 0; time.Now().Before(end) && ctx.Err() == nil; j++ {
				var req *http.Request
				login := (i+j)%2 == 0
				if login {
					req, _ = http.NewRequestWithContext(ctx, http.MethodPost, url+"/login", strings.NewReader(`{"userId":"silent","role":"load"}`))
					req.Header.Set("Content-Type", "application/json")
				} else {
					req, _ = http.NewRequestWithContext(ctx, http.MethodGet, url+"/profile", nil)
					req.AddCookie(&http.Cookie{Name: load.CookieName, Value: wellFormedID()})
				}
				t0 := time.Now()
				resp, err := hc.Do(req)
				code := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					code = resp.StatusCode
				}
				lat.Add(time.Since(t0))
				mu.Lock()
				res.n++
				if login {
					res.logins++
				} else {
					res.reads++
				}
				if err != nil {
					res.errs[kindOf(err)]++
				} else {
					res.status[code]++
				}
				mu.Unlock()
			}
			mu.Lock()
			res.lat.Merge(&lat)
			mu.Unlock()
		})
	}
	wg.Wait()
	return res
}

// wellFormedID returns a random token of the shape ginsession issues, so
// that the middleware takes it to the store.
func wellFormedID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func kindOf(err error) string {
	if strings.Contains(err.Error(), "Timeout") || strings.Contains(err.Error(), "deadline") {
		return "timeout"
	}
	return "connection error"
}
