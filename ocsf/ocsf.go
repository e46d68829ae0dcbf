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
	opts     Options
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
	return &Mapper{metaHead: b, opts: opts}, nil
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
	method   string // http_method; empty for Unknown/Other
	head     string // from `{"activity_id"` through `"type_uid":N,`
	id       int
	name     string // activity_name
	typeName string
}

// The class's names.
const (
	categoryName = "Network Activity"
	className    = "HTTP Activity"
)

func newActivity(method string, id int, name string) activity {
	return activity{
		method: method, id: id, name: name, typeName: className + ": " + name,
		head: `{"activity_id":` + strconv.Itoa(id) + `,"activity_name":"` + name +
			`","category_name":"` + categoryName + `","category_uid":4,"class_name":"` + className + `","class_uid":4002,"type_name":"` + className + `: ` +
			name + `","type_uid":` + strconv.Itoa(ClassUID*100+id) + `,`,
	}
}

// HTTP Activity activity_id at OCSF 1.1.0 (events/network/http.json plus
// includes/classification.json): Unknown 0, Connect 1 ... Trace 8, Other 99.
var (
	actUnknown = newActivity("", 0, "Unknown")
	activities = [...]activity{
		newActivity("CONNECT", 1, "Connect"),
		newActivity("DELETE", 2, "Delete"),
		newActivity("GET", 3, "Get"),
		newActivity("HEAD", 4, "Head"),
		newActivity("OPTIONS", 5, "Options"),
		newActivity("POST", 6, "Post"),
		newActivity("PUT", 7, "Put"),
		newActivity("TRACE", 8, "Trace"),
	}
)

// otherHead is the classification prefix of activity_id 99 up to the
// activity_name value, which is the hit's method as the source gave it.
const (
	otherHead     = `{"activity_id":99,"activity_name":`
	otherTail     = `,"category_name":"` + categoryName + `","category_uid":4,"class_name":"` + className + `","class_uid":4002,"type_name":"` + typeNameOther + `","type_uid":400299,`
	typeNameOther = className + ": Other"
)

// outcome is what block_status says: severity, action and disposition.
type outcome struct {
	status string // the block_status value; empty for the fallbacks
	text   string // `"severity_id":...,"severity":...` (time goes between)
	ctl    string // `"action_id":...,"disposition":"..."` without the leading comma

	severityID, actionID, dispositionID int
	severity, action, disposition       string
}

func newOutcome(status string, severityID int, severity string, actionID int, action string, dispositionID int, disposition string) outcome {
	return outcome{
		status: status,
		text:   `"severity_id":` + strconv.Itoa(severityID) + `,"severity":"` + severity + `",`,
		ctl: `"action_id":` + strconv.Itoa(actionID) + `,"action":"` + action + `","disposition_id":` +
			strconv.Itoa(dispositionID) + `,"disposition":"` + disposition + `"`,
		severityID: severityID, severity: severity, actionID: actionID, action: action,
		dispositionID: dispositionID, disposition: disposition,
	}
}

var (
	outcomes = [...]outcome{
		newOutcome("blocked", 2, "Low", 2, "Denied", 2, "Blocked"),
		newOutcome("monitored", 3, "Medium", 1, "Allowed", 15, "Detected"),
	}
	outcomeUnknown = newOutcome("", 0, "Unknown", 0, "Unknown", 0, "Unknown")
)

// fields are the decisions of mapping one hit, which AppendRecord writes
// as JSON and MapColumns as column values: one set of decisions, so the
// two cannot differ (TestColumnsMatchJSON checks the outcome).
type fields struct {
	ms int64
	tv []byte // the time's raw value, quoted or not

	act      activity // the classification when found or unknown
	actFound bool
	other    []byte // the raw method when activity_id is 99 (Other)

	oc          outcome
	otherStatus []byte // the raw block_status when disposition_id is 99

	reqID    []byte // raw, when hasReqID
	hasReqID bool
	clientID []byte // digits, or nil

	ip      []byte // raw, or nil (name "unknown")
	country []byte // raw, or nil

	host, port, domain []byte // host != nil: hostname (and port); else domain when hasDomain
	hasDomain          bool

	uri    []byte // raw, when hasURI
	hasURI bool

	code int32

	attack  []byte // raw, or nil (no firewall_rule)
	payload []byte // a string array, or nil

}

