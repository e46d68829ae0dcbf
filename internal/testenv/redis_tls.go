package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
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
// and a client certificate, with their keys, as PEM files into dir
// (NewCerts).
func writeRedisCerts(dir string) (RedisTLS, error) {
	c, err := NewCerts(dir)
	if err != nil {
		return RedisTLS{}, err
	}
	return RedisTLS{CAFile: c.CAFile, CertFile: c.ServerCertFile, KeyFile: c.ServerKeyFile,
		ClientCertFile: c.ClientCertFile, ClientKeyFile: c.ClientKeyFile}, nil
}
