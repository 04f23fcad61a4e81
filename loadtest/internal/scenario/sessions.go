package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/securestack/ginsession/loadtest/internal/load"
)

// written is a session whose login was answered 200.
type written struct {
	cookie string
	user   string
	at     time.Time // when the 200 arrived
}

// sessionWriters log in from n goroutines, each time as a new user with a
// fresh jar, until stop is closed, and keep every session answered 200:
// the sessions a store promised to keep, right up to a fault.
type sessionWriters struct {
	mu       sync.Mutex
	sessions []written
	failed   int
	wg       sync.WaitGroup
	stop     chan struct{}
}

func startWriters(ctx context.Context, base string, n int, prefix string) *sessionWriters {
	w := &sessionWriters{stop: make(chan struct{})}
	u, _ := url.Parse(base)
	for i := range n {
		w.wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			for j := 0; ; j++ {
				select {
				case <-w.stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				jar, _ := cookiejar.New(nil)
				hc := &http.Client{Transport: tr, Jar: jar, Timeout: 5 * time.Second}
				user := prefix + "-" + strconv.Itoa(i) + "-" + strconv.Itoa(j)
				body := `{"userId":"` + user + `","role":"writer"}`
				resp, err := hc.Post(base+"/login", "application/json", strings.NewReader(body))
				ok := false
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					ok = resp.StatusCode == http.StatusOK
				}
				at := time.Now()
				var cookie string
				for _, k := range jar.Cookies(u) {
					if k.Name == load.CookieName {
						cookie = k.Value
					}
				}
				w.mu.Lock()
				if ok && cookie != "" {
					w.sessions = append(w.sessions, written{cookie: cookie, user: user, at: at})
				} else {
					w.failed++
				}
				w.mu.Unlock()
				if !ok {
					time.Sleep(10 * time.Millisecond) // the store is down: do not spin
				}
			}
		})
	}
	return w
}

// Stop stops the writers and returns the sessions they wrote.
func (w *sessionWriters) Stop() []written {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sessions
}

// readBack is the outcome of reading sessions back.
type readBack struct {
	kept, lost, unclear int
}

// readSessions reads each session's profile (retrying failures for a
// while) and counts those that answer 200 with their user, those that
// answer 401, and those that gave no clear answer.
func readSessions(ctx context.Context, base string, sessions []written) readBack {
	var mu sync.Mutex
	var rb readBack
	jobs := make(chan written)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for s := range jobs {
				outcome := readOne(ctx, hc, base, s)
				mu.Lock()
				switch outcome {
				case http.StatusOK:
					rb.kept++
				case http.StatusUnauthorized:
					rb.lost++
				default:
					rb.unclear++
				}
				mu.Unlock()
			}
		})
	}
	for _, s := range sessions {
		jobs <- s
	}
	close(jobs)
	wg.Wait()
	return rb
}

// readOne returns 200 (the session answers as its user), 401, or 0.
func readOne(ctx context.Context, hc *http.Client, base string, s written) int {
	for attempt := range 10 {
		if attempt > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/profile", nil)
		req.AddCookie(&http.Cookie{Name: load.CookieName, Value: s.cookie})
		resp, err := hc.Do(req)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			var p struct {
				UserID string `json:"userId"`
			}
			if json.Unmarshal(b, &p) == nil && p.UserID == s.user {
				return http.StatusOK
			}
			return 0
		case http.StatusUnauthorized:
			return http.StatusUnauthorized
		}
	}
	return 0
}

// writtenBefore returns the sessions answered before t, and how many of those
// in the last window before it.
func writtenBefore(sessions []written, t time.Time, window time.Duration) ([]written, int) {
	var out []written
	recent := 0
	for _, s := range sessions {
		if s.at.Before(t) {
			out = append(out, s)
			if t.Sub(s.at) <= window {
				recent++
			}
		}
	}
	return out, recent
}

func (rb readBack) String() string {
	return fmt.Sprintf("%d readable, %d lost (401), %d without a clear answer", rb.kept, rb.lost, rb.unclear)
}
