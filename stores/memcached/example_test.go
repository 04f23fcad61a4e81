package memcached_test

import (
	"log"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/securestack/ginsession/stores/memcached"
)

// A store on servers given by address, with the package's client
// defaults. Pass it to ginsession.NewManager.
func ExampleNewFromServers() {
	store, err := memcached.NewFromServers([]string{"memcached-1:11211", "memcached-2:11211"},
		memcached.WithPrefix("shop:"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
}

// A store on a client configured by the application, which keeps owning
// it: size its idle pool for the application's concurrency.
func ExampleNew() {
	client := memcache.New("memcached-1:11211")
	client.Timeout = memcached.DefaultTimeout
	client.MaxIdleConns = 256 // peak concurrent requests per server
	defer client.Close()

	store := memcached.New(client, memcached.WithPrefix("shop:"))
	defer store.Close()
}
