package testenv_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward/internal/testenv"
)

// tlsClient connects a paho client to url with cfg and returns the error of
// the attempt, nil once connected (it is disconnected at cleanup).
func tlsClient(t *testing.T, url, clientID, user, password string, cfg *tls.Config) (mqtt.Client, error) {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).
		SetUsername(user).SetPassword(password).SetTLSConfig(cfg).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) {
		t.Fatalf("connect %s to %s: no answer within %v", clientID, url, waitFor)
	}
	if tok.Error() == nil {
		t.Cleanup(func() { c.Disconnect(100) })
	}
	return c, tok.Error()
}

// The TLS listener speaks TLS with the test CA's server certificate for
// 127.0.0.1, requires a client certificate of that CA when told to, and
// shares its messages with the plain listener.
func TestMosquittoTLSListener(t *testing.T) {
	t.Parallel()
	ca := testenv.NewCA(t, "vward test CA")
	server, client := ca.Server(t), ca.Client(t, "tester")
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{TLS: &testenv.MosquittoTLS{
		CAFile: ca.CertFile, CertFile: server.CertFile, KeyFile: server.KeyFile, RequireCertificate: true,
	}})
	if !strings.HasPrefix(broker.TLSURL, "mqtts://127.0.0.1:") {
		t.Fatalf("TLSURL = %q, want mqtts://127.0.0.1:port", broker.TLSURL)
	}

	got := make(chan mqtt.Message, 1)
	sub, err := tlsClient(t, broker.TLSURL, "tls-sub", "", "", &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{client.KeyPair(t)}})
	if err != nil {
		t.Fatalf("connect over TLS with the CA and a client certificate: %v\nbroker log:\n%s", err, broker.Log())
	}
	wait(t, sub.Subscribe("tls/test", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }), "subscribe")
	pub := connect(t, broker, "plain-pub", true, nil)
	wait(t, pub.Publish("tls/test", 1, false, "over tls"), "publish")
	if m := receive(t, got, broker); string(m.Payload()) != "over tls" {
		t.Errorf("received %q over TLS, want %q", m.Payload(), "over tls")
	}

	if _, err := tlsClient(t, broker.TLSURL, "tls-no-cert", "", "", &tls.Config{RootCAs: ca.Pool}); err == nil {
		t.Error("connected without a client certificate to a listener that requires one")
	}
	other := testenv.NewCA(t, "another CA")
	_, err = tlsClient(t, broker.TLSURL, "tls-wrong-ca", "", "", &tls.Config{RootCAs: other.Pool, Certificates: []tls.Certificate{client.KeyPair(t)}})
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("connect trusting another CA = %v, want the server certificate refused", err)
	}
}

// In the deployed layout the TLS listener is vward's: its accounts are the
// service password file's, not the devices'.
func TestMosquittoTLSListenerHasServiceAccounts(t *testing.T) {
	t.Parallel()
	ca := testenv.NewCA(t, "vward test CA")
	server := ca.Server(t)
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{
		PasswordFile:        testenv.PasswordFile(t, map[string]string{"ox-1": "device-secret"}),
		ServicePasswordFile: testenv.PasswordFile(t, map[string]string{"vward": "service-secret"}),
		TLS:                 &testenv.MosquittoTLS{CertFile: server.CertFile, KeyFile: server.KeyFile},
	})
	cfg := &tls.Config{RootCAs: ca.Pool}
	if _, err := tlsClient(t, broker.TLSURL, "vward-tls", "vward", "service-secret", cfg); err != nil {
		t.Errorf("vward's account over TLS: %v\nbroker log:\n%s", err, broker.Log())
	}
	if _, err := tlsClient(t, broker.TLSURL, "ox-1", "ox-1", "device-secret", cfg); err == nil {
		t.Error("a device's account was accepted on vward's TLS listener")
	}
}
