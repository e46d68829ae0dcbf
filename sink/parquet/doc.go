// Package parquet encodes a window's records as one Parquet file: ordered by
// time, with the same bytes on every replay, in bounded memory however many
// records the window holds.
//
// # Use
//
//	enc, err := parquet.NewEncoder(w, parquet.HitSchema(), parquet.Options{TempDir: dir})
//	for each record, in canonical (partition, offset) order, i = 0, 1, ...:
//		err = enc.Add(rec, i)
//	err = enc.Finish(ctx) // or enc.Discard() to give up
//
// or Encode(ctx, w, ndjson, schema, opts) over an object's NDJSON bytes (a
// spool Object's Open()), which numbers the lines as seq. Nothing is written
// to w before Finish; w receives the file in one pass (an S3 multipart or
// spooled body). An Encoder is used by one goroutine; a Schema is immutable
// and shared.
//
// # Schema
//
// A Schema is a table of columns, each a JSON path from the record's root to
// a Parquet type (Type), plus one catch-all column, Extra, and the time
// column records are ordered by. HitSchema is format "parquet", the hit of
// DESIGN §1: time TIMESTAMP(MILLIS, UTC) (from Unix seconds, a string or a
// number, as hit.Scan reads it; milliseconds because a hit's time may carry
// them and engines read TIMESTAMP natively); request_id, ip, datacenter, tor,
// remote_country, domain, method, uri, protocol, attack_type, block_status
// STRING; application_id LIST<INT64>; status_code INT32; payload
// LIST<STRING>; point and tags STRING holding JSON text (point mixes strings
// and arrays; tags values are strings or numbers, which a map<string,string>
// would flatten); extra STRING holding a JSON object.
//
// # Nested schemas
//
// A SchemaSpec with Nested lays the columns out as the records are: a tree
// of OPTIONAL groups following the columns' Paths, each leaf named by its
// path's last element (["http_request", "url", "path"] is read as
// http_request.url.path), the catch-all column a top-level leaf. A group is
// non-null exactly when at least one leaf under it has a non-null value (an
// empty list counts as a value); so a null leaf's definition level is the
// number of its present ancestor groups, a value's is the number of optional
// nodes on its path, and a list's elements are one level deeper. An empty or
// all-null object is therefore read back as a null group, and a group whose
// only values went to extra is null. A value where a group belongs (a
// string, a number, null) does not fit it and goes to extra.
//
// OCSFSchema is format "ocsf-parquet": OCSF 1.1.0 HTTP Activity records of
// package ocsf, nested, one column per attribute the mapper can emit, typed
// as OCSF types them: timestamp_t time TIMESTAMP(MILLIS, UTC) and the
// ordering column; integer_t and port_t INT32; long_t (type_uid) INT64;
// string_t and its subtypes STRING; string arrays (metadata.profiles,
// firewall_rule.match_details) LIST<STRING>; unmapped, an open object in
// OCSF, STRING holding its JSON text. The mapper emits no arrays of objects
// (observables, enrichments); one it starts emitting needs a column (a JSON
// column, or repeated groups), and package ocsf's TestParquetSchemaMatchesMapper
// fails until it has one, as for any other new attribute path. The catch-all
// column is hitship_extra, a name OCSF does not use; it is null for every
// record the mapper makes.
//
// Every column is optional, and the columns are the same for every window
// whatever fields its records have (Parquet orders them by name, within each
// group too). A column is null when its field is absent or JSON null (the
// two are not told apart).
//
// # Conversion rules: nothing is dropped
//
// A column takes the first occurrence of its field whose value fits its type
// exactly: a JSON string for STRING; a JSON integer, or a string holding its
// canonical decimal form ("499", not "0499" or "4.99e2"), within range, for
// integers and integer lists; a JSON number for DOUBLE; true/false for BOOL;
// for TimeSeconds a number or string DIGITS or DIGITS.DIGITS with at most
// three fractional digits; for TimeMillis a non-negative integer; an array
// whose every element fits for lists; any value for JSON columns (its bytes
// as they are in the record). Anything else — a field no column names, a
// value that does not fit (status_code "abc", a number where a string is
// expected, a list with an element of another type), a later duplicate of a
// key — goes, with its key and its bytes unchanged, into the extra column's
// JSON object, in record order, nested under its parents for nested paths
// ({"http_request":{"foo":1}}). The typed column is then null. So a record
// is never refused for its content and every field survives; only the
// string-or-number form of a coerced integer or time is not kept.
//
// Add refuses (ErrRecord) only input that is not one JSON object, which
// staging never passes on.
//
// # Column values
//
// A producer that has a record's values at hand gives them as Values
// (AddValues) instead of JSON: the row is the one Add makes of the JSON
// object with those values, without the JSON being written and read again.
// The assembler gives each hit's OCSF record this way (ocsf.Mapper's
// MapColumns): writing the record as JSON and reading it back was the most
// of encoding ocsf-parquet (bench/README.md, "ocsf-parquet"). Both ways give
// the same bytes for every hit (TestColumnsMatchJSON, on the sample hits,
// odd hits and 2,500 generated ones). Values are held, sorted and spilled as
// compact frames (column number, value), told from JSON by their first
// byte, 0.
//
// # Order
//
// Records are ordered by the time column, then by the seq the caller gives,
// then by the order they were added: a total order, so the output does not
// depend on how they were sorted. Records without a usable time (absent,
// null, unparseable) come first, their time null and the raw value in extra.
//
// # Determinism
//
// The bytes are a pure function of the records (with their seq), the
// Schema, PageBytes and RowGroupBytes, for a given build: created_by is the
// constant "hitship" (parquet-go's default carries its version and build),
// no key-value metadata is written, every page is compressed on its own
// (zstd EncodeAll, level default, 1 MiB window, one goroutine, so an
// encoder's history never shows), and page and row-group boundaries are
// decided from the rows alone (see pageWriter), never from the memory
// budget, timing or where temporary files are. The
// golden files testdata/sample_hits.parquet (HitSchema) and
// testdata/sample_hits.ocsf.parquet (OCSFSchema, the sample hits' OCSF
// records) pin the bytes across versions of this code and of its
// dependencies (regenerate with go test -update).
//
// # Memory
//
// Sorting is an external merge sort: Add keeps records up to
// Options.MemoryBytes, then sorts them and writes them as a run file to
// TempDir; Finish merges the runs (16 at a time, in more passes when there
// are more) while writing. Without a spill everything is sorted in memory.
// Writing holds one open page per column (at most PageBytes each) and, when
// the input is larger than MemoryBytes, keeps the compressed pages of the
// open row group in temporary files (parquet-go's file buffer pool) instead
// of memory. Rows reach parquet-go in batches of up to 128 (their values,
// and, when merging runs, copies of their records: about 1 MiB more, or
// one larger record).
// Peak memory is therefore about MemoryBytes + columns x
// PageBytes (x2 while a page is encoded) + a zstd encoder (a few MiB,
// pooled) + merge buffers, whatever the window's size (TestBoundedMemory:
// 200,000 hits, 90 MB, with a 1 MiB budget and 256 KiB pages grow the heap by
// about 16 MB); disk use is about twice the input (runs, then pages) at most. Temporary files are removed by
// Finish and Discard.
//
// Data pages are at most PageBytes uncompressed (a single larger value makes
// a page of its own); pages are cut at a conservative estimate of parquet-go's
// buffer, so they are typically half to all of PageBytes; row groups are at most RowGroupBytes compressed (a
// single larger row makes one of its own). Compression is zstd, data pages
// are v2.
package parquet
