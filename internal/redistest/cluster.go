package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/securestack/ginsession/internal/servertest"
)

// Cluster is a running Redis Cluster of masters without replicas, each a
// Server with cluster mode enabled. Its methods are safe for concurrent
// use.
type Cluster struct {
	// Nodes are the cluster's masters.
	Nodes []*Server
}

// Addrs returns the addresses of the cluster's nodes, as
// redis.ClusterOptions.Addrs takes them.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// StartCluster starts masters cluster-enabled servers (at least 3, which
// redis-cli requires), each with its own cluster bus port, creates the
// cluster with `redis-cli --cluster create ... --cluster-replicas 0
// --cluster-yes`, which assigns the 16384 slots evenly, and waits until
// every node reports cluster_state:ok and knows every other node. The
// nodes stop when the test ends. Missing binaries skip the test, or fail
// it under CI=true, as in Start.
func StartCluster(tb testing.TB, masters int, opts ...Option) *Cluster {
	tb.Helper()
	if masters < 3 {
		tb.Fatalf("redistest.StartCluster: %d masters, want at least 3", masters)
	}
	if _, err := os.Stat(CLIBinary); err != nil {
		SkipOrFail(tb, fmt.Errorf("%w: %s: %v", ErrNotInstalled, CLIBinary, err))
	}
	opts = append(opts, func(c *config) { c.cluster = true })
	c := &Cluster{}
	for range masters {
		c.Nodes = append(c.Nodes, Start(tb, opts...))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, CLIBinary, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v: %s", err, servertest.Tail(string(out)))
	}
	if err := c.waitReady(masters); err != nil {
		tb.Fatalf("redistest: %v: %s", err, servertest.Tail(string(out)))
	}
	return c
}

// waitReady waits until every node says the cluster is ok and knows all
// the nodes.
func (c *Cluster) waitReady(masters int) error {
	deadline := time.Now().Add(startTimeout)
	for _, n := range c.Nodes {
		for {
			info, err := n.clusterInfo()
			if err == nil && info["cluster_state"] == "ok" &&
				info["cluster_known_nodes"] == strconv.Itoa(masters) &&
				info["cluster_slots_ok"] == "16384" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("cluster node %s not ready within %v: %v %v", n.Addr, startTimeout, info, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// clusterInfo returns the fields of CLUSTER INFO.
func (s *Server) clusterInfo() (map[string]string, error) {
	reply, err := s.Do("CLUSTER", "INFO")
	if err != nil {
		return nil, err
	}
	text, _ := reply.(string)
	info := make(map[string]string)
	for line := range strings.SplitSeq(text, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			info[k] = v
		}
	}
	return info, nil
}

// Dump returns the keys and values of every node, as Server.Dump does.
func (c *Cluster) Dump(tb testing.TB) map[string][]byte {
	tb.Helper()
	all := make(map[string][]byte)
	for _, n := range c.Nodes {
		for k, v := range n.Dump(tb) {
			all[k] = v
		}
	}
	return all
}
