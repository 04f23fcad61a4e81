package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/securestack/ginsession/benchmarks
cpu: Test CPU
BenchmarkReadExisting/lib=gin-2         	 1000	      1000 ns/op	    6000 B/op	      20 allocs/op
BenchmarkReadExisting/lib=gin-2         	 1000	      1200 ns/op	    6000 B/op	      20 allocs/op
BenchmarkReadExisting/lib=gin-2         	 1000	      1100 ns/op	    6000 B/op	      20 allocs/op
BenchmarkReadExisting/lib-a-2       	 1000	      1500 ns/op	    7000 B/op	      25 allocs/op
BenchmarkReadExisting/lib-a-2       	 1000	      1700 ns/op	    7000 B/op	      25 allocs/op
BenchmarkReadExisting/lib-a-2       	 1000	     99999 ns/op	    7000 B/op	      25 allocs/op
BenchmarkReadExisting/lib-a-2       	 1000	      1600 ns/op	    7000 B/op	      25 allocs/op
BenchmarkReadExisting/mc-2          	 1000	     21000 ns/op	         0 mcdel/op	         1.000 mcget/op	         0 mcset/op	         0 mctouch/op	    8000 B/op	      36 allocs/op
BenchmarkCreate/mc-2                	 1000	     80000 ns/op	         0 mcdel/op	         1.000 mcget/op	         2.000 mcset/op	         0 mctouch/op	    8000 B/op	      50 allocs/op
BenchmarkReadExisting/lib=rd-2      	 1000	     30000 ns/op	         1.000 redis-EVALSHA/op	         1.000 redis-all/op	    8000 B/op	      40 allocs/op
BenchmarkReadExisting/lib=rd-2      	 1000	     31000 ns/op	         1.000 redis-EVALSHA/op	         1.000 redis-all/op	    8000 B/op	      40 allocs/op
BenchmarkReadExisting/lib=peer-2    	 1000	     40000 ns/op	         1.000 redis-GET/op	         1.000 redis-PING/op	         2.000 redis-all/op	    9000 B/op	      90 allocs/op
BenchmarkReadExisting/lib=peer-2    	 1000	     41000 ns/op	         1.000 redis-GET/op	         1.000 redis-PING/op	         2.000 redis-all/op	    9000 B/op	      90 allocs/op
BenchmarkReadExisting/lib=peer-2    	 1000	     42000 ns/op	         1.000 redis-GET/op	         1.000 redis-HELLO/op	         1.000 redis-PING/op	         3.000 redis-all/op	    9000 B/op	      90 allocs/op
BenchmarkMiss/lib=rd-2              	 1000	      3000 ns/op	         0 redis-all/op	    7000 B/op	      22 allocs/op
BenchmarkMiss/lib=mc-2              	 1000	      3000 ns/op	         0 mcdel/op	         0 mcget/op	         0 mcset/op	         0 mctouch/op	    7000 B/op	      22 allocs/op
PASS
ok  	github.com/securestack/ginsession/benchmarks	13.083s
`

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1000, 1, 2, 3, 4, 5}, 3.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSplitName(t *testing.T) {
	for _, name := range []string{
		"BenchmarkReadExistingParallel/lib=ginsession-memory-2",
		"BenchmarkReadExistingParallel/ginsession-memory-2",
	} {
		s, l, p, ok := splitName(name)
		if !ok || s != "ReadExistingParallel" || l != "ginsession-memory" || p != 2 {
			t.Fatalf("%s: got %q %q %d %v", name, s, l, p, ok)
		}
	}
	if _, _, _, ok := splitName("BenchmarkNoLibrary-2"); ok {
		t.Fatal("a name without a library was accepted")
	}
	if _, _, _, ok := splitName("BenchmarkLimiter/op=hit/lib=ginsession-2"); ok {
		t.Fatal("a deeper name (not a side-by-side case) was accepted")
	}
}

func TestRender(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	got := render(r, nil, meta{date: "2026-01-02", command: defaultCommand, goVersion: "go1.26"})
	for _, want := range []string{
		"Medians of 4 runs from `" + defaultCommand + "` in",
		"Test CPU, linux/amd64, GOMAXPROCS 2; go1.26; 2026-01-02",
		"| ReadExisting | bare gin | 1,100 | 6,000 | 20 | (floor) |  |",
		// The median of 1500, 1600, 1700, 99999 is 1650: an outlier does
		// not move it.
		"| ReadExisting | lib-a | 1,650 | 7,000 | 25 | +550 ns |  |",
		"| ReadExisting | mc | 21,000 | 8,000 | 36 | +19,900 ns | 1 get |",
		"| Create | mc | 80,000 | 8,000 | 50 | — | 1 get + 2 set = 3 |",
		"| ReadExisting | rd | 30,500 | 8,000 | 40 | +29,400 ns | 1 EVALSHA |",
		// A command seen in one run of three (a connection's HELLO)
		// counts as 0 in the others: its median is 0.
		"| ReadExisting | peer | 41,000 | 9,000 | 90 | +39,900 ns | 1 GET + 1 PING = 2 |",
		// A case that sent nothing says so.
		"| Miss | rd | 3,000 | 7,000 | 22 | — | none |",
		"| Miss | mc | 3,000 | 7,000 | 22 | — | none |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

func TestRenderPasses(t *testing.T) {
	r, err := parse(strings.NewReader(sample + sample))
	if err != nil {
		t.Fatal(err)
	}
	got := render(r, nil, meta{date: "d", command: "go test -bench . -count 1", goVersion: "g", passes: 2})
	if want := "Medians of 8 runs from 2 interleaved passes of `go test -bench . -count 1` (each pass runs every case once) in `benchmarks/`"; !strings.Contains(got, want) {
		t.Errorf("table lacks %q:\n%s", want, got)
	}
}

func TestReplaceRegion(t *testing.T) {
	doc := "# Title\n\nintro\n\n" + startMarker + "\nold table\n" + endMarker + "\n\nmore\n"
	got, err := replaceRegion([]byte(doc), "| new |\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\n\nintro\n\n" + startMarker + "\n| new |\n" + endMarker + "\n\nmore\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// Idempotent.
	again, err := replaceRegion(got, "| new |\n")
	if err != nil || string(again) != want {
		t.Fatalf("second rewrite: %v\n%s", err, again)
	}
	if _, err := replaceRegion([]byte("no markers"), "x"); err == nil {
		t.Fatal("a document without markers was accepted")
	}
	if _, err := replaceRegion([]byte(endMarker+"\n"+startMarker), "x"); err == nil {
		t.Fatal("markers in the wrong order were accepted")
	}
}

func TestRunRewritesReadme(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "bench.txt")
	readme := filepath.Join(dir, "README.md")
	scale := filepath.Join(dir, "scale.txt")
	must(t, os.WriteFile(in, []byte(sample), 0o644))
	must(t, os.WriteFile(readme, []byte("a\n"+startMarker+"\n"+endMarker+"\nb\n"), 0o644))
	must(t, os.WriteFile(scale, []byte("=== RUN   TestScale\nscale: bytes_per_session 1227 B\n--- PASS\n"), 0o644))
	out := filepath.Join(dir, "table.md")
	must(t, run(in, out, scale, readme, meta{date: "d", command: "c", goVersion: "g"}))
	table, err := os.ReadFile(out)
	must(t, err)
	doc, err := os.ReadFile(readme)
	must(t, err)
	if !strings.Contains(string(table), "| bytes per session | 1227 B |") {
		t.Errorf("table lacks the scale figures:\n%s", table)
	}
	if !strings.HasPrefix(string(doc), "a\n"+startMarker+"\n"+string(table)) || !strings.HasSuffix(string(doc), endMarker+"\nb\n") {
		t.Errorf("README:\n%s", doc)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