// decide maps hit into f and returns its members, the unmapped ones marked,
// appended to ms (scratch space the caller keeps on its stack).
func (m *Mapper) decide(hit []byte, f *fields, ms []member) ([]member, error) {
	if !utf8.Valid(hit) {
		return nil, &Error{Msg: "not valid UTF-8"}
	}
	var idx [nKnown]int
	for i := range idx {
		idx[i] = -1
	}
	members, ok := splitObject(hit, ms, &idx)
	if !ok {
		return nil, &Error{Msg: "not a valid JSON object"}
	}
	for i := range members {
		if members[i].field < 0 {
			members[i].unmapped = true
		}
	}
	val := func(fi int) []byte {
		if idx[fi] < 0 {
			return nil
		}
		return members[idx[fi]].val
	}
	// toUnmapped marks a known field whose value has no OCSF home.
	toUnmapped := func(fi int) {
		if idx[fi] >= 0 {
			members[idx[fi]].unmapped = true
		}
	}
	// str returns the raw contents of a string field, or ok=false (and the
	// field goes to unmapped) when the field is present but not a string.
	str := func(fi int) (raw []byte, ok bool) {
		v := val(fi)
		if v == nil {
			return nil, false
		}
		if v[0] != '"' {
			toUnmapped(fi)
			return nil, false
		}
		return v[1 : len(v)-1], true
	}

	// time: required.
	tv := val(fTime)
	if tv == nil {
		return nil, &Error{Field: "time", Msg: "missing"}
	}
	timeRaw := tv
	if tv[0] == '"' {
		timeRaw = tv[1 : len(tv)-1]
	}
	if f.ms, ok = parseUnixSeconds(timeRaw); !ok {
		return nil, &Error{Field: "time", Msg: "not Unix seconds (DIGITS or DIGITS.DIGITS, as a string or a number)"}
	}
	f.tv = tv

	// Classification, from method.
	f.act = actUnknown
	if raw, ok := str(fMethod); ok {
		act, found := activityOf(raw)
		switch {
		case found:
			f.act, f.actFound = act, true
		case len(raw) == 0:
			toUnmapped(fMethod)
		default:
			f.other = raw
		}
	}

	// Outcome, from block_status.
	f.oc = outcomeUnknown
	if raw, ok := str(fBlockStatus); ok {
		found := false
		for _, o := range outcomes {
			if rawEq(raw, o.status) {
				f.oc, found = o, true
				break
			}
		}
		if !found {
			f.otherStatus = raw
		}
	}

	// metadata
	f.reqID, f.hasReqID = str(fRequestID)
	if v := val(fClientID); v != nil {
		if id, ok := clientIDOf(v); ok {
			f.clientID = id
		} else {
			toUnmapped(fClientID)
		}
	}

	// src_endpoint
	if raw, ok := str(fIP); ok && isIP(raw) {
		f.ip = raw
	} else {
		toUnmapped(fIP)
	}
	if raw, ok := str(fRemoteCountry); ok && len(raw) > 0 {
		f.country = raw
	} else {
		toUnmapped(fRemoteCountry)
	}

	// dst_endpoint: a hostname (with an optional :port) goes to hostname
	// (and port); any other domain string is the endpoint's name.
	f.domain, f.hasDomain = str(fDomain)
	if f.hasDomain && len(f.domain) == 0 {
		f.hasDomain = false
		toUnmapped(fDomain)
	}
	if f.hasDomain {
		f.host, f.port = splitHostPort(f.domain)
	}

	f.uri, f.hasURI = str(fURI)

	code, ok := int32Of(val(fStatusCode))
	if !ok {
		toUnmapped(fStatusCode)
	}
	f.code = code

	// firewall_rule
	if at, ok := str(fAttackType); ok && len(at) > 0 {
		f.attack = at
		if p := val(fPayload); p != nil {
			if isStringArray(p) {
				f.payload = p
			} else {
				toUnmapped(fPayload)
			}
		}
	} else {
		toUnmapped(fAttackType)
		toUnmapped(fPayload)
	}
	return members, nil
}

