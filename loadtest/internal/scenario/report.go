// Package scenario holds the load and fault runs of `make load`: each
// starts the servers it needs, serves the example application on them,
// drives it with package load's clients, breaks what it breaks, and
// returns a Report of figures and pass criteria. The load command prints
// the reports and writes them to loadtest/results/; the package's tests
// run short versions of the same scenarios and require every criterion.
package scenario

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Options size the scenarios.
type Options struct {
	// Clients is the number of concurrent clients of the mix (default 64).
	Clients int
	// Duration is how long each steady run lasts (default 30s).
	Duration time.Duration
	// FaultDuration is how long each run with a fault lasts, under load
	// (default 20s); the fault comes a quarter of the way in.
	FaultDuration time.Duration
	// Outage is how long a killed store stays down (default 4s).
	Outage time.Duration
	// SilentDuration is how long the silent-store runs last (default 5s).
	SilentDuration time.Duration
	// SoakSessions and SoakCycles size the memory store's soak (default
	// 1,000,000 sessions, 3 cycles).
	SoakSessions, SoakCycles int
	// Progress receives a line as each step starts (default: nowhere).
	Progress io.Writer
}

func (o *Options) defaults() {
	if o.Clients <= 0 {
		o.Clients = 64
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.FaultDuration <= 0 {
		o.FaultDuration = 20 * time.Second
	}
	if o.Outage <= 0 {
		o.Outage = 4 * time.Second
	}
	if o.SilentDuration <= 0 {
		o.SilentDuration = 5 * time.Second
	}
	if o.SoakSessions <= 0 {
		o.SoakSessions = 1_000_000
	}
	if o.SoakCycles <= 0 {
		o.SoakCycles = 3
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

func (o *Options) step(format string, args ...any) {
	fmt.Fprintf(o.Progress, "  "+format+"\n", args...)
}

// Figure is one measured value.
type Figure struct{ Name, Value string }

// Criterion is a pass criterion and what was measured against it.
type Criterion struct {
	Name string
	Met  bool
	Got  string
}

// Report is what a scenario measured and whether it passed.
type Report struct {
	// ID names the scenario on the command line (steady-memory, ...).
	ID string
	// Title says what it is; Setup how it ran.
	Title, Setup string
	// LoadBefore and LoadAfter are the machine's load averages (1, 5 and
	// 15 minutes, as uptime prints them) when the scenario started and
	// ended.
	LoadBefore, LoadAfter string
	Elapsed               time.Duration
	Figures               []Figure
	Criteria              []Criterion
	Notes                 []string
	// Err is set when the scenario could not run (a server did not
	// start): no figure then means anything.
	Err error
}

func newReport(id, title string) *Report {
	return &Report{ID: id, Title: title, LoadBefore: LoadAverage()}
}

func (r *Report) finish(start time.Time) *Report {
	r.Elapsed = time.Since(start)
	r.LoadAfter = LoadAverage()
	return r
}

func (r *Report) fail(err error) *Report {
	r.Err = err
	return r
}

// fig adds a figure.
func (r *Report) fig(name, format string, args ...any) {
	r.Figures = append(r.Figures, Figure{Name: name, Value: fmt.Sprintf(format, args...)})
}

// check adds a criterion.
func (r *Report) check(name string, met bool, format string, args ...any) {
	r.Criteria = append(r.Criteria, Criterion{Name: name, Met: met, Got: fmt.Sprintf(format, args...)})
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// OK reports whether the scenario ran and met every criterion.
func (r *Report) OK() bool {
	if r.Err != nil {
		return false
	}
	for _, c := range r.Criteria {
		if !c.Met {
			return false
		}
	}
	return true
}

// Missed returns the criteria that were missed, and the error if the
// scenario did not run.
func (r *Report) Missed() []string {
	var m []string
	if r.Err != nil {
		m = append(m, "did not run: "+r.Err.Error())
	}
	for _, c := range r.Criteria {
		if !c.Met {
			m = append(m, c.Name+": "+c.Got)
		}
	}
	return m
}

// Markdown renders the report as a section with two tables.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", r.Title)
	fmt.Fprintf(&b, "Scenario `%s`: %s. Took %.1f s; load average (1/5/15 min) %s at the start, %s at the end.\n\n",
		r.ID, r.Setup, r.Elapsed.Seconds(), r.LoadBefore, r.LoadAfter)
	if r.Err != nil {
		fmt.Fprintf(&b, "**Did not run:** %s\n\n", r.Err)
	}
	if len(r.Figures) > 0 {
		b.WriteString("| Figure | Value |\n|---|---|\n")
		for _, f := range r.Figures {
			fmt.Fprintf(&b, "| %s | %s |\n", f.Name, cell(f.Value))
		}
		b.WriteString("\n")
	}
	if len(r.Criteria) > 0 {
		b.WriteString("| Pass criterion | Result |\n|---|---|\n")
		for _, c := range r.Criteria {
			verdict := "met"
			if !c.Met {
				verdict = "**MISSED**"
			}
			fmt.Fprintf(&b, "| %s | %s: %s |\n", c.Name, verdict, cell(c.Got))
		}
		b.WriteString("\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", cell(n))
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// LoadAverage returns the machine's 1, 5 and 15 minute load averages, as
// uptime prints them, or "?" where /proc/loadavg is missing.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], ", ")
}

// Machine describes the machine and the build, for the results' header.
func Machine() []Figure {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	figs := []Figure{
		{"date", time.Now().UTC().Format("2006-01-02 15:04 MST")},
		{"CPU", fmt.Sprintf("%s, %d cores (GOMAXPROCS %d)", cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0))},
		{"OS", fmt.Sprintf("%s/%s, Linux %s", runtime.GOOS, runtime.GOARCH, kernel)},
		{"Go", runtime.Version()},
		{"load average at the start", LoadAverage()},
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		rev := strings.TrimSpace(string(out))
		// The run's own outputs (the results and RELIABILITY.md) do not
		// make the code differ from the commit.
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--",
			":(top)", ":(top,exclude)loadtest/results", ":(top,exclude)RELIABILITY.md").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			rev += " (with uncommitted changes)"
		}
		figs = append(figs, Figure{"commit", rev})
	}
	for _, v := range [][]string{{"/usr/bin/memcached", "-V"}, {"/usr/bin/redis-server", "--version"}} {
		if out, err := exec.Command(v[0], v[1]).Output(); err == nil {
			line := strings.TrimSpace(string(out))
			if i := strings.Index(line, " sha="); i > 0 {
				line = line[:i]
			}
			figs = append(figs, Figure{"server", line})
		}
	}
	return figs
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
}

// us formats a duration in microseconds.
func us(d time.Duration) string {
	if d < 10*time.Microsecond {
		return fmt.Sprintf("%.2f µs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

// seconds formats a duration in seconds.
func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// thousands formats n with thousands separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
