package main

import (
	"io"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestStopNotLostBehindReloads: a SIGTERM that comes while a slow reload
// runs, behind more SIGHUPs than the channel holds, stops the proxy as
// soon as that reload is done, before the queued reloads. Before, TERM
// and HUP shared one channel of 4: four queued SIGHUPs made
// signal.Notify drop the SIGTERM, and the proxy ran on until SIGKILL.
func TestStopNotLostBehindReloads(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sup, err := openSupervisor(func(string) string { return "" }, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sup.close()
	stops, sigs := make(chan os.Signal, 2), make(chan os.Signal, 4)
	entered, release := make(chan struct{}), make(chan struct{})
	reloads := 0
	reload := func(string) {
		reloads++
		if reloads == 1 {
			close(entered)
			<-release
		}
	}
	done := make(chan struct{})
	go func() {
		waitForStop(stops, sigs, sup, log, reload, func() {})
		close(done)
	}()
	sigs <- syscall.SIGHUP
	<-entered // the first reload runs, slowly
	for range cap(sigs) {
		sigs <- syscall.SIGHUP // the channel is full
	}
	stops <- syscall.SIGTERM
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("waitForStop did not return after SIGTERM")
	}
	if reloads != 1 {
		t.Errorf("%d reloads ran before the stop, want 1 (the one running when SIGTERM came)", reloads)
	}
}

// TestDelayStop: during shutdown-delay SIGUSR1 still reopens the access
// log, SIGHUP is ignored, and a second SIGTERM ends the wait; without one
// the delay ends by itself.
func TestDelayStop(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	stops, sigs := make(chan os.Signal, 2), make(chan os.Signal, 4)
	reopened := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		delayStop(time.Hour, stops, sigs, log, func() { reopened <- struct{}{} })
		close(done)
	}()
	sigs <- syscall.SIGHUP
	sigs <- syscall.SIGUSR1
	select {
	case <-reopened:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGUSR1 during shutdown-delay did not reopen the access log")
	}
	select {
	case <-done:
		t.Fatal("shutdown-delay ended without a stop signal")
	default:
	}
	stops <- syscall.SIGTERM
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a second SIGTERM did not cut shutdown-delay short")
	}
	delayStop(time.Millisecond, stops, sigs, log, func() {}) // returns by itself
}
