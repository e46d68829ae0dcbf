package ocsf

import "bytes"

// The attributes a record can have, as column numbers: Attributes[i] is the
// dotted path of column i. They are in the record's order, which is the
// order of sink/parquet's OCSF schema (a test in package sink checks the
// two are the same list).
const (
	AttrActivityID = iota
	AttrActivityName
	AttrCategoryName
	AttrCategoryUID
	AttrClassName
	AttrClassUID
	AttrTypeName
	AttrTypeUID
	AttrSeverityID
	AttrSeverity
	AttrTime
	AttrTimezoneOffset
	AttrActionID
	AttrAction
	AttrDispositionID
	AttrDisposition
	AttrMetadataVersion
	AttrMetadataProductName
	AttrMetadataProductVendorName
	AttrMetadataProductVersion
	AttrMetadataProfiles
	AttrMetadataUID
	AttrMetadataTenantUID
	AttrMetadataOriginalTime
	AttrSrcEndpointIP
	AttrSrcEndpointName
	AttrSrcEndpointLocationCountry
	AttrDstEndpointHostname
	AttrDstEndpointPort
	AttrDstEndpointName
	AttrHTTPRequestHTTPMethod
	AttrHTTPRequestUID
	AttrHTTPRequestURLHostname
	AttrHTTPRequestURLPort
	AttrHTTPRequestURLPath
	AttrHTTPRequestURLQueryString
	AttrHTTPResponseCode
	AttrFirewallRuleName
	AttrFirewallRuleCondition
	AttrFirewallRuleMatchDetails
	AttrUnmapped
	nAttrs
)

// Attributes are the dotted paths of the Attr* columns, by number.
var Attributes = [nAttrs]string{
	"activity_id", "activity_name", "category_name", "category_uid", "class_name", "class_uid",
	"type_name", "type_uid", "severity_id", "severity", "time", "timezone_offset",
	"action_id", "action", "disposition_id", "disposition",
	"metadata.version", "metadata.product.name", "metadata.product.vendor_name", "metadata.product.version",
	"metadata.profiles", "metadata.uid", "metadata.tenant_uid", "metadata.original_time",
	"src_endpoint.ip", "src_endpoint.name", "src_endpoint.location.country",
	"dst_endpoint.hostname", "dst_endpoint.port", "dst_endpoint.name",
	"http_request.http_method", "http_request.uid", "http_request.url.hostname", "http_request.url.port",
	"http_request.url.path", "http_request.url.query_string", "http_response.code",
	"firewall_rule.name", "firewall_rule.condition", "firewall_rule.match_details", "unmapped",
}

// Columns receives one record's values, column by column (Attr*), for a
// writer of columnar data; sink/parquet's Values is one.
//
//   - Int sets an integer or time (Unix milliseconds) attribute.
//   - String (or Text) sets a string attribute to its value (decoded, not
//     JSON), or unmapped to its JSON text, or gives an element of a list.
//   - List announces that the list attribute has n elements, which the next
//     n String calls give.
type Columns interface {
	Int(col int, v int64)
	String(col int, v []byte)
	Text(col int, v string) // String for a string
	List(col, n int)
}

