package sink

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"

	"hitship/ocsf"
)

// OCSFProduct is metadata.product of the OCSF records of the OCSF formats:
// the product whose detection nodes make the hits. It carries no version: a
// replay assembled by a replica of another build must write the same bytes
// (staging's intents check them).
var OCSFProduct = ocsf.Options{ProductName: "Wallarm", VendorName: "Wallarm"}

var ocsfMapper = sync.OnceValues(func() (*ocsf.Mapper, error) { return ocsf.NewMapper(OCSFProduct) })

// AppendOCSF appends the OCSF record of hit to dst (ocsf.Mapper.AppendRecord
// with OCSFProduct). A hit it cannot map is an error ocsf.IsBadHit reports.
func AppendOCSF(dst, hit []byte) ([]byte, error) {
	m, err := ocsfMapper()
	if err != nil {
		return dst, err
	}
	return m.AppendRecord(dst, hit)
}

// AppendOCSFOrKeep is AppendOCSF for a hit already in an object: one the
// mapping refuses (no usable time, say, which hitship accepts when it
// windows by the Kafka timestamp) is kept whole, as a record of time
// fallbackMs whose unmapped.hitship_unmapped_hit holds the hit as it came
// (base64 in unmapped.hitship_unmapped_hit_base64 when it is not UTF-8) and
// unmapped.hitship_mapping_error why. Nothing is dropped, and the bytes
// depend only on the hit and fallbackMs.
func AppendOCSFOrKeep(dst, hit []byte, fallbackMs int64) ([]byte, error) {
	out, err := AppendOCSF(dst, hit)
	if err == nil || !ocsf.IsBadHit(err) {
		return out, err
	}
	b, err := keepHit(hit, err, fallbackMs)
	if err != nil {
		return dst, err
	}
	return AppendOCSF(dst, b)
}

// OCSFColumns is AppendOCSFOrKeep for a columnar writer: it gives c the
// columns of the record AppendOCSFOrKeep would write (ocsf.Mapper.MapColumns),
// and returns scratch, space for the values, to be passed again.
func OCSFColumns(c ocsf.Columns, hit []byte, fallbackMs int64, scratch []byte) ([]byte, error) {
	m, err := ocsfMapper()
	if err != nil {
		return scratch, err
	}
	_, scratch, err = m.MapColumns(hit, c, scratch)
	if err == nil || !ocsf.IsBadHit(err) {
		return scratch, err
	}
	b, err := keepHit(hit, err, fallbackMs)
	if err != nil {
		return scratch, err
	}
	_, scratch, err = m.MapColumns(b, c, scratch)
	return scratch, err
}

// keepHit is the hit that stands for one the mapping refused with err.
func keepHit(hit []byte, err error, fallbackMs int64) ([]byte, error) {
	keep := map[string]string{
		"time":                  strconv.FormatInt(fallbackMs/1000, 10),
		"hitship_mapping_error": err.Error(),
	}
	if utf8.Valid(hit) {
		keep["hitship_unmapped_hit"] = string(hit)
	} else {
		keep["hitship_unmapped_hit_base64"] = base64.StdEncoding.EncodeToString(hit)
	}
	return json.Marshal(keep) // sorted keys: deterministic
}
