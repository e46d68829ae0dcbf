package ocsf

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// SchemaVersion is the OCSF version the records conform to
// (metadata.version).
const SchemaVersion = "1.1.0"

// HTTP Activity identity at OCSF 1.1.0: category "network" (uid 4), class
// uid 2 within it, so class_uid = 4*1000 + 2.
const (
	CategoryUID = 4
	ClassUID    = 4002
)

// Options name the product that reported the events (metadata.product).
type Options struct {
	// ProductName is metadata.product.name. Default "hitship".
	ProductName string
	// VendorName is metadata.product.vendor_name, required by OCSF.
	// Default "hitship".
	VendorName string
	// ProductVersion is metadata.product.version; omitted when empty.
	ProductVersion string
}

// Defaults, in one place.
const (
	DefaultProductName = "hitship"
	DefaultVendorName  = "hitship"
)

func (o Options) withDefaults() Options {
	if o.ProductName == "" {
		o.ProductName = DefaultProductName
	}
	if o.VendorName == "" {
		o.VendorName = DefaultVendorName
	}
	return o
}

// Validate reports whether the options can name a product: every value must
// be valid UTF-8 (they are written into every record).
func (o Options) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"product_name", o.ProductName}, {"vendor_name", o.VendorName}, {"product_version", o.ProductVersion},
	} {
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("ocsf: option %s is not valid UTF-8", f.name)
		}
	}
	return nil
}

// Mapper maps hits to OCSF records. It is immutable after NewMapper and safe
// for concurrent use.
type Mapper struct {
	// metaHead is `"metadata":{"version":"1.1.0","product":{...},"profiles":[...]`,
	// the part of metadata that is the same for every record.
	metaHead []byte
}

// NewMapper returns a Mapper for opts (defaults filled in).
func NewMapper(opts Options) (*Mapper, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	b := []byte(`"metadata":{"version":"` + SchemaVersion + `","product":{"name":`)
	b = appendString(b, opts.ProductName)
	b = append(b, `,"vendor_name":`...)
	b = appendString(b, opts.VendorName)
	if opts.ProductVersion != "" {
		b = append(b, `,"version":`...)
		b = appendString(b, opts.ProductVersion)
	}
	b = append(b, `},"profiles":["security_control"]`...)
	return &Mapper{metaHead: b}, nil
}

// Map maps one hit with opts. It builds a Mapper per call; on a hot path
// build one Mapper and call [Mapper.AppendRecord].
func Map(hit []byte, opts Options) ([]byte, error) {
	m, err := NewMapper(opts)
	if err != nil {
		return nil, err
	}
	return m.AppendRecord(nil, hit)
}

// Error is a hit that cannot be mapped. Field names the hit field at fault,
// or is empty when the hit as a whole is bad (not JSON, not an object).
type Error struct {
	Field string
	Msg   string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Field == "" {
		return "ocsf: hit: " + e.Msg
	}
	return "ocsf: hit field " + strconv.Quote(e.Field) + ": " + e.Msg
}

