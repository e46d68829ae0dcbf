// Package hit is the hot-path scanner for Kafka hit records.
//
// A hit is one JSON object per Kafka record. hitship never decodes a hit into
// a struct: [Scan] validates the record in a single pass and extracts only what
// routing and windowing need (the top-level "time" and "client_id" fields and
// whether the bytes are already compact). [AppendCompact] removes whitespace
// outside strings so that every output record is one line.
//
// # Guarantees
//
//   - Validity agrees with encoding/json: Scan accepts b exactly when
//     json.Valid(b) is true, b is valid UTF-8, the top-level value is an
//     object and its nesting depth is at most maxDepth (the top-level object is
//     depth 1). encoding/json itself refuses depths above 10000. This is
//     checked by FuzzScan.
//   - Strings are validated fully: control characters are rejected, escapes
//     must be one of \" \\ \/ \b \f \n \r \t \uXXXX; lone or mismatched UTF-16
//     surrogate escapes are accepted (encoding/json accepts them and decodes
//     them to U+FFFD). Raw bytes must be valid UTF-8 (encoding/json.Valid does
//     not check this; hitship does, because the output must be valid UTF-8).
//   - No recursion: nesting is tracked in a bit stack, so 100,000 levels of
//     nesting cost a bounded amount of memory and never grow the goroutine
//     stack. Depths up to 4096 need no allocation; deeper limits allocate one
//     bit per level once, only when a record actually nests that deep.
//   - Zero allocations on valid records. An invalid record allocates its
//     *[Error].
//   - Scan, AppendCompact and ParseClientID are pure functions, safe for
//     concurrent use, and do not retain their arguments.
//
// # Fields
//
// Only top-level keys are considered; nested "time" or "client_id" keys are
// ignored. Keys are compared after unescaping, so "\u0074ime" is the key
// "time". When a top-level key appears more than once the last occurrence
// wins, like decoding into a map with encoding/json.
//
// "time" is Unix seconds given as a JSON number or as a string holding one,
// in the form DIGITS or DIGITS.DIGITS (no sign, no exponent, no surrounding
// spaces; leading zeros are allowed inside strings). Digits beyond the third
// fractional digit are truncated (millisecond precision). Anything else (null,
// booleans, objects, arrays, negative numbers, exponents, empty strings,
// values beyond the int64 millisecond range) sets [Info.TimeGarbage]; the
// caller then falls back to the Kafka record timestamp. A negative time is
// treated as garbage because no hit happened before 1970.
//
// "client_id" is a positive integer (1..math.MaxInt64) given as a JSON
// number without fraction or exponent, or as a string of decimal digits.
// Anything else leaves [Info.HasClientID] false; the tenant then comes from
// the Kafka header (see [ParseClientID]) or the record is a dead letter with
// [ReasonNoTenant].
//
// Duplicate keys are valid JSON and are kept as they are in the output; for
// "time" and "client_id" the last occurrence wins, as with encoding/json.
//
// # Errors
//
// Every validation failure is an *[Error] carrying a [Reason] suitable for the
// dead-letter header and the bad-records metric label. Use [ReasonOf] to
// classify an error. When several things are wrong, the first one met in
// byte order is reported.
package hit
