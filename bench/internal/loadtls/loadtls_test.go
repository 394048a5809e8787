package loadtls

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blastbeat/blastbeat/internal/testcert"
)

func TestClient(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not PEM"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cacert   string
		wantErr  bool
		insecure bool
	}{
		{name: "no CA: no chain check", cacert: "", insecure: true},
		{name: "CA file", cacert: ca.File},
		{name: "missing file", cacert: filepath.Join(dir, "none.pem"), wantErr: true},
		{name: "not PEM", cacert: bad, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Client(tt.cacert)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Client(%q) error %v, want error %v", tt.cacert, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if cfg.InsecureSkipVerify != tt.insecure || (!tt.insecure && cfg.RootCAs == nil) {
				t.Errorf("InsecureSkipVerify %v RootCAs %v", cfg.InsecureSkipVerify, cfg.RootCAs != nil)
			}
			if !slices.Equal(cfg.CurvePreferences, []tls.CurveID{tls.X25519, tls.CurveP256}) || cfg.ClientSessionCache != nil {
				t.Errorf("curves %v, session cache %v: want X25519, P-256 and none", cfg.CurvePreferences, cfg.ClientSessionCache)
			}
		})
	}
}