// IsBadHit reports whether err says the hit itself is bad (the caller
// dead-letters it), as opposed to a misconfiguration.
func IsBadHit(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// The fields of a hit with an OCSF home.
const (
	fTime = iota
	fRequestID
	fIP
	fRemoteCountry
	fDomain
	fMethod
	fURI
	fStatusCode
	fAttackType
	fBlockStatus
	fPayload
	fClientID
	nKnown
	fUnknown = -1
)

func fieldOf(key string) int {
	switch key {
	case "time":
		return fTime
	case "request_id":
		return fRequestID
	case "ip":
		return fIP
	case "remote_country":
		return fRemoteCountry
	case "domain":
		return fDomain
	case "method":
		return fMethod
	case "uri":
		return fURI
	case "status_code":
		return fStatusCode
	case "attack_type":
		return fAttackType
	case "block_status":
		return fBlockStatus
	case "payload":
		return fPayload
	case "client_id":
		return fClientID
	}
	return fUnknown
}

// member is one top-level member of the hit (the last value of its key).
type member struct {
	key      []byte // raw key between the quotes, escapes as written
	val      []byte // raw value, possibly with whitespace inside
	field    int
	esc      bool // key has escapes
	unmapped bool
}

// activity is the per-method classification prefix, precomputed.
type activity struct {
	method string // http_method; empty for Unknown/Other
	head   string // from `{"activity_id"` through `"type_uid":N,`
}

func classHead(id int, name string) string {
	return `{"activity_id":` + strconv.Itoa(id) + `,"activity_name":"` + name +
		`","category_name":"Network Activity","category_uid":4,"class_name":"HTTP Activity","class_uid":4002,"type_name":"HTTP Activity: ` +
		name + `","type_uid":` + strconv.Itoa(ClassUID*100+id) + `,`
}

// HTTP Activity activity_id at OCSF 1.1.0 (events/network/http.json plus
// includes/classification.json): Unknown 0, Connect 1 ... Trace 8, Other 99.
var (
	actUnknown = activity{head: classHead(0, "Unknown")}
	activities = [...]activity{
		{"CONNECT", classHead(1, "Connect")},
		{"DELETE", classHead(2, "Delete")},
		{"GET", classHead(3, "Get")},
		{"HEAD", classHead(4, "Head")},
		{"OPTIONS", classHead(5, "Options")},
		{"POST", classHead(6, "Post")},
		{"PUT", classHead(7, "Put")},
		{"TRACE", classHead(8, "Trace")},
	}
)

// otherHead is the classification prefix of activity_id 99 up to the
// activity_name value, which is the hit's method as the source gave it.
const (
	otherHead = `{"activity_id":99,"activity_name":`
	otherTail = `,"category_name":"Network Activity","category_uid":4,"class_name":"HTTP Activity","class_uid":4002,"type_name":"HTTP Activity: Other","type_uid":400299,`
)

// outcome is what block_status says: severity, action and disposition.
type outcome struct {
	status string // the block_status value; empty for the fallbacks
	text   string // `"severity_id":...,"severity":...` (time goes between)
	ctl    string // `"action_id":...,"disposition":"..."` without the leading comma
}

var (
	outcomes = [...]outcome{
		{"blocked", `"severity_id":2,"severity":"Low",`, `"action_id":2,"action":"Denied","disposition_id":2,"disposition":"Blocked"`},
		{"monitored", `"severity_id":3,"severity":"Medium",`, `"action_id":1,"action":"Allowed","disposition_id":15,"disposition":"Detected"`},
	}
	outcomeUnknown = outcome{"", `"severity_id":0,"severity":"Unknown",`, `"action_id":0,"action":"Unknown","disposition_id":0,"disposition":"Unknown"`}
)

// AppendRecord appends the OCSF HTTP Activity record of hit to dst and
// returns the extended slice. The record is one line of compact JSON whose
// bytes depend only on hit and the Mapper's options. On error dst is
// returned unchanged (up to its length) with an *[Error].
//
// It does not block, does not retain hit or dst, and is safe for concurrent
// use.
func (m *Mapper) AppendRecord(dst, hit []byte) ([]byte, error) {
	if !utf8.Valid(hit) {
		return dst, &Error{Msg: "not valid UTF-8"}
	}
	var buf [24]member
	var idx [nKnown]int
	for i := range idx {
		idx[i] = -1
	}
	members, ok := splitObject(hit, buf[:0], &idx)
	if !ok {
		return dst, &Error{Msg: "not a valid JSON object"}
	}
	for i := range members {
		if members[i].field < 0 {
			members[i].unmapped = true
		}
	}
	val := func(f int) []byte {
		if idx[f] < 0 {
			return nil
		}
		return members[idx[f]].val
	}
	// toUnmapped marks a known field whose value has no OCSF home.
	toUnmapped := func(f int) {
		if idx[f] >= 0 {
			members[idx[f]].unmapped = true
		}
	}
	// str returns the raw contents of a string field, or ok=false (and the
	// field goes to unmapped) when the field is present but not a string.
	str := func(f int) (raw []byte, ok bool) {
		v := val(f)
		if v == nil {
			return nil, false
		}
		if v[0] != '"' {
			toUnmapped(f)
			return nil, false
		}
		return v[1 : len(v)-1], true
	}

	// time: required.
	tv := val(fTime)
	if tv == nil {
		return dst, &Error{Field: "time", Msg: "missing"}
	}
	timeRaw := tv
	if tv[0] == '"' {
		timeRaw = tv[1 : len(tv)-1]
	}
	ms, ok := parseUnixSeconds(timeRaw)
	if !ok {
		return dst, &Error{Field: "time", Msg: "not Unix seconds (DIGITS or DIGITS.DIGITS, as a string or a number)"}
	}

	b := dst

	// Classification, from method.
	if raw, ok := str(fMethod); ok {
		act, found := activityOf(raw)
		switch {
		case found:
			b = append(b, act.head...)
		case len(raw) == 0:
			toUnmapped(fMethod)
			b = append(b, actUnknown.head...)
		default:
			b = append(b, otherHead...)
			b = appendRawString(b, raw)
			b = append(b, otherTail...)
		}
	} else {
		b = append(b, actUnknown.head...)
	}

	// Outcome, from block_status.
	oc := outcomeUnknown
	otherStatus := []byte(nil)
	if raw, ok := str(fBlockStatus); ok {
		found := false
		for _, o := range outcomes {
			if rawEq(raw, o.status) {
				oc, found = o, true
				break
			}
		}
		if !found {
			otherStatus = raw
		}
	}
	b = append(b, oc.text...)
	b = append(b, `"time":`...)
	b = strconv.AppendInt(b, ms, 10)
	b = append(b, `,"timezone_offset":0,`...)
	if otherStatus != nil {
		b = append(b, `"action_id":0,"action":"Unknown","disposition_id":99,"disposition":`...)
		b = appendRawString(b, otherStatus)
	} else {
		b = append(b, oc.ctl...)
	}

	// metadata
	b = append(b, ',')
	b = append(b, m.metaHead...)
	reqID, hasReqID := str(fRequestID)
	if hasReqID {
		b = append(b, `,"uid":"`...)
		b = append(b, reqID...)
		b = append(b, '"')
	}
	if v := val(fClientID); v != nil {
		if id, ok := clientIDOf(v); ok {
			b = append(b, `,"tenant_uid":"`...)
			b = append(b, id...)
			b = append(b, '"')
		} else {
			toUnmapped(fClientID)
		}
	}
	b = append(b, `,"original_time":`...)
	if tv[0] == '"' {
		b = append(b, tv...)
	} else {
		b = append(b, '"')
		b = append(b, tv...)
		b = append(b, '"')
	}
	b = append(b, '}')

	// src_endpoint
	b = append(b, `,"src_endpoint":{`...)
	if raw, ok := str(fIP); ok && isIP(raw) {
		b = append(b, `"ip":"`...)
		b = append(b, raw...)
		b = append(b, '"')
	} else {
		toUnmapped(fIP)
		b = append(b, `"name":"unknown"`...)
	}
	if raw, ok := str(fRemoteCountry); ok && len(raw) > 0 {
		b = append(b, `,"location":{"country":"`...)
		b = append(b, raw...)
		b = append(b, `"}`...)
	} else {
		toUnmapped(fRemoteCountry)
	}
	b = append(b, '}')

	// dst_endpoint: a hostname (with an optional :port) goes to hostname
	// (and port); any other domain string is the endpoint's name.
	domain, hasDomain := str(fDomain)
	if hasDomain && len(domain) == 0 {
		hasDomain = false
		toUnmapped(fDomain)
	}
	var host, port []byte
	if hasDomain {
		host, port = splitHostPort(domain)
	}
	b = append(b, `,"dst_endpoint":{`...)
	switch {
	case host != nil:
		b = append(b, `"hostname":"`...)
		b = append(b, host...)
		b = append(b, '"')
		if port != nil {
			b = append(b, `,"port":`...)
			b = append(b, port...)
		}
	case hasDomain:
		b = append(b, `"name":"`...)
		b = append(b, domain...)
		b = append(b, '"')
	default:
		b = append(b, `"name":"unknown"`...)
	}
	b = append(b, '}')

	// http_request
	b = append(b, `,"http_request":{`...)
	n := 0
	comma := func() {
		if n > 0 {
			b = append(b, ',')
		}
		n++
	}
	if raw, ok := str(fMethod); ok {
		if act, found := activityOf(raw); found {
			comma()
			b = append(b, `"http_method":"`...)
			b = append(b, act.method...)
			b = append(b, '"')
		}
	}
	if hasReqID {
		comma()
		b = append(b, `"uid":"`...)
		b = append(b, reqID...)
		b = append(b, '"')
	}
	if uri, ok := str(fURI); ok {
		comma()
		b = append(b, `"url":{`...)
		if host != nil {
			b = append(b, `"hostname":"`...)
			b = append(b, host...)
			b = append(b, `",`...)
			if port != nil {
				b = append(b, `"port":`...)
				b = append(b, port...)
				b = append(b, ',')
			}
		}
		b = appendPathQuery(b, uri)
		b = append(b, '}')
	}
	b = append(b, '}')

	// http_response
	b = append(b, `,"http_response":{"code":`...)
	code, ok := int32Of(val(fStatusCode))
	if !ok {
		toUnmapped(fStatusCode)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, '}')

	// firewall_rule
	if at, ok := str(fAttackType); ok && len(at) > 0 {
		b = append(b, `,"firewall_rule":{"name":"`...)
		b = append(b, at...)
		b = append(b, `","condition":"`...)
		b = append(b, at...)
		b = append(b, '"')
		if p := val(fPayload); p != nil {
			if isStringArray(p) {
				b = append(b, `,"match_details":`...)
				b = appendCompact(b, p)
			} else {
				toUnmapped(fPayload)
			}
		}
		b = append(b, '}')
	} else {
		toUnmapped(fAttackType)
		toUnmapped(fPayload)
	}

	// unmapped: every member without an OCSF home, in the hit's order.
	first := true
	for i := range members {
		mb := &members[i]
		if !mb.unmapped {
			continue
		}
		if first {
			b = append(b, `,"unmapped":{`...)
			first = false
		} else {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, mb.key...)
		b = append(b, `":`...)
		b = appendCompact(b, mb.val)
	}
	if !first {
		b = append(b, '}')
	}
	b = append(b, '}')
	return b, nil
}

func activityOf(raw []byte) (activity, bool) {
	for _, a := range activities {
		if rawEq(raw, a.method) {
			return a, true
		}
	}
	return activity{}, false
}

// parseUnixSeconds parses DIGITS or DIGITS.DIGITS as Unix seconds and
// returns milliseconds (digits past the third fractional one truncated).
func parseUnixSeconds(s []byte) (int64, bool) {
	i := 0
	var sec int64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if sec > (math.MaxInt64/1000-9)/10 {
			return 0, false
		}
		sec = sec*10 + int64(s[i]-'0')
		i++
	}
	if i == 0 {
		return 0, false
	}
	ms := sec * 1000
	if i == len(s) {
		return ms, true
	}
	if s[i] != '.' || i+1 == len(s) {
		return 0, false
	}
	i++
	for k, scale := 0, int64(100); i < len(s); i, k = i+1, k+1 {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if k < 3 {
			ms += int64(c-'0') * scale
			scale /= 10
		}
	}
	return ms, true
}

