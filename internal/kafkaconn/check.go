package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/segmentio/kafka-go"

	"hitship/config"
)

// Misconfigured is an error Check returns when the brokers refused the
// connection's SASL or TLS settings: waiting does not cure it, an operator
// must change the setting Key names.
type Misconfigured struct {
	// Key is the config key (or keys) to fix, e.g. "kafka.tls.ca_file".
	Key string
	// Msg says what happened and what to do, in plain words.
	Msg string
	Err error
}

func (m *Misconfigured) Error() string { return m.Key + ": " + m.Msg + ": " + m.Err.Error() }
func (m *Misconfigured) Unwrap() error { return m.Err }

// IsMisconfigured reports whether err (of Check) is a refusal of hitship's
// SASL or TLS settings, which no retry cures.
func IsMisconfigured(err error) bool {
	var m *Misconfigured
	return errors.As(err, &m)
}

// Check connects to the brokers of k with d, one after the other, until one
// answers a metadata request, so that the service finds out at start-up
// whether its SASL and TLS settings are accepted. It returns nil once a
// broker answered; a *Misconfigured (IsMisconfigured) naming the setting to
// fix when a broker refused them (SASL authentication failed, a mechanism
// the broker does not enable, a broker certificate hitship does not trust,
// its client certificate refused or missing); and otherwise the last error
// (brokers unreachable), which waiting may cure. It blocks until then or
// until ctx ends; safe for concurrent use.
func Check(ctx context.Context, k config.Kafka, d *kafka.Dialer) error {
	var last error
	for _, b := range k.Brokers {
		err := checkBroker(ctx, d, b)
		if err == nil {
			return nil
		}
		if m := classify(k, err); m != nil {
			return m
		}
		last = fmt.Errorf("kafka.brokers: %s: %w", b, err)
		if ctx.Err() != nil {
			break
		}
	}
	return last
}

func checkBroker(ctx context.Context, d *kafka.Dialer, addr string) error {
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A metadata request: under TLS 1.3 the broker checks the client
	// certificate after the client's half of the handshake, so a refusal
	// shows only at the first answer.
	_, err = conn.Brokers()
	return err
}

// classify turns a refusal of the SASL or TLS settings into plain words, and
// returns nil for anything else.
func classify(k config.Kafka, err error) *Misconfigured {
	mech := k.SASL.Mechanism
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		header    tls.RecordHeaderError
		op        *net.OpError
	)
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return &Misconfigured{Key: "kafka.sasl", Err: err, Msg: fmt.Sprintf(
			"the broker refused the SASL login of user %q with mechanism %s: check kafka.sasl.username, the password in %s, and that kafka.sasl.mechanism is the one the broker has this user for",
			k.SASL.Username, mech, passwordSource(k.SASL))}
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		return &Misconfigured{Key: "kafka.sasl.mechanism", Err: err, Msg: fmt.Sprintf(
			"the broker does not enable SASL mechanism %s: set kafka.sasl.mechanism to one it enables (plain, scram-sha-256, scram-sha-512, aws_msk_iam)", mech)}
	case errors.Is(err, kafka.IllegalSASLState):
		return &Misconfigured{Key: "kafka.sasl.mechanism", Err: err, Msg: "the broker does not take a SASL login on this listener: set kafka.sasl.mechanism: none, or use the broker's SASL listener in kafka.brokers"}
	case errors.As(err, &unknownCA):
		fix := "set kafka.tls.ca_file to the PEM file of the CA that signed the broker's certificate"
		if k.TLS.CAFile != "" {
			fix = fmt.Sprintf("the CA in kafka.tls.ca_file (%s) did not sign it: point kafka.tls.ca_file at the CA that signed the broker's certificate", k.TLS.CAFile)
		}
		return &Misconfigured{Key: "kafka.tls.ca_file", Err: err, Msg: "the broker's certificate is not signed by a CA hitship trusts (untrusted certificate): " + fix}
	case errors.As(err, &hostname):
		return &Misconfigured{Key: "kafka.tls.server_name", Err: err, Msg: "the broker's certificate is not for the name hitship connected to: list the brokers by the names in their certificates in kafka.brokers, or set kafka.tls.server_name to one of them"}
	case errors.As(err, &invalid):
		return &Misconfigured{Key: "kafka.tls", Err: err, Msg: "the broker's certificate is not valid (expired, not yet valid, or not for a server): renew the broker's certificate"}
	case errors.As(err, &header):
		return &Misconfigured{Key: "kafka.tls.enabled", Err: err, Msg: "the broker does not speak TLS on this port: set kafka.tls.enabled: false, or list the broker's TLS listener in kafka.brokers"}
	case errors.As(err, &op) && op.Op == "remote error" && strings.HasPrefix(op.Err.Error(), "tls: "):
		// A TLS alert of the broker's: it refused hitship's side of the handshake.
		if k.TLS.CertFile == "" {
			return &Misconfigured{Key: "kafka.tls.cert_file", Err: err, Msg: "the broker refused the TLS connection; it requires a client certificate (mutual TLS): set kafka.tls.cert_file and kafka.tls.key_file to a certificate the broker trusts and its key"}
		}
		return &Misconfigured{Key: "kafka.tls.cert_file", Err: err, Msg: fmt.Sprintf(
			"the broker refused hitship's client certificate (kafka.tls.cert_file %s, key_file %s): use a certificate signed by a CA the broker trusts for clients, not expired, with its own key", k.TLS.CertFile, k.TLS.KeyFile)}
	}
	return nil
}

// passwordSource names where the SASL password came from, without it.
func passwordSource(s config.SASL) string {
	switch {
	case s.PasswordEnv != "":
		return "the environment variable kafka.sasl.password_env names" // its name may be the secret pasted
	case s.PasswordFile != "":
		return "kafka.sasl.password_file (" + s.PasswordFile + ")"
	}
	return "kafka.sasl.password_env or kafka.sasl.password_file"
}