// MapColumns gives c the columns of hit's OCSF record: the values
// AppendRecord's JSON holds, decoded, column by column in Attr order, each
// at most once; the attributes the record lacks are not given. It returns
// the record's time (Unix milliseconds). On error (an *[Error]) c is given
// nothing.
//
// scratch is space for the unmapped JSON and decoded strings; the values
// given may point into it and into hit. It returns scratch extended, to be
// passed again.
func (m *Mapper) MapColumns(hit []byte, c Columns, scratch []byte) (ms int64, _ []byte, _ error) {
	var f fields
	var buf [24]member
	members, err := m.decide(hit, &f, buf[:0])
	if err != nil {
		return 0, scratch, err
	}
	scratch = scratch[:0]
	// raw gives the contents of a JSON string of the hit, decoded.
	raw := func(col int, v []byte) {
		if hasEscape(v) {
			c.String(col, []byte(unquoteRaw(v)))
			return
		}
		c.String(col, v)
	}
	text := c.Text

	// Classification.
	id := f.act.id
	if f.other != nil {
		id = 99
	}
	c.Int(AttrActivityID, int64(id))
	if f.other != nil {
		raw(AttrActivityName, f.other)
	} else {
		text(AttrActivityName, f.act.name)
	}
	text(AttrCategoryName, categoryName)
	c.Int(AttrCategoryUID, CategoryUID)
	text(AttrClassName, className)
	c.Int(AttrClassUID, ClassUID)
	if f.other != nil {
		text(AttrTypeName, typeNameOther)
	} else {
		text(AttrTypeName, f.act.typeName)
	}
	c.Int(AttrTypeUID, int64(ClassUID*100+id))

	// Outcome.
	c.Int(AttrSeverityID, int64(f.oc.severityID))
	text(AttrSeverity, f.oc.severity)
	c.Int(AttrTime, f.ms)
	c.Int(AttrTimezoneOffset, 0)
	if f.otherStatus != nil {
		c.Int(AttrActionID, 0)
		text(AttrAction, "Unknown")
		c.Int(AttrDispositionID, 99)
		raw(AttrDisposition, f.otherStatus)
	} else {
		c.Int(AttrActionID, int64(f.oc.actionID))
		text(AttrAction, f.oc.action)
		c.Int(AttrDispositionID, int64(f.oc.dispositionID))
		text(AttrDisposition, f.oc.disposition)
	}

	// metadata
	text(AttrMetadataVersion, SchemaVersion)
	text(AttrMetadataProductName, m.opts.ProductName)
	text(AttrMetadataProductVendorName, m.opts.VendorName)
	if m.opts.ProductVersion != "" {
		text(AttrMetadataProductVersion, m.opts.ProductVersion)
	}
	c.List(AttrMetadataProfiles, 1)
	text(AttrMetadataProfiles, "security_control")
	if f.hasReqID {
		raw(AttrMetadataUID, f.reqID)
	}
	if f.clientID != nil {
		c.String(AttrMetadataTenantUID, f.clientID)
	}
	if f.tv[0] == '"' {
		c.String(AttrMetadataOriginalTime, f.tv[1:len(f.tv)-1])
	} else {
		c.String(AttrMetadataOriginalTime, f.tv)
	}

	// src_endpoint
	if f.ip != nil {
		c.String(AttrSrcEndpointIP, f.ip) // no escapes (isIP)
	} else {
		text(AttrSrcEndpointName, "unknown")
	}
	if f.country != nil {
		raw(AttrSrcEndpointLocationCountry, f.country)
	}

	// dst_endpoint
	switch {
	case f.host != nil: // no escapes (isHostname, isPort)
		c.String(AttrDstEndpointHostname, f.host)
		if f.port != nil {
			c.Int(AttrDstEndpointPort, portOf(f.port))
		}
	case f.hasDomain:
		raw(AttrDstEndpointName, f.domain)
	default:
		text(AttrDstEndpointName, "unknown")
	}

	// http_request
	if f.actFound {
		text(AttrHTTPRequestHTTPMethod, f.act.method)
	}
	if f.hasReqID {
		raw(AttrHTTPRequestUID, f.reqID)
	}
	if f.hasURI {
		if f.host != nil {
			c.String(AttrHTTPRequestURLHostname, f.host)
			if f.port != nil {
				c.Int(AttrHTTPRequestURLPort, portOf(f.port))
			}
		}
		// An escaped '?' (\u003f) still splits, as in appendPathQuery.
		uri := f.uri
		if hasEscape(uri) {
			uri = []byte(unquoteRaw(uri))
		}
		if q := bytes.IndexByte(uri, '?'); q >= 0 {
			c.String(AttrHTTPRequestURLPath, uri[:q])
			c.String(AttrHTTPRequestURLQueryString, uri[q+1:])
		} else {
			c.String(AttrHTTPRequestURLPath, uri)
		}
	}

	// http_response
	c.Int(AttrHTTPResponseCode, int64(f.code))

	// firewall_rule
	if f.attack != nil {
		raw(AttrFirewallRuleName, f.attack)
		raw(AttrFirewallRuleCondition, f.attack)
		if f.payload != nil {
			c.List(AttrFirewallRuleMatchDetails, countStrings(f.payload))
			eachString(f.payload, func(s []byte) { raw(AttrFirewallRuleMatchDetails, s) })
		}
	}

	if anyUnmapped(members) {
		scratch = appendUnmapped(scratch, members)
		c.String(AttrUnmapped, scratch)
	}
	return f.ms, scratch, nil
}

func hasEscape(raw []byte) bool { return bytes.IndexByte(raw, '\\') >= 0 }

// portOf reads a port isPort accepted (1 to 5 digits).
func portOf(p []byte) int64 {
	var n int64
	for _, c := range p {
		n = n*10 + int64(c-'0')
	}
	return n
}

// eachString calls fn with the raw contents of each element of the string
// array v (isStringArray holds).
func eachString(v []byte, fn func(raw []byte)) {
	i := skipSpace(v, 1)
	for v[i] != ']' {
		end := skipString(v, i)
		fn(v[i+1 : end-1])
		i = skipSpace(v, end)
		if v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
}

func countStrings(v []byte) int {
	n := 0
	eachString(v, func([]byte) { n++ })
	return n
}
