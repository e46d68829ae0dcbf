// Package ocsf maps a hit (one JSON object, see DESIGN §1) to one OCSF
// record: HTTP Activity (class_uid 4002, category_uid 4 Network Activity) at
// the pinned OCSF schema version 1.1.0, with the security_control profile.
//
// # Guarantees
//
//   - One record per hit, or an *[Error]. The record is one line of compact
//     JSON with a fixed key order; its bytes depend only on the hit and the
//     [Options] (no clock, no randomness): the same hit gives the same bytes.
//   - Nothing is lost: a hit field with an OCSF home is mapped; every other
//     field (tor, datacenter, application_id, protocol, point, tags, any field
//     added later) and every known field whose value does not fit its OCSF
//     type (null, a number where a string belongs, ...) is copied verbatim,
//     whitespace removed, into "unmapped" under its own name, in the hit's
//     order. An unknown field never fails a record.
//   - Errors: a hit that is not valid UTF-8, not one valid JSON object (RFC
//     8259, as json.Valid, nesting at most 10000), or has no usable "time" is
//     an *[Error]; Field names the hit field at fault ("time") or is empty.
//     The caller dead-letters the hit. [IsBadHit] classifies.
//   - Every record validates against the OCSF 1.1.0 schema files (required and
//     recommended attributes, types, enums, sibling captions, constraints,
//     profiles, type_uid); the tests compile the rules from the schema's own
//     JSON (testdata/ocsf-schema-1.1.0) and FuzzMap checks arbitrary input.
//   - Cost: one validating pass over the hit plus one write of the record; no
//     decoding into Go values, no allocation when dst has room (keys or values
//     with JSON escapes in the fields that are compared take a slower path
//     that allocates).
//   - Duplicate top-level keys: the last value wins, as with encoding/json;
//     keys are compared after unescaping.
//   - [Mapper] is immutable and safe for concurrent use; [Mapper.AppendRecord]
//     never blocks and does not retain its arguments.
//
// # Mapping (hit field -> OCSF 1.1.0 attribute)
//
//	time            time (ms since epoch: DIGITS or DIGITS.DIGITS seconds, string or
//	                number, digits past the millisecond truncated);
//	                metadata.original_time (the value as given, as a string);
//	                timezone_offset 0 (Unix time is UTC). Missing/unusable: error.
//	request_id      metadata.uid and http_request.uid
//	ip              src_endpoint.ip when it is an IPv4/IPv6 address (OCSF ip_t).
//	                Otherwise the value goes to unmapped and src_endpoint.name is
//	                "unknown" (src_endpoint is required and needs one of ip, name, ...)
//	remote_country  src_endpoint.location.country (null goes to unmapped)
//	domain          dst_endpoint.hostname and http_request.url.hostname when it is a
//	                hostname (OCSF hostname_t: dot-separated labels of letters,
//	                digits, inner hyphens), with an optional ":port" split into
//	                dst_endpoint.port and http_request.url.port. Any other string
//	                (my_host, [::1]:443) is dst_endpoint.name. Absent/unusable:
//	                dst_endpoint.name "unknown"
//	method          activity_id / activity_name and http_request.http_method:
//	                CONNECT 1 Connect, DELETE 2 Delete, GET 3 Get, HEAD 4 Head,
//	                OPTIONS 5 Options, POST 6 Post, PUT 7 Put, TRACE 8 Trace (exact,
//	                case-sensitive, as RFC 9110). Any other string (PATCH, get):
//	                activity_id 99 Other, activity_name = the method as given,
//	                no http_method (its enum has no such value). Absent, empty or
//	                not a string: activity_id 0 Unknown.
//	                type_uid = 400200 + activity_id; type_name "HTTP Activity: <name>"
//	uri             http_request.url.path, split at the first '?': the rest is
//	                http_request.url.query_string
//	status_code     http_response.code (an integer, or a string of digits, in
//	                0..2^31-1). Absent/unusable: code 0 (http_response.code is
//	                required), the value goes to unmapped
//	attack_type     firewall_rule.name and firewall_rule.condition (the hit names
//	                no rule; the attack type is the condition that triggered it)
//	payload         firewall_rule.match_details when it is an array of strings and
//	                attack_type is present; otherwise unmapped
//	block_status    the outcome (security_control profile):
//	                  blocked   -> action_id 2 Denied,  disposition_id 2 Blocked,   severity_id 2 Low
//	                  monitored -> action_id 1 Allowed, disposition_id 15 Detected, severity_id 3 Medium
//	                  other str -> action_id 0 Unknown, disposition_id 99 Other,    severity_id 0 Unknown,
//	                               disposition = the value as given
//	                  absent    -> action_id 0 Unknown, disposition_id 0 Unknown,   severity_id 0 Unknown
//	client_id       metadata.tenant_uid (as a string) when a positive integer
//	everything else unmapped.<field>: tor, datacenter, application_id, protocol,
//	                point, tags, and any field not listed here
//
// Constant in every record: class_uid 4002 "HTTP Activity", category_uid 4
// "Network Activity", metadata.version "1.1.0", metadata.product {name,
// vendor_name, version} from [Options], metadata.profiles ["security_control"].
//
// Severity: OCSF defines severity_id as the effort needed to handle the
// event. Every hit is a detected attack; one that was blocked needs little
// (Low), one that reached the application because the node only monitored
// needs a look (Medium). Without a known outcome the severity is Unknown
// rather than a guess.
//
// Two outputs: AppendRecord writes a record as one line of JSON (formats
// ocsf, ocsf-json); MapColumns gives the same record's values column by
// column (Attributes, the columns of sink/parquet's OCSF schema) to a
// columnar writer (format ocsf-parquet). Both write what one function
// decided (fields), so they cannot map a hit differently; sink/parquet's
// TestColumnsMatchJSON checks the files they make are the same.
//
// Left out: url.scheme and url.url_string (a hit carries no scheme; its
// "protocol" is the API protocol, kept in unmapped), ports, user agent and
// headers (not in a hit), MITRE "attacks" (attack_type is not an ATT&CK
// technique).
package ocsf