// isIP reports whether the contents of a JSON string are an IP address as
// OCSF's ip_t wants it: an IPv4 dotted quad (no leading zeros) or IPv6
// (optionally with an embedded IPv4 tail and a %zone), at most 40 bytes, no
// escapes. It accepts what net/netip.ParseAddr accepts (FuzzIsIP), without
// allocating.
func isIP(raw []byte) bool {
	if len(raw) == 0 || len(raw) > 40 || bytes.IndexByte(raw, '\\') >= 0 {
		return false
	}
	if bytes.IndexByte(raw, ':') >= 0 {
		return isIPv6(raw)
	}
	return isIPv4(raw)
}

func isIPv4(s []byte) bool {
	n, octets, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 {
				return false
			}
			octets++
			n, digits = 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || (digits > 0 && n == 0) {
			return false
		}
		n = n*10 + int(c-'0')
		digits++
		if n > 255 {
			return false
		}
	}
	return octets == 4
}

func isIPv6(s []byte) bool {
	if z := bytes.IndexByte(s, '%'); z >= 0 {
		if z == len(s)-1 {
			return false
		}
		s = s[:z]
	}
	groups, ellipsis, i := 0, false, 0
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis, i = true, 2
	} else if len(s) > 0 && s[0] == ':' {
		return false
	}
	for i < len(s) {
		j := i
		for j < len(s) && j-i < 5 && isHex(s[j]) {
			j++
		}
		if j < len(s) && s[j] == '.' { // an IPv4 tail ends the address
			if !isIPv4(s[i:]) {
				return false
			}
			groups += 2
			break
		}
		if j == i || j-i > 4 {
			return false
		}
		groups++
		i = j
		if i == len(s) {
			break
		}
		if s[i] != ':' {
			return false
		}
		i++
		switch {
		case i < len(s) && s[i] == ':':
			if ellipsis {
				return false
			}
			ellipsis = true
			i++
		case i == len(s):
			return false // a single trailing colon
		}
	}
	if ellipsis {
		return groups < 8
	}
	return groups == 8
}

