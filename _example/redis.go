package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/stores"
	"github.com/securestack/ginsession/stores/redisstore"
)

// openRedis returns a Redis store on the server at addr (host:port),
// through a client with the settings the redisstore package recommends for
// a session store. The store's Close closes the client too.
func openRedis(addr string) (stores.Store, error) {
	client := redis.NewClient(&redis.Options{
		Addr:                  addr,
		DialTimeout:           500 * time.Millisecond,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		DialerRetries:         1,
		PoolSize:              256,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis %s: %w", addr, err)
	}
	return &ownedRedis{Store: redisstore.New(client), client: client}, nil
}

// ownedRedis is a Redis store whose Close also closes its client, which
// this program built.
type ownedRedis struct {
	*redisstore.Store
	client *redis.Client
}

func (s *ownedRedis) Close() error {
	err := s.Store.Close()
	if cerr := s.client.Close(); err == nil {
		err = cerr
	}
	return err
}
