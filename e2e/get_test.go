package e2e

import (
	"io"
	"net/http"
	"testing"
)

const catchAll = "[blastbeat:*]\nnode = n1\n"

func TestGetThroughNode(t *testing.T) {
	p := startProxy(t, "", catchAll)
	startGoNode(t, p.ZMQ, "n1", helloHandler)
	waitRoutable(t, p, "", "/")
	resp, err := http.Get(p.URL("/hello?x=1"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Hello, World!" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}
