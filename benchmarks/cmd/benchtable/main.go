// Command benchtable turns the raw output of the side-by-side benchmarks
// into a markdown table: one row per scenario and library, with the median
// ns/op, B/op and allocs/op over all runs, the overhead over bare gin's
// median in the same scenario, and for memcached and Redis cases the store
// commands per request.
//
// Memcached cases report mcget/op, mcset/op, mctouch/op and mcdel/op (from
// the server's stats). Redis cases report redis-all/op, every command
// their clients sent per request, and redis-NAME/op for each command name
// (EVALSHA, GET, ...); a name missing from a run counts as 0 in it.
//
// Usage:
//
//	benchtable [-in results/bench.txt] [-out results/table.md] [-scale results/scale.txt] [-readme ../README.md] [-command cmd] [-passes n]
//
// With -readme, the table also replaces whatever lies between the lines
// <!-- bench:start --> and <!-- bench:end --> of the given file; the file
// is left alone if it lacks either marker.
//
// Benchmark names are read as Benchmark<Scenario>/lib=<library>-<procs>;
// the library named "gin" is the floor that overheads are measured from.
// Other names (no library, or deeper ones such as
// BenchmarkLimiter/op=hit/lib=ginsession) are left out of the table.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Markers delimit the generated region of a README.
const (
	startMarker = "<!-- bench:start -->"
	endMarker   = "<!-- bench:end -->"
)

// floor is the library that overheads are measured from.
const floor = "gin"

// defaultCommand is the command the table says it was made with.
const defaultCommand = "go test -run '^$' -bench . -benchmem -count 6"

func main() {
	in := flag.String("in", "results/bench.txt", "raw `go test -bench` output to read")
	out := flag.String("out", "results/table.md", "markdown file to write (\"-\" for standard output)")
	scale := flag.String("scale", "", "output of TestScale to summarize below the table (optional)")
	readme := flag.String("readme", "", "README whose "+startMarker+" … "+endMarker+" region to rewrite (optional)")
	date := flag.String("date", time.Now().Format(time.DateOnly), "date the results are from")
	command := flag.String("command", defaultCommand, "command the results were made with")
	goVersion := flag.String("go", runtime.Version(), "Go version the results were made with")
	passes := flag.Int("passes", 0, "how many interleaved passes of `command` made the runs (0: one command made them all)")
	flag.Parse()

	if err := run(*in, *out, *scale, *readme, meta{date: *date, command: *command, goVersion: *goVersion, passes: *passes}); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(in, out, scalePath, readme string, m meta) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	var scale []scaleLine
	if scalePath != "" {
		sf, err := os.Open(scalePath)
		if err != nil {
			return err
		}
		defer sf.Close()
		if scale, err = parseScale(sf); err != nil {
			return fmt.Errorf("%s: %w", scalePath, err)
		}
	}
	table := render(res, scale, m)
	if out == "-" {
		_, err = os.Stdout.WriteString(table)
	} else {
		err = writeFile(out, []byte(table))
	}
	if err != nil {
		return err
	}
	if readme != "" {
		return rewriteReadme(readme, table)
	}
	return nil
}

// meta is what the table says about how the results were made.
type meta struct {
	date, command, goVersion string
	// passes, if above 1, is how many times command ran, each time
	// over every case, to make the runs.
	passes int
}

// results are the parsed benchmark lines.
type results struct {
	goos, goarch, cpu string
	procs             int
	scenarios         []string // in order of first appearance
	libraries         []string // in order of first appearance
	// samples maps scenario, then library, then unit to every value seen.
	samples map[string]map[string]map[string][]float64
}

