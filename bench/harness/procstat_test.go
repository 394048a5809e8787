package main

import "testing"

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		line string
		want procStat
	}{
		{
			name: "plain",
			line: "1234 (nginx) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0",
			want: procStat{comm: "nginx", state: 'S', ppid: 1, ticks: 325},
		},
		{
			name: "comm with spaces and parens",
			line: "77 (a) b (c)) R 5 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1",
			want: procStat{comm: "a) b (c)", state: 'R', ppid: 5, ticks: 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat(tt.line)
			if err != nil {
				t.Fatalf(
					"parseStat: %v",
					err)
			}
			if got != tt.want {
				t.Fatalf(
					"got %+v, want %+v",
					got, tt.want)
			}
		})
	}
}

func TestParseStatBad(t *testing.T) {
	for _, line := range []string{"", "12 nginx S 1", "12 (x) S notanumber 0 0 0 0 0 0 0 0 0 0 0", "12 (x) S 1 0"} {
		if _, err := parseStat(line); err == nil {
			t.Errorf(
				"parseStat(%q): no error",
				line)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tnginx\nVmPeak:\t  20000 kB\nVmRSS:\t    5120 kB\nThreads:\t1\n"
	got, err := parseVmRSS(status)
	if err != nil || got != 5120 {
		t.Fatalf(
			"parseVmRSS = %d, %v; want 5120",
			got, err)
	}
	if _, err := parseVmRSS("Name:\tx\n"); err == nil {
		t.Fatal("no VmRSS line: no error")
	}
}

func TestParseSysCPU(t *testing.T) {
	text := "cpu  95405 10 18617 117302 498 3 2296 44 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1\n"
	got, err := parseSysCPU(text)
	if err != nil {
		t.Fatalf(
			"parseSysCPU: %v",
			err)
	}
	if want := (sysCPU{busy: 95405 + 10 + 18617 + 3 + 2296, steal: 44}); got != want {
		t.Fatalf(
			"got %+v, want %+v",
			got, want)
	}
	if _, err := parseSysCPU("intr 1\n"); err == nil {
		t.Fatal("no cpu line: no error")
	}
}