// AppendRecord appends the OCSF HTTP Activity record of hit to dst and
// returns the extended slice. The record is one line of compact JSON whose
// bytes depend only on hit and the Mapper's options. On error dst is
// returned unchanged (up to its length) with an *[Error].
//
// It does not block, does not retain hit or dst, and is safe for concurrent
// use.
func (m *Mapper) AppendRecord(dst, hit []byte) ([]byte, error) {
	var f fields
	var buf [24]member
	members, err := m.decide(hit, &f, buf[:0])
	if err != nil {
		return dst, err
	}
	b := dst

	// Classification.
	if f.other != nil {
		b = append(b, otherHead...)
		b = appendRawString(b, f.other)
		b = append(b, otherTail...)
	} else {
		b = append(b, f.act.head...)
	}

	// Outcome.
	b = append(b, f.oc.text...)
	b = append(b, `"time":`...)
	b = strconv.AppendInt(b, f.ms, 10)
	b = append(b, `,"timezone_offset":0,`...)
	if f.otherStatus != nil {
		b = append(b, `"action_id":0,"action":"Unknown","disposition_id":99,"disposition":`...)
		b = appendRawString(b, f.otherStatus)
	} else {
		b = append(b, f.oc.ctl...)
	}

	// metadata
	b = append(b, ',')
	b = append(b, m.metaHead...)
	if f.hasReqID {
		b = append(b, `,"uid":"`...)
		b = append(b, f.reqID...)
		b = append(b, '"')
	}
	if f.clientID != nil {
		b = append(b, `,"tenant_uid":"`...)
		b = append(b, f.clientID...)
		b = append(b, '"')
	}
	b = append(b, `,"original_time":`...)
	if f.tv[0] == '"' {
		b = append(b, f.tv...)
	} else {
		b = append(b, '"')
		b = append(b, f.tv...)
		b = append(b, '"')
	}
	b = append(b, '}')

	// src_endpoint
	b = append(b, `,"src_endpoint":{`...)
	if f.ip != nil {
		b = append(b, `"ip":"`...)
		b = append(b, f.ip...)
		b = append(b, '"')
	} else {
		b = append(b, `"name":"unknown"`...)
	}
	if f.country != nil {
		b = append(b, `,"location":{"country":"`...)
		b = append(b, f.country...)
		b = append(b, `"}`...)
	}
	b = append(b, '}')

	// dst_endpoint
	b = append(b, `,"dst_endpoint":{`...)
	switch {
	case f.host != nil:
		b = append(b, `"hostname":"`...)
		b = append(b, f.host...)
		b = append(b, '"')
		if f.port != nil {
			b = append(b, `,"port":`...)
			b = append(b, f.port...)
		}
	case f.hasDomain:
		b = append(b, `"name":"`...)
		b = append(b, f.domain...)
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
	if f.actFound {
		comma()
		b = append(b, `"http_method":"`...)
		b = append(b, f.act.method...)
		b = append(b, '"')
	}
	if f.hasReqID {
		comma()
		b = append(b, `"uid":"`...)
		b = append(b, f.reqID...)
		b = append(b, '"')
	}
	if f.hasURI {
		comma()
		b = append(b, `"url":{`...)
		if f.host != nil {
			b = append(b, `"hostname":"`...)
			b = append(b, f.host...)
			b = append(b, `",`...)
			if f.port != nil {
				b = append(b, `"port":`...)
				b = append(b, f.port...)
				b = append(b, ',')
			}
		}
		b = appendPathQuery(b, f.uri)
		b = append(b, '}')
	}
	b = append(b, '}')

	// http_response
	b = append(b, `,"http_response":{"code":`...)
	b = strconv.AppendInt(b, int64(f.code), 10)
	b = append(b, '}')

	// firewall_rule
	if f.attack != nil {
		b = append(b, `,"firewall_rule":{"name":"`...)
		b = append(b, f.attack...)
		b = append(b, `","condition":"`...)
		b = append(b, f.attack...)
		b = append(b, '"')
		if f.payload != nil {
			b = append(b, `,"match_details":`...)
			b = appendCompact(b, f.payload)
		}
		b = append(b, '}')
	}

	// unmapped: every member without an OCSF home, in the hit's order.
	if anyUnmapped(members) {
		b = append(b, `,"unmapped":`...)
		b = appendUnmapped(b, members)
	}
	b = append(b, '}')
	return b, nil
}

func anyUnmapped(members []member) bool {
	for i := range members {
		if members[i].unmapped {
			return true
		}
	}
	return false
}

// appendUnmapped appends the unmapped members as a JSON object, in the hit's
// order.
func appendUnmapped(b []byte, members []member) []byte {
	b = append(b, '{')
	first := true
	for i := range members {
		mb := &members[i]
		if !mb.unmapped {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, mb.key...)
		b = append(b, `":`...)
		b = appendCompact(b, mb.val)
	}
	return append(b, '}')
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