// parse reads go test -bench output. Lines other than benchmark results and
// the goos/goarch/cpu headers are ignored.
func parse(r io.Reader) (*results, error) {
	res := &results{samples: map[string]map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, ": "); ok {
			switch k {
			case "goos":
				res.goos = strings.TrimSpace(v)
			case "goarch":
				res.goarch = strings.TrimSpace(v)
			case "cpu":
				res.cpu = strings.TrimSpace(v)
			}
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		// name, iterations, then value-unit pairs.
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		scenario, library, procs, ok := splitName(f[0])
		if !ok {
			continue
		}
		if procs > 0 {
			res.procs = procs
		}
		if res.samples[scenario] == nil {
			res.samples[scenario] = map[string]map[string][]float64{}
			res.scenarios = append(res.scenarios, scenario)
		}
		if res.samples[scenario][library] == nil {
			res.samples[scenario][library] = map[string][]float64{}
		}
		if !slices.Contains(res.libraries, library) {
			res.libraries = append(res.libraries, library)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %q: value %q: %w", line, f[i], err)
			}
			unit := f[i+1]
			res.samples[scenario][library][unit] = append(res.samples[scenario][library][unit], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(res.scenarios) == 0 {
		return nil, errors.New("no benchmark results")
	}
	return res, nil
}

var procsSuffix = regexp.MustCompile(`-(\d+)$`)

// splitName splits "BenchmarkReadExisting/lib=ginsession-memory-2" into
// "ReadExisting", "ginsession-memory" and 2. The "lib=" key is optional
// (benchstat -col /lib uses it to put libraries side by side).
func splitName(name string) (scenario, library string, procs int, ok bool) {
	name = strings.TrimPrefix(name, "Benchmark")
	if m := procsSuffix.FindStringSubmatch(name); m != nil {
		procs, _ = strconv.Atoi(m[1])
		name = name[:len(name)-len(m[0])]
	}
	scenario, library, ok = strings.Cut(name, "/")
	library = strings.TrimPrefix(library, "lib=")
	// Deeper names (BenchmarkLimiter/op=hit/lib=...) are other benchmarks
	// of the module, not side-by-side cases.
	if !ok || scenario == "" || library == "" || strings.Contains(library, "/") {
		return "", "", 0, false
	}
	return scenario, library, procs, true
}

// median returns the median of vs (the mean of the middle two for an even
// count), or NaN for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// med returns the median of scenario/library/unit and whether there were
// samples.
func (r *results) med(scenario, library, unit string) (float64, bool) {
	vs := r.samples[scenario][library][unit]
	if len(vs) == 0 {
		return 0, false
	}
	return median(vs), true
}

// mcUnits are the memcached command metrics, with their labels.
var mcUnits = []struct{ unit, label string }{
	{"mcget/op", "get"},
	{"mcset/op", "set"},
	{"mctouch/op", "touch"},
	{"mcdel/op", "delete"},
}

// Redis command metrics: redisAll counts every command a request sent,
// redisPrefix+NAME+"/op" those named NAME.
const (
	redisAll    = "redis-all/op"
	redisPrefix = "redis-"
)

// runs returns how many runs scenario/library has (its ns/op samples).
func (r *results) runs(scenario, library string) int {
	return len(r.samples[scenario][library]["ns/op"])
}

// medPadded returns the median of scenario/library/unit over all the
// case's runs, a run that did not report the unit counting as 0, and
// whether any run reported it.
func (r *results) medPadded(scenario, library, unit string) (float64, bool) {
	vs := r.samples[scenario][library][unit]
	if len(vs) == 0 {
		return 0, false
	}
	if n := r.runs(scenario, library); len(vs) < n {
		vs = append(slices.Clone(vs), make([]float64, n-len(vs))...)
	}
	return median(vs), true
}

// render formats the table, the header that says how it was made, and the
// scale figures if any.
func render(r *results, scale []scaleLine, m meta) string {
	var b strings.Builder
	machine := strings.TrimSpace(strings.Join([]string{r.cpu, r.goos + "/" + r.goarch}, ", "))
	if r.procs > 0 {
		machine += fmt.Sprintf(", GOMAXPROCS %d", r.procs)
	}
	n := 0
	for _, s := range r.scenarios {
		for _, l := range r.libraries {
			n = max(n, len(r.samples[s][l]["ns/op"]))
		}
	}
	runs := fmt.Sprintf("Medians of %d runs", n)
	if n == 1 {
		runs = "One run"
	}
	how := fmt.Sprintf("`%s`", m.command)
	if m.passes > 1 {
		how = fmt.Sprintf("%d interleaved passes of `%s` (each pass runs every case once)", m.passes, m.command)
	}
	fmt.Fprintf(&b, "%s from %s in `benchmarks/` (%s; %s; %s). ", runs, how, machine, m.goVersion, m.date)
	b.WriteString("Each request is a fresh `*http.Request` through `gin.New()` in release mode and an `httptest` recorder. ")
	b.WriteString("Overhead is the library's median minus bare gin's in the same scenario. ")
	b.WriteString("memcached cases run against a local memcached on loopback; their commands per request are from its `stats` around the timed loop. ")
	b.WriteString("Redis cases run against one local redis-server on loopback; their commands per request are what the library's clients sent, counted by name by a proxy in front of the server in a separate pass of the same requests (the timed loop connects directly), so a Lua script counts as one EVALSHA.\n\n")
	b.WriteString("| Scenario | Library | ns/op | B/op | allocs/op | Overhead | Store commands/request |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|---|\n")
	for _, s := range r.scenarios {
		base, hasBase := r.med(s, floor, "ns/op")
		for _, l := range r.libraries {
			if r.samples[s][l] == nil {
				continue
			}
			ns, _ := r.med(s, l, "ns/op")
			bytesOp, hasB := r.med(s, l, "B/op")
			allocs, hasA := r.med(s, l, "allocs/op")
			overhead := "—"
			switch {
			case l == floor:
				overhead = "(floor)"
			case hasBase:
				overhead = signed(ns - base)
			}
			name := l
			if l == floor {
				name = "bare gin"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n",
				s, name, group(ns), optional(bytesOp, hasB), optional(allocs, hasA), overhead, commands(r, s, l))
		}
	}
	if len(scale) > 0 {
		b.WriteString("\nMemory store at scale (`GINSESSION_SCALE=1 go test -run TestScale -v`):\n\n")
		b.WriteString("| Measure | Value |\n|---|--:|\n")
		for _, l := range scale {
			fmt.Fprintf(&b, "| %s | %s |\n", l.name, l.value)
		}
	}
	return b.String()
}

// commands formats the store commands per request of a case, or "" for a
// case that reported none: "1 get + 1 set = 2" for memcached, "1 GET + 1
// PING = 2" for Redis, "none" for a case that sent nothing.
func commands(r *results, scenario, library string) string {
	type part struct {
		label string
		v     float64
	}
	var parts []part
	seen := false
	if _, ok := r.samples[scenario][library][redisAll]; ok {
		seen = true
		for _, unit := range sortedUnits(r.samples[scenario][library]) {
			name, ok := strings.CutPrefix(unit, redisPrefix)
			if !ok || unit == redisAll || !strings.HasSuffix(name, "/op") {
				continue
			}
			v, _ := r.medPadded(scenario, library, unit)
			parts = append(parts, part{strings.TrimSuffix(name, "/op"), v})
		}
	} else {
		for _, u := range mcUnits {
			v, ok := r.med(scenario, library, u.unit)
			if !ok {
				continue
			}
			seen = true
			parts = append(parts, part{u.label, v})
		}
	}
	if !seen {
		return ""
	}
	var out []string
	var total float64
	for _, p := range parts {
		if p.v >= 0.005 {
			out = append(out, decimal(p.v)+" "+p.label)
			total += p.v
		}
	}
	switch len(out) {
	case 0:
		return "none"
	case 1:
		return out[0]
	}
	return strings.Join(out, " + ") + " = " + decimal(total)
}

// sortedUnits returns the units of a case in order.
func sortedUnits(units map[string][]float64) []string {
	keys := make([]string, 0, len(units))
	for k := range units {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// decimal formats v with up to two decimals, without trailing zeros.
func decimal(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(v, 'f', 2, 64), "0"), ".")
}

func optional(v float64, ok bool) string {
	if !ok {
		return "—"
	}
	return group(v)
}

// group formats v rounded to an integer, with thousands separated by
// commas.
func group(v float64) string {
	n := int64(math.Round(v))
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// signed formats an overhead in ns with its sign.
func signed(v float64) string {
	if math.Round(v) >= 0 {
		return "+" + group(v) + " ns"
	}
	return group(v) + " ns"
}

// scaleLine is one "scale: name value unit" line of TestScale's output.
type scaleLine struct{ name, value string }

// parseScale reads TestScale's figures.
func parseScale(r io.Reader) ([]scaleLine, error) {
	var out []scaleLine
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "scale: ")
		if !ok {
			continue
		}
		name, value, ok := strings.Cut(rest, " ")
		if !ok {
			continue
		}
		out = append(out, scaleLine{strings.ReplaceAll(name, "_", " "), strings.TrimSpace(value)})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no scale: lines")
	}
	return out, nil
}

// rewriteReadme replaces the region between the markers of the file at
// path with table.
func rewriteReadme(path, table string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	updated, err := replaceRegion(old, table)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Equal(old, updated) {
		return nil
	}
	return writeFile(path, updated)
}

// replaceRegion returns doc with the text between the start and end markers
// replaced by table. The marker lines themselves are kept.
func replaceRegion(doc []byte, table string) ([]byte, error) {
	s := string(doc)
	i := strings.Index(s, startMarker)
	if i < 0 {
		return nil, fmt.Errorf("no %s marker", startMarker)
	}
	j := strings.Index(s[i:], endMarker)
	if j < 0 {
		return nil, fmt.Errorf("no %s marker after %s", endMarker, startMarker)
	}
	j += i
	head := s[:i+len(startMarker)]
	tail := s[j:]
	return []byte(head + "\n" + strings.TrimRight(table, "\n") + "\n" + tail), nil
}

// writeFile writes data to path through a temporary file in the same
// directory, so a reader never sees half a file.
func writeFile(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".benchtable-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
