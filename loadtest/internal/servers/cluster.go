package servers

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/securestack/ginsession/internal/servertest"
)

// Cluster is a Redis Cluster whose nodes are Procs of a Group.
type Cluster struct {
	Nodes []*Proc
}

// ClusterConfig sets up a Cluster.
type ClusterConfig struct {
	// Masters (at least 3) and ReplicasPerMaster are the cluster's shape.
	Masters, ReplicasPerMaster int
	// NodeTimeout is cluster-node-timeout: how long a node may fail to
	// answer before the others deem it failing.
	NodeTimeout time.Duration
	// Args are more arguments for every node, such as
	// "--cluster-require-full-coverage", "no".
	Args []string
}

// Cluster starts the nodes, each with its own cluster bus port, creates
// the cluster with `redis-cli --cluster create ... --cluster-replicas N
// --cluster-yes` (which makes the first Masters addresses masters and
// spreads the 16384 slots evenly over them) and waits until every node
// says the cluster is ok and every replica is in sync.
func (g *Group) Cluster(cfg ClusterConfig) (*Cluster, error) {
	if err := Need(RedisBinary, RedisCLIBinary); err != nil {
		return nil, err
	}
	if cfg.Masters < 3 {
		return nil, fmt.Errorf("servers: a cluster needs at least 3 masters, not %d", cfg.Masters)
	}
	c := &Cluster{}
	total := cfg.Masters * (1 + cfg.ReplicasPerMaster)
	for i := range total {
		bus, err := FreePort()
		if err != nil {
			return nil, err
		}
		n, err := g.start("cluster node "+strconv.Itoa(i+1), func(port string, p *Proc) {
			p.bin = RedisBinary
			p.args = func(extra []string) []string {
				args := []string{
					"--port", port, "--bind", "127.0.0.1",
					"--save", "", "--appendonly", "no",
					"--daemonize", "no", "--dir", p.dir,
					"--repl-diskless-sync-delay", "0",
					"--cluster-enabled", "yes",
					"--cluster-config-file", "nodes.conf",
					"--cluster-port", bus,
					"--cluster-node-timeout", strconv.FormatInt(cfg.NodeTimeout.Milliseconds(), 10),
				}
				args = append(args, cfg.Args...)
				return append(args, extra...)
			}
			p.ready = func(ctx context.Context, pid int) error { return checkPid(ctx, p.Addr, pid) }
		})
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(cfg.ReplicasPerMaster), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, RedisCLIBinary, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("servers: redis-cli --cluster create: %v: %s", err, servertest.Tail(string(out)))
	}
	err = poll(context.Background(), func(ctx context.Context) error {
		for _, n := range c.Nodes {
			info, err := clusterInfo(ctx, n.Addr)
			if err != nil {
				return err
			}
			if info["cluster_state"] != "ok" || info["cluster_known_nodes"] != strconv.Itoa(total) || info["cluster_slots_ok"] != "16384" {
				return fmt.Errorf("cluster node %s not ready: %v", n.Addr, info)
			}
		}
		nodes, err := c.Topology(ctx)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if !n.Master {
				if err := WaitInSync(ctx, n.Addr); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, servertest.Tail(string(out)))
	}
	return c, nil
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

// Proc returns the node at addr, or nil.
func (c *Cluster) Proc(addr string) *Proc {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// ClusterNode is one line of CLUSTER NODES.
type ClusterNode struct {
	ID, Addr string
	Master   bool
	MasterID string // a replica's master
	Failed   bool   // flagged fail or fail?
	Slots    int    // how many slots a master serves
}

// Topology returns the cluster's nodes as the first running node that
// answers sees them.
func (c *Cluster) Topology(ctx context.Context) ([]ClusterNode, error) {
	var lastErr error
	for _, p := range c.Nodes {
		if !p.Running() {
			continue
		}
		reply, err := Do(ctx, p.Addr, "CLUSTER", "NODES")
		if err != nil {
			lastErr = err
			continue
		}
		return parseNodes(fmt.Sprint(reply)), nil
	}
	return nil, fmt.Errorf("servers: no cluster node answers: %v", lastErr)
}

func parseNodes(text string) []ClusterNode {
	var nodes []ClusterNode
	for line := range strings.SplitSeq(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		n := ClusterNode{ID: f[0], Addr: addr}
		for flag := range strings.SplitSeq(f[2], ",") {
			switch flag {
			case "master":
				n.Master = true
			case "fail", "fail?":
				n.Failed = true
			}
		}
		if f[3] != "-" {
			n.MasterID = f[3]
		}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") {
				continue // a slot being migrated
			}
			lo, hi, found := strings.Cut(s, "-")
			a, _ := strconv.Atoi(lo)
			b := a
			if found {
				b, _ = strconv.Atoi(hi)
			}
			n.Slots += b - a + 1
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// clusterInfo returns the fields of CLUSTER INFO.
func clusterInfo(ctx context.Context, addr string) (map[string]string, error) {
	reply, err := Do(ctx, addr, "CLUSTER", "INFO")
	if err != nil {
		return nil, err
	}
	return parseFields(fmt.Sprint(reply)), nil
}

// ClusterState returns cluster_state as the node at addr sees it.
func ClusterState(ctx context.Context, addr string) (string, error) {
	info, err := clusterInfo(ctx, addr)
	if err != nil {
		return "", err
	}
	return info["cluster_state"], nil
}
