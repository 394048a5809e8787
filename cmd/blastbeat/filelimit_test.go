package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestFileLimitWarning(t *testing.T) {
	if w := fileLimitWarning(1000, 4096, 1<<20); w != nil {
		t.Fatalf("1,000 connections and 4,096 nodes under a limit of 1M: %v", w)
	}
	if w := fileLimitWarning(15804, 4096, 20000); w != nil {
		t.Fatalf("15,804 connections, 4,096 nodes and the reserve fit 20,000: %v", w)
	}
	w := fileLimitWarning(100000, 4096, 20000)
	if w == nil {
		t.Fatal("100,000 connections under a limit of 20,000: no warning")
	}
	if got := fmt.Sprint(w...); !strings.Contains(got, "past about 15804 client connections") || !strings.Contains(got, "open-file-limit20000") {
		t.Fatalf("warning %q", got)
	}
	if w := fileLimitWarning(10, 10, 50); w == nil || !strings.Contains(fmt.Sprint(w...), "past about 0 client") {
		t.Fatalf("a limit under the reserve: %v", w)
	}
}
