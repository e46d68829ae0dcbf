package fakests

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// sigv4Auth is what the Authorization header of a SigV4 request says.
type sigv4Auth struct {
	KeyID         string
	Date          string // yyyymmdd
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
}

// authError is a refusal with the AWS error code to answer.
type authError struct {
	status int
	code   string
	msg    string
}

func (e *authError) Error() string { return e.code + ": " + e.msg }

func deny(status int, code, msg string) *authError {
	return &authError{status: status, code: code, msg: msg}
}

const maxClockSkew = 15 * time.Minute

// parseAuth reads "AWS4-HMAC-SHA256 Credential=K/D/R/S/aws4_request,
// SignedHeaders=a;b, Signature=hex".
func parseAuth(h string) (sigv4Auth, *authError) {
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(h, algo) {
		return sigv4Auth{}, deny(http.StatusForbidden, "MissingAuthenticationToken", "request is not signed with AWS4-HMAC-SHA256")
	}
	var a sigv4Auth
	var cred, signed string
	for part := range strings.SplitSeq(strings.TrimPrefix(h, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			a.Signature = v
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || signed == "" || a.Signature == "" {
		return sigv4Auth{}, deny(http.StatusBadRequest, "IncompleteSignature", "malformed Authorization header")
	}
	a.KeyID, a.Date, a.Region, a.Service = scope[0], scope[1], scope[2], scope[3]
	a.SignedHeaders = strings.Split(signed, ";")
	return a, nil
}

// verifySigV4 recomputes the signature of r with secret and compares it.
// payloadHash is the hex SHA-256 of the body (or the X-Amz-Content-Sha256
// value the client signed). now bounds the clock skew.
func verifySigV4(r *http.Request, a sigv4Auth, secret, payloadHash string, now time.Time) *authError {
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, a.Date) {
		return deny(http.StatusForbidden, "IncompleteSignature", "missing or inconsistent X-Amz-Date")
	}
	if d := now.Sub(t); d > maxClockSkew || d < -maxClockSkew {
		return deny(http.StatusForbidden, "RequestTimeTooSkewed", "request time too far from the server's")
	}
	if !sort.StringsAreSorted(a.SignedHeaders) || !contains(a.SignedHeaders, "host") {
		return deny(http.StatusForbidden, "SignatureDoesNotMatch", "SignedHeaders must be sorted and include host")
	}
	for _, h := range []string{"x-amz-date", "x-amz-security-token", "x-amz-content-sha256"} {
		if r.Header.Get(h) != "" && !contains(a.SignedHeaders, h) {
			return deny(http.StatusForbidden, "SignatureDoesNotMatch", h+" is present but not signed")
		}
	}

	rawPath, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	if rawPath == "" || !strings.HasPrefix(rawPath, "/") {
		rawPath = r.URL.EscapedPath()
	}
	canonicalURI := rawPath
	if a.Service != "s3" {
		canonicalURI = escape(rawPath, false) // every service but S3 double-encodes
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return deny(http.StatusBadRequest, "InvalidRequest", "bad query string")
	}

	var cr strings.Builder
	cr.WriteString(r.Method + "\n" + canonicalURI + "\n" + canonicalQuery(query) + "\n")
	for _, h := range a.SignedHeaders {
		var v string
		switch h {
		case "host":
			v = r.Host
		case "content-length":
			v = strconv.FormatInt(r.ContentLength, 10)
		default:
			vals := r.Header.Values(h)
			for i := range vals {
				vals[i] = strings.Join(strings.Fields(vals[i]), " ")
			}
			v = strings.Join(vals, ",")
		}
		cr.WriteString(h + ":" + v + "\n")
	}
	cr.WriteString("\n" + strings.Join(a.SignedHeaders, ";") + "\n" + payloadHash)

	scope := a.Date + "/" + a.Region + "/" + a.Service + "/aws4_request"
	sum := sha256.Sum256([]byte(cr.String()))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := hmacSHA256([]byte("AWS4"+secret), a.Date)
	key = hmacSHA256(key, a.Region)
	key = hmacSHA256(key, a.Service)
	key = hmacSHA256(key, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(a.Signature)) {
		return deny(http.StatusForbidden, "SignatureDoesNotMatch",
			"The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// canonicalQuery sorts by key then value, each URI-encoded the AWS way.
func canonicalQuery(q url.Values) string {
	type kv struct{ k, v string }
	var ps []kv
	for k, vs := range q {
		for _, v := range vs {
			ps = append(ps, kv{escape(k, true), escape(v, true)})
		}
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].k != ps[j].k {
			return ps[i].k < ps[j].k
		}
		return ps[i].v < ps[j].v
	})
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// escape percent-encodes everything but unreserved characters (and '/'
// unless encodeSlash).
func escape(s string, encodeSlash bool) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}
