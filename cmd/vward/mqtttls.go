package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/vward/vward/mqttsource"
)

// mqttTLSFlags say how a TLS broker URL (mqtts://) is spoken to: the CAs
// to trust and the client certificate to present. serve and simulate share
// them.
type mqttTLSFlags struct{ caFile, certFile, keyFile, serverName string }

// register declares the flags; with env, each names its VWARD_* variable
// (serve's). who says whose certificate it is, for the help.
func (f *mqttTLSFlags) register(fs *pflag.FlagSet, who string, env bool) {
	envOf := func(name string) string {
		if !env {
			return ""
		}
		return " (env " + name + ")"
	}
	fs.StringVar(&f.caFile, "mqtt-ca-file", "", "PEM bundle of the CAs that issue the broker's certificate, for an mqtts:// URL: only they are trusted; default the system's roots"+envOf("VWARD_MQTT_CA_FILE"))
	fs.StringVar(&f.certFile, "mqtt-cert-file", "", who+" client certificate (PEM), for a broker that requires one; needs --mqtt-key-file"+envOf("VWARD_MQTT_CERT_FILE"))
	fs.StringVar(&f.keyFile, "mqtt-key-file", "", "the private key (PEM) of --mqtt-cert-file"+envOf("VWARD_MQTT_KEY_FILE"))
	fs.StringVar(&f.serverName, "mqtt-tls-server-name", "", "host name the broker's certificate must name, when it is not --mqtt-url's host"+envOf("VWARD_MQTT_TLS_SERVER_NAME"))
}

// given names the flags that were set.
func (f *mqttTLSFlags) given() []string {
	var out []string
	for _, g := range []struct{ name, v string }{
		{"--mqtt-ca-file", f.caFile}, {"--mqtt-cert-file", f.certFile},
		{"--mqtt-key-file", f.keyFile}, {"--mqtt-tls-server-name", f.serverName},
	} {
		if g.v != "" {
			out = append(out, g.name)
		}
	}
	return out
}

// config reads the files once and builds the TLS configuration for
// brokerURL: nil when no TLS flag is set (a TLS URL then trusts the
// system's roots). Every mistake is a usage error naming the flag and the
// file.
func (f *mqttTLSFlags) config(brokerURL string) (*tls.Config, error) {
	given := f.given()
	if len(given) == 0 {
		return nil, nil
	}
	if !mqttsource.IsTLSURL(brokerURL) {
		return nil, usageError{fmt.Errorf("%s given, but --mqtt-url %s is not TLS: use mqtts://host:8883, or drop %s", strings.Join(given, ", "), brokerURL, strings.Join(given, ", "))}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.serverName}
	if f.caFile != "" {
		pool, err := readCAFile(f.caFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--mqtt-ca-file: %w", err)}
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.certFile != "" && f.keyFile == "":
		return nil, usageError{fmt.Errorf("--mqtt-cert-file %s needs --mqtt-key-file, its private key", f.certFile)}
	case f.keyFile != "" && f.certFile == "":
		return nil, usageError{fmt.Errorf("--mqtt-key-file %s needs --mqtt-cert-file, its certificate", f.keyFile)}
	case f.certFile != "":
		certPEM, err := os.ReadFile(f.certFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--mqtt-cert-file: %w", err)}
		}
		keyPEM, err := os.ReadFile(f.keyFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--mqtt-key-file: %w", err)}
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, usageError{fmt.Errorf("--mqtt-cert-file %s with --mqtt-key-file %s: %w", f.certFile, f.keyFile, err)}
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// readCAFile reads a PEM bundle of CA certificates: at least one, and
// nothing else in it (a private key in a CA bundle is a mistake worth
// hearing about).
func readCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: block %d is a %q, not a CERTIFICATE", path, n, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, n, err)
		}
		pool.AddCert(cert)
	}
	if n == 0 {
		return nil, errors.New(path + ": no PEM certificate in it (want -----BEGIN CERTIFICATE----- blocks)")
	}
	return pool, nil
}
