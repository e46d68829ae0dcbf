package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// RedisTLS makes StartRedis serve TLS only (port 0, tls-port on Addr).
type RedisTLS struct {
	// CAFile, CertFile and KeyFile are the server's CA bundle, certificate
	// and key (PEM). Left empty, StartRedis writes a fresh CA, a server
	// certificate for 127.0.0.1 and localhost and a client certificate into
	// the server's directory and fills in every path (see Redis.TLS).
	CAFile, CertFile, KeyFile string
	// ClientCertFile and ClientKeyFile are a client certificate the CA
	// signed; Redis.Client and Redis.TLSConfig present it.
	ClientCertFile, ClientKeyFile string
	// RequireClientCert is mutual TLS (tls-auth-clients yes); without it a
	// client certificate is optional (and checked when given).
	RequireClientCert bool
}

// tlsArgs are the redis-server arguments that serve TLS only on port.
func (t *RedisTLS) tlsArgs(port string) []string {
	auth := "optional"
	if t.RequireClientCert {
		auth = "yes"
	}
	return []string{
		"--port", "0",
		"--tls-port", port,
		"--tls-cert-file", t.CertFile,
		"--tls-key-file", t.KeyFile,
		"--tls-ca-cert-file", t.CAFile,
		"--tls-auth-clients", auth,
	}
}

// clientConfig is a client's TLS configuration: the CA as the only root,
// and the client certificate when there is one.
func (t *RedisTLS) clientConfig() (*tls.Config, error) {
	ca, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("testenv: redis CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("testenv: no certificate in %s", t.CAFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if t.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.ClientCertFile, t.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("testenv: redis client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// writeRedisCerts writes a CA, a server certificate (127.0.0.1, localhost)
// and a client certificate, with their keys, as PEM files into dir, valid
// for a day.
func writeRedisCerts(dir string) (RedisTLS, error) {
	ca, caKey, err := newCert(nil, nil, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "hitship testenv CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	})
	if err != nil {
		return RedisTLS{}, err
	}
	server, serverKey, err := newCert(ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return RedisTLS{}, err
	}
	client, clientKey, err := newCert(ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "hitship testenv client"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return RedisTLS{}, err
	}
	t := RedisTLS{
		CAFile:         filepath.Join(dir, "ca.pem"),
		CertFile:       filepath.Join(dir, "server.pem"),
		KeyFile:        filepath.Join(dir, "server-key.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"),
		ClientKeyFile:  filepath.Join(dir, "client-key.pem"),
	}
	serverPEM, err := keyPEM(serverKey)
	if err != nil {
		return RedisTLS{}, err
	}
	clientPEM, err := keyPEM(clientKey)
	if err != nil {
		return RedisTLS{}, err
	}
	for path, block := range map[string]*pem.Block{
		t.CAFile:         {Type: "CERTIFICATE", Bytes: ca.Raw},
		t.CertFile:       {Type: "CERTIFICATE", Bytes: server.Raw},
		t.KeyFile:        serverPEM,
		t.ClientCertFile: {Type: "CERTIFICATE", Bytes: client.Raw},
		t.ClientKeyFile:  clientPEM,
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			return RedisTLS{}, fmt.Errorf("testenv: write %s: %w", path, err)
		}
	}
	return t, nil
}

// newCert creates a P-256 key and a certificate from tmpl signed by parent
// (self-signed when parent is nil).
func newCert(parent *x509.Certificate, parentKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("testenv: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, fmt.Errorf("testenv: serial: %w", err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("testenv: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("testenv: parse certificate: %w", err)
	}
	return cert, key, nil
}

func keyPEM(key *ecdsa.PrivateKey) (*pem.Block, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testenv: marshal key: %w", err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}, nil
}
