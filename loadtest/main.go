// Command loadtest runs ginsession's load and fault scenarios against the
// example application (app.New, served over TCP on loopback) and reports
// what it measured and whether each pass criterion was met: `make load`
// runs it from the repository root.
//
//	go run . [flags]                       # every default scenario
//	go run . -scenarios steady-redis,cluster -duration 10s
//	go run . -list                         # the scenarios
//
// It starts every server it needs (memcached, redis-server, redis-sentinel,
// Redis Cluster nodes) on free loopback ports and kills them before it
// exits. The report goes to standard output and to -results (text,
// Markdown); with -reliability it also replaces the block between
// "<!-- load:start -->" and "<!-- load:end -->" in that file. It exits 1
// when a criterion was missed or a scenario could not run, 2 when a binary
// is missing.
//
// Every flag has an environment variable for make: LOAD_CLIENTS,
// LOAD_DURATION, LOAD_FAULT_DURATION, LOAD_OUTAGE, LOAD_SILENT_DURATION,
// LOAD_SOAK_SESSIONS, LOAD_SOAK_CYCLES, LOAD_SCENARIOS.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/securestack/ginsession/loadtest/internal/scenario"
	"github.com/securestack/ginsession/loadtest/internal/servers"
)

// scenarioFunc runs one scenario.
type scenarioFunc func(ctx context.Context, opt scenario.Options) *scenario.Report

type entry struct {
	id    string
	run   scenarioFunc
	needs []string
	// optIn scenarios run only when named.
	optIn bool
}

var all = []entry{
	{id: "steady-memory", run: steady(scenario.Memory)},
	{id: "steady-memcached", run: steady(scenario.Memcached), needs: []string{servers.MemcachedBinary}},
	{id: "steady-redis", run: steady(scenario.Redis), needs: []string{servers.RedisBinary}},
	{id: "outage-memcached", run: outage(scenario.Memcached), needs: []string{servers.MemcachedBinary}},
	{id: "outage-redis", run: outage(scenario.Redis), needs: []string{servers.RedisBinary}},
	{id: "silent-memcached", run: silent(scenario.Memcached)},
	{id: "silent-redis", run: silent(scenario.Redis)},
	{id: "sentinel", run: sentinel(false), needs: []string{servers.RedisBinary, servers.SentinelBinary}},
	{id: "sentinel-wait", run: sentinel(true), needs: []string{servers.RedisBinary, servers.SentinelBinary}},
	{id: "cluster", run: cluster(scenario.ClusterVariant{Reload: scenario.ClusterReload}), needs: []string{servers.RedisBinary, servers.RedisCLIBinary}},
	{id: "soak-memory", run: scenario.Soak},
	{id: "cluster-default-reload", run: cluster(scenario.ClusterVariant{}), needs: []string{servers.RedisBinary, servers.RedisCLIBinary}, optIn: true},
	{id: "cluster-full-coverage", run: cluster(scenario.ClusterVariant{Reload: scenario.ClusterReload, FullCoverage: true}), needs: []string{servers.RedisBinary, servers.RedisCLIBinary}, optIn: true},
}

func steady(kind string) scenarioFunc {
	return func(ctx context.Context, o scenario.Options) *scenario.Report { return scenario.Steady(ctx, kind, o) }
}

func outage(kind string) scenarioFunc {
	return func(ctx context.Context, o scenario.Options) *scenario.Report { return scenario.Outage(ctx, kind, o) }
}

func silent(kind string) scenarioFunc {
	return func(ctx context.Context, o scenario.Options) *scenario.Report { return scenario.Silent(ctx, kind, o) }
}

func sentinel(wait bool) scenarioFunc {
	return func(ctx context.Context, o scenario.Options) *scenario.Report { return scenario.Sentinel(ctx, wait, o) }
}

func cluster(v scenario.ClusterVariant) scenarioFunc {
	return func(ctx context.Context, o scenario.Options) *scenario.Report {
		return scenario.Cluster(ctx, v, o)
	}
}

