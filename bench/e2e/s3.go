package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"
)

// discardS3 answers the calls hitship makes (PutObject and multipart uploads),
// reading and discarding every body. It counts the records (lines) it received
// and notes every object's key, arrival time and records.
type discardS3 struct {
	lines atomic.Int64
	puts  atomic.Int64
	ids   atomic.Int64

	mu      sync.Mutex
	objects []arrival
	parts   map[string]int64 // upload ID -> records in its parts so far
}

// arrival is one object written: its path (/bucket/key), when it completed
// and how many records (lines) it holds.
type arrival struct {
	path  string
	at    time.Time
	lines int64
}

var bufPool = sync.Pool{New: func() any { return new([64 << 10]byte) }}

func (s *discardS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var n int64
	if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, ".parquet") && !r.URL.Query().Has("partNumber") {
		n = parquetRows(r.Body)
	} else {
		buf := bufPool.Get().(*[64 << 10]byte)
		for {
			m, err := r.Body.Read(buf[:])
			n += int64(bytes.Count(buf[:m], []byte("\n")))
			if err != nil {
				break
			}
		}
		bufPool.Put(buf)
	}
	s.lines.Add(n)
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		id := s.ids.Add(1)
		_ = xml.NewEncoder(w).Encode(struct {
			XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
			UploadID string   `xml:"UploadId"`
		}{UploadID: strconv.FormatInt(id, 10)})
	case r.Method == http.MethodPost && q.Has("uploadId"):
		s.mu.Lock()
		lines := s.parts[q.Get("uploadId")]
		delete(s.parts, q.Get("uploadId"))
		s.mu.Unlock()
		s.done(r.URL.Path, lines)
		_ = xml.NewEncoder(w).Encode(struct {
			XMLName xml.Name `xml:"CompleteMultipartUploadResult"`
			ETag    string   `xml:"ETag"`
		}{ETag: `"x"`})
	case r.Method == http.MethodPut:
		if q.Has("partNumber") {
			s.mu.Lock()
			if s.parts == nil {
				s.parts = map[string]int64{}
			}
			s.parts[q.Get("uploadId")] += n
			s.mu.Unlock()
		} else {
			s.done(r.URL.Path, n)
		}
		w.Header().Set("ETag", `"x"`)
	default:
		http.Error(w, "not implemented", http.StatusNotImplemented)
	}
}

func (s *discardS3) done(path string, lines int64) {
	s.puts.Add(1)
	s.mu.Lock()
	s.objects = append(s.objects, arrival{path: path, at: time.Now(), lines: lines})
	s.mu.Unlock()
}

// arrivals returns the objects written so far.
func (s *discardS3) arrivals() []arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]arrival(nil), s.objects...)
}

// serveDiscard serves a discardS3 on 127.0.0.1:random, over TLS when certFile
// is set (a self-signed certificate for 127.0.0.1 is written there, for the
// child's SSL_CERT_FILE). It returns the endpoint URL and a stop function.
func serveDiscard(s *discardS3, certFile string) (string, func(), error) {
	return serve(s, certFile)
}

// serve serves h as serveDiscard does.
func serve(h http.Handler, certFile string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if certFile != "" {
		cert, err := selfSigned(certFile)
		if err != nil {
			ln.Close()
			return "", nil, err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	go srv.Serve(ln)
	return scheme + "://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// theCert is the one certificate of every HTTPS endpoint of a bench run, so
// that the child's SSL_CERT_FILE trusts them all.
var theCert struct {
	once sync.Once
	cert tls.Certificate
	pem  []byte
	err  error
}

// selfSigned returns the certificate for 127.0.0.1 (made on the first call) and
// writes it (PEM) to certFile.
func selfSigned(certFile string) (tls.Certificate, error) {
	theCert.once.Do(func() { theCert.cert, theCert.pem, theCert.err = newCert() })
	if theCert.err != nil {
		return tls.Certificate{}, theCert.err
	}
	if err := os.WriteFile(certFile, theCert.pem, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	return theCert.cert, nil
}

func newCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hitship bench"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pemBytes, nil
}

// objectKey splits "/bucket/wallarm_hits_{start}_{partition}_{first}_{digest}.ext".
func objectKey(path string) (bucket string, start int64, partition int, ok bool) {
	bucket, key, found := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !found {
		return "", 0, 0, false
	}
	f := strings.Split(strings.TrimPrefix(key, "wallarm_hits_"), "_")
	if len(f) < 3 {
		return "", 0, 0, false
	}
	start, err1 := strconv.ParseInt(f[0], 10, 64)
	p, err2 := strconv.Atoi(f[1])
	return bucket, start, p, err1 == nil && err2 == nil
}

// stagedKey splits the key of a staged object,
// "/bucket/wallarm_hits_{start}{late}.ext" ({late}: "" for a window's main
// object, "_late_N" for its N-th late one).
func stagedKey(path string) (bucket string, start int64, late int, ok bool) {
	bucket, key, found := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !found {
		return "", 0, 0, false
	}
	rest, found := strings.CutPrefix(key, "wallarm_hits_")
	if !found {
		return "", 0, 0, false
	}
	rest, _, _ = strings.Cut(rest, ".")
	ws, ls, isLate := strings.Cut(rest, "_late_")
	start, err := strconv.ParseInt(ws, 10, 64)
	if err != nil {
		return "", 0, 0, false
	}
	if isLate {
		if late, err = strconv.Atoi(ls); err != nil || late <= 0 {
			return "", 0, 0, false
		}
	}
	return bucket, start, late, true
}

// parquetRows reads a Parquet object and returns its rows (from the footer),
// 0 when it is not one. Multipart Parquet objects are not counted: the
// bench's objects stay below the multipart threshold.
func parquetRows(body io.Reader) int64 {
	data, err := io.ReadAll(body)
	if err != nil {
		return 0
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return 0
	}
	return f.NumRows()
}
