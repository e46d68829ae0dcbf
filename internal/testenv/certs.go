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
	"testing"
	"time"
)

// Certs is a throw-away certificate authority with one server certificate
// (for 127.0.0.1, ::1 and localhost) and one client certificate, all signed
// by it and written to Dir as PEM files, for TLS and mutual TLS to the
// in-process Kafka, Redis or anything else listening on the loopback. Keys
// are ECDSA P-256 (fast to make); certificates are valid from an hour ago for
// a day. A second NewCerts is a CA the first one's peers do not trust. The
// methods are safe for concurrent use.
type Certs struct {
	Dir string
	// CAFile holds the CA certificate (what a peer trusts: kafka.tls.ca_file).
	CAFile string
	// ServerCertFile and ServerKeyFile are the server's certificate and key.
	ServerCertFile, ServerKeyFile string
	// ClientCertFile and ClientKeyFile are the client's certificate and key
	// (kafka.tls.cert_file, key_file), CN "hitship-client".
	ClientCertFile, ClientKeyFile string

	pool           *x509.CertPool
	server, client tls.Certificate
}

// MustCerts makes a Certs in a temporary directory of t; it fails the test
// when it cannot.
func MustCerts(t testing.TB) *Certs {
	t.Helper()
	c, err := NewCerts(t.TempDir())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return c
}

// NewCerts makes a CA, a server and a client certificate and writes them to
// dir (ca.pem, server.pem, server-key.pem, client.pem, client-key.pem).
func NewCerts(dir string) (*Certs, error) {
	c := &Certs{Dir: dir, pool: x509.NewCertPool()}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "hitship test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("testenv: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	c.pool.AddCert(ca)
	c.CAFile = filepath.Join(dir, "ca.pem")
	if err := writePEM(c.CAFile, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	leaf := func(name string, usage x509.ExtKeyUsage, hosts bool) (tls.Certificate, string, string, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return tls.Certificate{}, "", "", err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: "hitship-" + name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if hosts {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return tls.Certificate{}, "", "", fmt.Errorf("testenv: %s certificate: %w", name, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return tls.Certificate{}, "", "", err
		}
		certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
			return tls.Certificate{}, "", "", err
		}
		if err := writePEM(keyFile, "PRIVATE KEY", keyDER); err != nil {
			return tls.Certificate{}, "", "", err
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		return cert, certFile, keyFile, err
	}
	if c.server, c.ServerCertFile, c.ServerKeyFile, err = leaf("server", x509.ExtKeyUsageServerAuth, true); err != nil {
		return nil, err
	}
	if c.client, c.ClientCertFile, c.ClientKeyFile, err = leaf("client", x509.ExtKeyUsageClientAuth, false); err != nil {
		return nil, err
	}
	return c, nil
}

// ServerTLS is a server's TLS config with the server certificate; with
// mutual, it requires a client certificate signed by the CA.
func (c *Certs) ServerTLS(mutual bool) *tls.Config {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c.server}}
	if mutual {
		tc.ClientAuth, tc.ClientCAs = tls.RequireAndVerifyClientCert, c.pool
	}
	return tc
}

// ClientTLS is a client's TLS config that trusts the CA; with cert, it
// presents the client certificate.
func (c *Certs) ClientTLS(cert bool) *tls.Config {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.pool}
	if cert {
		tc.Certificates = []tls.Certificate{c.client}
	}
	return tc
}

// Pool is a certificate pool holding the CA.
func (c *Certs) Pool() *x509.CertPool { return c.pool.Clone() }

// serial is a random positive serial number (crypto/rand.Read does not
// fail since Go 1.24).
func serial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] &= 0x7f
	b[15] |= 1
	return new(big.Int).SetBytes(b)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