func main() {
	os.Exit(run())
}

func run() int {
	var opt scenario.Options
	flag.IntVar(&opt.Clients, "clients", envInt("LOAD_CLIENTS", 64), "concurrent clients of the mix (env LOAD_CLIENTS)")
	flag.DurationVar(&opt.Duration, "duration", envDuration("LOAD_DURATION", 30*time.Second), "length of each steady run (env LOAD_DURATION)")
	flag.DurationVar(&opt.FaultDuration, "fault-duration", envDuration("LOAD_FAULT_DURATION", 20*time.Second), "length of each run with a fault, under load (env LOAD_FAULT_DURATION)")
	flag.DurationVar(&opt.Outage, "outage", envDuration("LOAD_OUTAGE", 4*time.Second), "how long a killed store stays down (env LOAD_OUTAGE)")
	flag.DurationVar(&opt.SilentDuration, "silent-duration", envDuration("LOAD_SILENT_DURATION", 5*time.Second), "length of each silent-store run (env LOAD_SILENT_DURATION)")
	flag.IntVar(&opt.SoakSessions, "soak-sessions", envInt("LOAD_SOAK_SESSIONS", 1_000_000), "sessions per soak cycle (env LOAD_SOAK_SESSIONS)")
	flag.IntVar(&opt.SoakCycles, "soak-cycles", envInt("LOAD_SOAK_CYCLES", 3), "soak cycles (env LOAD_SOAK_CYCLES)")
	only := flag.String("scenarios", os.Getenv("LOAD_SCENARIOS"), "comma-separated scenarios to run; empty: every default one (env LOAD_SCENARIOS)")
	results := flag.String("results", "results/last-run.md", "file the report is written to; empty: none")
	reliability := flag.String("reliability", "", "a file whose block between <!-- load:start --> and <!-- load:end --> the report replaces")
	list := flag.Bool("list", false, "list the scenarios and exit")
	flag.Parse()

	if *list {
		for _, e := range all {
			suffix := ""
			if e.optIn {
				suffix = " (runs only when named)"
			}
			fmt.Println(e.id + suffix)
		}
		return 0
	}
	chosen, err := choose(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		return 2
	}
	var needs []string
	for _, e := range chosen {
		needs = append(needs, e.needs...)
	}
	if err := servers.Need(needs...); err != nil {
		fmt.Fprintf(os.Stderr, "loadtest: %v\nInstall Debian's memcached, redis-server (with redis-cli) and redis-sentinel packages, or run `make load`, which installs them when it can.\n", err)
		return 2
	}

	// go-redis logs a line per failed dial: thousands in an outage.
	redis.SetLogger(scenario.RedisLog)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opt.Progress = os.Stderr
	var reports []*scenario.Report
	start := time.Now()
	machine := scenario.Machine()
	for _, e := range chosen {
		fmt.Fprintf(os.Stderr, "== %s\n", e.id)
		r := e.run(ctx, opt)
		reports = append(reports, r)
		verdict := "passed"
		if !r.OK() {
			verdict = "MISSED: " + strings.Join(r.Missed(), "; ")
		}
		fmt.Fprintf(os.Stderr, "   %s in %.1f s (load average %s)\n", verdict, r.Elapsed.Seconds(), r.LoadAfter)
		if ctx.Err() != nil {
			break
		}
	}
	leftovers := children()
	doc := render(machine, opt, chosen, reports, time.Since(start), leftovers)
	os.Stdout.WriteString(doc)
	if *results != "" {
		if err := os.WriteFile(*results, []byte(doc), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "report written to %s\n", *results)
	}
	if *reliability != "" {
		if err := splice(*reliability, doc); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "figures written into %s\n", *reliability)
	}
	ok := ctx.Err() == nil && len(reports) == len(chosen) && len(leftovers) == 0
	for _, r := range reports {
		ok = ok && r.OK()
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "loadtest: FAILED: a criterion was missed or a scenario did not run (see the report)")
		return 1
	}
	fmt.Fprintln(os.Stderr, "loadtest: every criterion met")
	return 0
}

