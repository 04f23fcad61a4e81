// Command _example is a small Gin application using ginsession: a JSON API
// (log in, read a profile, log out) and HTML pages to try in a browser
// (sign in with "remember me", a counter, flash messages, your devices,
// sign out everywhere). The routes live in package app.
//
//	go run ./_example                                        # in-memory store, http://localhost:3000
//	go run ./_example -addr :3000 -memcached 127.0.0.1:11211 # sessions shared through memcached
//	go run ./_example -addr :3001 -memcached 127.0.0.1:11211 # a second instance on the same sessions
//	go run ./_example -redis 127.0.0.1:6379                  # sessions shared through Redis
//
// In a browser, open http://localhost:3000/app/login. Or try the JSON API
// with curl (the session cookie is Secure, which browsers and curl accept
// over plain HTTP only for localhost):
//
//	curl -c jar -b jar -X POST localhost:3000/login -d '{"userId":"alice","role":"admin"}'
//	curl -c jar -b jar localhost:3000/profile
//	curl -c jar -b jar -X POST localhost:3000/logout
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/securestack/ginsession"
	"github.com/securestack/ginsession/_example/app"
	"github.com/securestack/ginsession/stores"
)

// storeConfig is the command line's choice of session store. A new store
// flag adds a field here and a case in openStore.
type storeConfig struct {
	// Memcached is a comma-separated list of memcached servers
	// (host:port); empty means another store.
	Memcached string
	// Redis is the address (host:port) of a Redis server; empty means
	// another store.
	Redis string
}

func main() {
	addr := flag.String("addr", ":3000", "listen address")
	var sc storeConfig
	flag.StringVar(&sc.Memcached, "memcached", "", "comma-separated memcached servers (host:port); empty means the in-memory store")
	flag.StringVar(&sc.Redis, "redis", "", "a Redis server (host:port); empty means the in-memory store")
	flag.Parse()

	store, name, err := openStore(sc)
	if err != nil {
		log.Fatal(err)
	}
	m := ginsession.NewManager(store)
	defer m.Close()
	if store != nil {
		defer store.Close()
	}

	srv := &http.Server{Addr: *addr, Handler: app.New(m), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	slog.Info("listening", "addr", *addr, "store", name, "pages", "/app/login")
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// openStore returns the store that sc selects, and its name for the log:
// nil (the Manager's default in-memory store), a memcached store or a Redis
// store.
func openStore(sc storeConfig) (stores.Store, string, error) {
	switch {
	case sc.Memcached != "" && sc.Redis != "":
		return nil, "", errors.New("choose one of -memcached and -redis")
	case sc.Redis != "":
		s, err := openRedis(sc.Redis)
		return s, "redis " + sc.Redis, err
	case sc.Memcached != "":
		s, err := openMemcached(strings.Split(sc.Memcached, ","))
		return s, "memcached " + sc.Memcached, err
	default:
		return nil, "memory", nil
	}
}
