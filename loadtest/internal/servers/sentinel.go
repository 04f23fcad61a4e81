package servers

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// SentinelSet is a Redis master, its replicas and the Sentinels that
// monitor it.
type SentinelSet struct {
	// MasterName is the name the Sentinels know the master by.
	MasterName string
	// Master is the server that was master at the start; Replicas were
	// its replicas. A failover swaps the roles, not these fields.
	Master    *Proc
	Replicas  []*Proc
	Sentinels []*Proc
}

// SentinelConfig sets up a SentinelSet.
type SentinelConfig struct {
	// Replicas and Sentinels are how many of each to start (at least 1
	// and 3).
	Replicas, Sentinels int
	// Quorum is how many Sentinels must agree that the master is down
	// (default: a majority).
	Quorum int
	// DownAfter is the Sentinels' down-after-milliseconds: how long the
	// master may fail to answer before a Sentinel deems it down.
	DownAfter time.Duration
	// FailoverTimeout is the Sentinels' failover-timeout.
	FailoverTimeout time.Duration
}

// SentinelSet starts a master, its replicas (each in sync before it
// returns) and Sentinels monitoring the master under the name
// "ginsession", each with a configuration file of its own in the group's
// directory (Sentinels rewrite it), and waits until every Sentinel knows
// the replicas and the other Sentinels: only then can they fail over.
func (g *Group) SentinelSet(cfg SentinelConfig) (*SentinelSet, error) {
	if err := Need(RedisBinary, SentinelBinary); err != nil {
		return nil, err
	}
	if cfg.Replicas < 1 || cfg.Sentinels < 1 {
		return nil, fmt.Errorf("servers: SentinelSet needs at least one replica and one Sentinel, not %d and %d", cfg.Replicas, cfg.Sentinels)
	}
	if cfg.Quorum == 0 {
		cfg.Quorum = cfg.Sentinels/2 + 1
	}
	set := &SentinelSet{MasterName: "ginsession"}
	var err error
	if set.Master, err = g.Redis("redis master"); err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(set.Master.Addr)
	for i := range cfg.Replicas {
		r, err := g.Redis("redis replica "+strconv.Itoa(i+1), "--replicaof", host, port)
		if err != nil {
			return nil, err
		}
		if err := WaitInSync(context.Background(), r.Addr); err != nil {
			return nil, err
		}
		set.Replicas = append(set.Replicas, r)
	}
	for i := range cfg.Sentinels {
		s, err := g.start("sentinel "+strconv.Itoa(i+1), func(sport string, p *Proc) {
			p.bin = SentinelBinary
			conf := p.dir + "/sentinel.conf"
			p.args = func(extra []string) []string {
				text := fmt.Sprintf(`port %s
bind 127.0.0.1
daemonize no
dir %s
sentinel monitor %s %s %s %d
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s %d
sentinel parallel-syncs %s 1
`, sport, p.dir, set.MasterName, host, port, cfg.Quorum,
					set.MasterName, cfg.DownAfter.Milliseconds(),
					set.MasterName, cfg.FailoverTimeout.Milliseconds(),
					set.MasterName)
				// Written before each start; a start failing to write
				// it fails to answer, and launch reports the output.
				_ = os.WriteFile(conf, []byte(text), 0o644)
				return append([]string{conf}, extra...)
			}
			p.ready = func(ctx context.Context, pid int) error { return checkPid(ctx, p.Addr, pid) }
		})
		if err != nil {
			return nil, err
		}
		set.Sentinels = append(set.Sentinels, s)
	}
	err = poll(context.Background(), func(ctx context.Context) error {
		for _, s := range set.Sentinels {
			m, err := set.sentinelMaster(ctx, s.Addr)
			if err != nil {
				return err
			}
			if m["flags"] != "master" || m["num-slaves"] != strconv.Itoa(cfg.Replicas) || m["num-other-sentinels"] != strconv.Itoa(cfg.Sentinels-1) {
				return fmt.Errorf("sentinel %s not settled: flags %s, %s replicas, %s other sentinels", s.Addr, m["flags"], m["num-slaves"], m["num-other-sentinels"])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return set, nil
}

// SentinelAddrs returns the Sentinels' addresses, as
// redis.FailoverOptions.SentinelAddrs takes them.
func (s *SentinelSet) SentinelAddrs() []string {
	addrs := make([]string, len(s.Sentinels))
	for i, p := range s.Sentinels {
		addrs[i] = p.Addr
	}
	return addrs
}

// sentinelMaster returns the fields of SENTINEL MASTER for the set's
// master, asked of the Sentinel at addr.
func (s *SentinelSet) sentinelMaster(ctx context.Context, addr string) (map[string]string, error) {
	reply, err := Do(ctx, addr, "SENTINEL", "MASTER", s.MasterName)
	if err != nil {
		return nil, err
	}
	list, ok := reply.([]any)
	if !ok {
		return nil, fmt.Errorf("SENTINEL MASTER: unexpected reply %T", reply)
	}
	fields := make(map[string]string, len(list)/2)
	for i := 0; i+1 < len(list); i += 2 {
		fields[fmt.Sprint(list[i])] = fmt.Sprint(list[i+1])
	}
	return fields, nil
}

// MasterAddr returns the master's address according to the first Sentinel
// that answers.
func (s *SentinelSet) MasterAddr(ctx context.Context) (string, error) {
	var lastErr error
	for _, p := range s.Sentinels {
		reply, err := Do(ctx, p.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName)
		if err != nil {
			lastErr = err
			continue
		}
		if hp, ok := reply.([]any); ok && len(hp) == 2 {
			return net.JoinHostPort(fmt.Sprint(hp[0]), fmt.Sprint(hp[1])), nil
		}
		lastErr = fmt.Errorf("GET-MASTER-ADDR-BY-NAME: unexpected reply %v", reply)
	}
	return "", lastErr
}

// WaitFailover waits until every Sentinel names a master other than old,
// and that server says it is a master; it returns the new master's
// address.
func (s *SentinelSet) WaitFailover(ctx context.Context, old string) (string, error) {
	var addr string
	err := poll(ctx, func(ctx context.Context) error {
		for i, p := range s.Sentinels {
			reply, err := Do(ctx, p.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName)
			if err != nil {
				return err
			}
			hp, ok := reply.([]any)
			if !ok || len(hp) != 2 {
				return fmt.Errorf("GET-MASTER-ADDR-BY-NAME: unexpected reply %v", reply)
			}
			a := net.JoinHostPort(fmt.Sprint(hp[0]), fmt.Sprint(hp[1]))
			if a == old {
				return fmt.Errorf("sentinel %s still names %s", p.Addr, old)
			}
			if i == 0 {
				addr = a
			} else if a != addr {
				return fmt.Errorf("sentinels disagree: %s, %s", addr, a)
			}
		}
		info, err := Info(ctx, addr, "replication")
		if err != nil {
			return err
		}
		if info["role"] != "master" {
			return fmt.Errorf("%s is not a master yet", addr)
		}
		return nil
	})
	return addr, err
}

// Proc returns the set's server (master or replica) at addr, or nil.
func (s *SentinelSet) Proc(addr string) *Proc {
	for _, p := range append([]*Proc{s.Master}, s.Replicas...) {
		if p.Addr == addr {
			return p
		}
	}
	return nil
}
