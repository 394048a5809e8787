package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestFileLimitWarning(t *testing.T) {
	if w := fileLimitWarning(1000, 1<<20); w != nil {
		t.Fatalf("1,000 connections under a limit of 1M: %v", w)
	}
	if w := fileLimitWarning(19900, 20000); w != nil {
		t.Fatalf("19,900 connections and the reserve fit 20,000: %v", w)
	}
	w := fileLimitWarning(100000, 20000)
	if w == nil {
		t.Fatal("100,000 connections under a limit of 20,000: no warning")
	}
	if got := fmt.Sprint(w...); !strings.Contains(got, "past about 19900 connections") || !strings.Contains(got, "open-file-limit20000") {
		t.Fatalf("warning %q", got)
	}
	if w := fileLimitWarning(10, 50); w == nil || !strings.Contains(fmt.Sprint(w...), "past about 0 connections") {
		t.Fatalf("a limit under the reserve: %v", w)
	}
}
