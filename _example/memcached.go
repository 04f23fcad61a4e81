package main

import (
	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/memcached"
)

// openMemcached returns a memcached store on the given servers, with the
// store's connection defaults (timeouts and idle connections).
func openMemcached(servers []string) (stores.Store, error) {
	s, err := memcached.NewFromServers(servers)
	if err != nil {
		return nil, err
	}
	return s, nil
}