// choose returns the scenarios named in list, or every default one.
func choose(list string) ([]entry, error) {
	if strings.TrimSpace(list) == "" || list == "all" {
		var out []entry
		for _, e := range all {
			if !e.optIn {
				out = append(out, e)
			}
		}
		return out, nil
	}
	var out []entry
	for id := range strings.SplitSeq(list, ",") {
		id = strings.TrimSpace(id)
		i := slices.IndexFunc(all, func(e entry) bool { return e.id == id })
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q (see -list)", id)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// render writes the whole report.
func render(machine []scenario.Figure, opt scenario.Options, chosen []entry, reports []*scenario.Report, took time.Duration, leftovers []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Last run of `make load`\n\n")
	fmt.Fprintf(&b, "`go run ./loadtest` (from `make load`) with %d clients, steady runs of %v, fault runs of %v (a store down for %v and a random fraction of a second), silent-store runs of %v, a soak of %d × %s sessions. Took %.0f s; the load averages are the machine's, as `uptime` prints them (the machine is shared: other jobs may have run too).\n\n",
		opt.Clients, opt.Duration, opt.FaultDuration, opt.Outage, opt.SilentDuration, opt.SoakCycles, thousands(opt.SoakSessions), took.Seconds())
	b.WriteString("| Machine | |\n|---|---|\n")
	for _, f := range machine {
		fmt.Fprintf(&b, "| %s | %s |\n", f.Name, f.Value)
	}
	fmt.Fprintf(&b, "| load average at the end | %s |\n", scenario.LoadAverage())
	if len(leftovers) == 0 {
		b.WriteString("| server processes left running | none (checked in /proc) |\n")
	} else {
		fmt.Fprintf(&b, "| server processes left running | **%s** |\n", strings.Join(leftovers, ", "))
	}
	b.WriteString("\n| Scenario | Result | Took | Load average (1/5/15 min) at the end |\n|---|---|--:|---|\n")
	for _, r := range reports {
		verdict := "every criterion met"
		if !r.OK() {
			verdict = "**MISSED**: " + strings.ReplaceAll(strings.Join(r.Missed(), "; "), "|", `\|`)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %.1f s | %s |\n", r.ID, verdict, r.Elapsed.Seconds(), r.LoadAfter)
	}
	for _, e := range chosen[len(reports):] {
		fmt.Fprintf(&b, "| `%s` | **did not run** (interrupted) | | |\n", e.id)
	}
	b.WriteString("\n")
	for _, r := range reports {
		b.WriteString(r.Markdown())
	}
	return b.String()
}

// Markers of the block that -reliability replaces.
const (
	startMarker = "<!-- load:start -->"
	endMarker   = "<!-- load:end -->"
)

// splice replaces the block between the markers in path with doc.
func splice(path, doc string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(old, []byte(startMarker))
	j := bytes.Index(old, []byte(endMarker))
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %s ... %s block", path, startMarker, endMarker)
	}
	var b bytes.Buffer
	b.Write(old[:i+len(startMarker)])
	b.WriteString("\n")
	b.WriteString(doc)
	b.Write(old[j:])
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// children returns the processes still running whose parent is this
// process (every server should have been killed and reaped by now).
func children() []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := strconv.Itoa(os.Getpid())
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		status, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		var name, ppid string
		for line := range strings.SplitSeq(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Name:"); ok {
				name = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				ppid = strings.TrimSpace(v)
			}
		}
		if ppid == self {
			out = append(out, name+" (pid "+e.Name()+")")
		}
	}
	return out
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		fmt.Fprintf(os.Stderr, "loadtest: %s=%q is not a number; using %d\n", name, v, def)
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		fmt.Fprintf(os.Stderr, "loadtest: %s=%q is not a duration (such as 30s); using %v\n", name, v, def)
	}
	return def
}

// thousands formats n with thousands separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
