package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSplice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RELIABILITY.md")
	if err := os.WriteFile(path, []byte("# Title\n\nprose\n"+startMarker+"\nold figures\n"+endMarker+"\n\nmore prose\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := splice(path, "new figures\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "# Title\n\nprose\n" + startMarker + "\nnew figures\n" + endMarker + "\n\nmore prose\n"
	if string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
	if err := os.WriteFile(path, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if splice(path, "x") == nil {
		t.Fatal("splice without markers succeeded")
	}
}

func TestChoose(t *testing.T) {
	def, err := choose("")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range def {
		if e.optIn {
			t.Errorf("%s runs by default", e.id)
		}
	}
	got, err := choose("cluster-default-reload, steady-memory")
	if err != nil || len(got) != 2 || got[0].id != "cluster-default-reload" {
		t.Fatalf("choose = %v, %v", got, err)
	}
	if _, err := choose("nope"); err == nil {
		t.Fatal("unknown scenario accepted")
	}
}