// splitHostPort splits a domain into a hostname as OCSF's hostname_t wants
// it (dot-separated labels of letters, digits and inner hyphens) and an
// optional port (1..5 digits, no leading zero, at most 65535). It returns
// host nil when the domain is not of that form.
func splitHostPort(d []byte) (host, port []byte) {
	host = d
	if c := bytes.LastIndexByte(d, ':'); c >= 0 {
		host, port = d[:c], d[c+1:]
		if !isPort(port) {
			return nil, nil
		}
	}
	if !isHostname(host) {
		return nil, nil
	}
	return host, port
}

func isPort(p []byte) bool {
	if len(p) == 0 || len(p) > 5 || (p[0] == '0' && len(p) > 1) {
		return false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

func isHostname(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	start := 0
	for i := 0; i <= len(h); i++ {
		if i < len(h) && h[i] != '.' {
			c := h[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
			continue
		}
		label := h[start:i]
		if len(label) == 0 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		start = i + 1
	}
	return true
}

// clientIDOf returns the digits of a client_id given as a positive JSON
// integer or a string of decimal digits.
func clientIDOf(v []byte) ([]byte, bool) {
	if v[0] == '"' {
		v = v[1 : len(v)-1]
	}
	if len(v) == 0 || len(v) > 19 {
		return nil, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return nil, false
		}
	}
	return v, true
}

// int32Of reads an HTTP status code: a JSON integer, or a string of decimal
// digits, within 0..MaxInt32 (OCSF integer_t).
func int32Of(v []byte) (int32, bool) {
	if v == nil {
		return 0, false
	}
	if v[0] == '"' {
		v = v[1 : len(v)-1]
	}
	if len(v) == 0 || len(v) > 10 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if n > math.MaxInt32 {
		return 0, false
	}
	return int32(n), true
}
