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
	keep := map[string]string{
		"time":                  strconv.FormatInt(fallbackMs/1000, 10),
		"hitship_mapping_error": err.Error(),
	}
	if utf8.Valid(hit) {
		keep["hitship_unmapped_hit"] = string(hit)
	} else {
		keep["hitship_unmapped_hit_base64"] = base64.StdEncoding.EncodeToString(hit)
	}
	b, merr := json.Marshal(keep) // sorted keys: deterministic
	if merr != nil {
		return dst, merr
	}
	return AppendOCSF(dst, b)
}
