package sink

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultKeyTemplate is the key layout customers know (DESIGN §3), plus the
// digest of the records the object holds.
const DefaultKeyTemplate = "{prefix}wallarm_hits_{window_start}_{partition}_{first_offset}_{digest}.{ext}"

// DigestSeed is the digest of an object without records: the FNV-1a 64-bit
// offset basis. Extend it with DigestOffset for every record appended.
const DigestSeed uint64 = 14695981039346656037

// digestPrime is the FNV-1a 64-bit prime.
const digestPrime uint64 = 1099511628211

// DigestOffset returns d extended by one record offset: FNV-1a 64 over the
// offset's 8 bytes, little endian. Over the offsets of an object's records in
// order, from DigestSeed, it is the {digest} of its key: two objects of one
// window, partition and first offset that hold different records get
// different keys. It does not allocate.
func DigestOffset(d uint64, offset int64) uint64 {
	v := uint64(offset)
	for range 8 {
		d ^= v & 0xff
		d *= digestPrime
		v >>= 8
	}
	return d
}

// DigestString returns d extended by the bytes of s (FNV-1a 64), e.g. to seed
// the digests of a topic's objects with the topic's incarnation.
func DigestString(d uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		d ^= uint64(s[i])
		d *= digestPrime
	}
	return d
}

// KeyParams are the values a KeyTemplate substitutes.
type KeyParams struct {
	Prefix      string // the integration's prefix, e.g. "hits/"; sanitised, see KeyTemplate.Key
	WindowStart int64  // window start, Unix milliseconds
	Partition   int
	FirstOffset int64
	// Digest names the records of the object (see DigestOffset); rendered as
	// 16 lowercase hex digits.
	Digest      uint64
	Format      Format
	Compression Compression
	ClientID    int64
	Integration string
	Topic       string
	// Late numbers a late object of a staged window (1, 2, …): {late} renders
	// "" for 0 (the window's main object) and "_late_{n}" otherwise.
	Late int
}

type placeholder int

const (
	phLiteral placeholder = iota
	phPrefix
	phWindowStart
	phPartition
	phFirstOffset
	phDigest
	phExt
	phClientID
	phIntegration
	phTopic
	phYear
	phMonth
	phDay
	phHour
	phMinute
	phLate
)

var placeholderNames = map[string]placeholder{
	"prefix":       phPrefix,
	"window_start": phWindowStart,
	"partition":    phPartition,
	"first_offset": phFirstOffset,
	"digest":       phDigest,
	"ext":          phExt,
	"client_id":    phClientID,
	"integration":  phIntegration,
	"topic":        phTopic,
	"yyyy":         phYear,
	"mm":           phMonth,
	"dd":           phDay,
	"hh":           phHour,
	"MM":           phMinute,
	"late":         phLate,
}

type keyPart struct {
	ph  placeholder
	lit string
}

// KeyTemplate renders object keys. It is immutable and safe for concurrent use.
type KeyTemplate struct {
	src   string
	parts []keyPart
	usesT bool // uses a time part
}

// ParseKeyTemplate parses a key template such as DefaultKeyTemplate.
//
// Placeholders: {prefix} {window_start} (Unix seconds) {partition} {first_offset}
// {digest} (16 lowercase hex digits naming the object's records, see
// DigestOffset) {ext} ("json"|"jsonl", plus ".gz" with gzip) {client_id}
// {integration} {topic} and the UTC parts of the window start {yyyy} {mm} {dd}
// {hh} {MM} (minute).
//
// The template must start with {prefix} (keys never leave the integration's
// prefix) and contain {partition} and {first_offset} (they make keys unique
// across replicas and make a replay overwrite instead of duplicate) and
// {digest} (an object holding other records than one already written gets
// another key, so that a conditional write answered 412 proves that an object
// with exactly these records is there). Each of them is separated from the
// neighbouring {window_start}, {partition}, {first_offset}, {digest} or time
// part by a literal holding a non-digit (a digest may be all digits), so that
// different objects never render the same key. Unknown
// placeholders, unbalanced braces, control characters, a leading "/" and "." or
// ".." path segments are refused. All errors satisfy IsInvalid.
func ParseKeyTemplate(s string) (*KeyTemplate, error) {
	t, seen, err := lexKeyTemplate(s)
	if err != nil {
		return nil, err
	}
	if seen[phLate] {
		return nil, invalidf("key template %q: {late} names the late objects of staged delivery (delivery.staged); per-partition objects are named by {partition}, {first_offset} and {digest}", s)
	}
	var missing []string
	if !seen[phPartition] {
		missing = append(missing, "{partition}")
	}
	if !seen[phFirstOffset] {
		missing = append(missing, "{first_offset}")
	}
	if len(missing) > 0 {
		return nil, invalidf("key template %q lacks %s: keys must be unique per partition and first offset so that retries and replays overwrite instead of duplicating; add e.g. \"_{partition}_{first_offset}\" before the extension as in %q", s, strings.Join(missing, " and "), DefaultKeyTemplate)
	}
	if !seen[phDigest] {
		return nil, invalidf("key template %q lacks {digest}: the key must name the records the object holds, or a replay that builds another object for the same window, partition and first offset (after Redis lost state, or a config change) would find the key taken, count it as delivered and lose the records the first object does not hold; add \"_{digest}\" after {first_offset} as in %q", s, DefaultKeyTemplate)
	}
	// {partition}, {first_offset} and {digest} change from object to object:
	// a literal with a non-digit must separate each from the previous and next
	// number that changes, or two objects could render one key (partition 1
	// offset 23 and partition 12 offset 3 are both "123" in
	// {partition}{first_offset}) and one would overwrite the other.
	prev, sep := phLiteral, true // previous changing number; a separator since it
	unique := func(ph placeholder) bool { return ph == phPartition || ph == phFirstOffset || ph == phDigest }
	for _, p := range t.parts {
		switch {
		case p.ph == phLiteral && strings.ContainsFunc(p.lit, func(r rune) bool { return r < '0' || r > '9' }), p.ph == phExt:
			sep = true
		case p.ph == phWindowStart || unique(p.ph) || p.ph >= phYear:
			if !sep && prev != phLiteral && (unique(p.ph) || unique(prev)) {
				return nil, invalidf("key template %q: {%s} and {%s} must be separated by a non-digit character such as '_', or two objects could get the same key", s, phName(prev), phName(p.ph))
			}
			prev, sep = p.ph, false
		}
	}
	// A literal's pieces between '/' are whole path segments, except the
	// first (glued to the placeholder before it) and the last unless the
	// literal ends the template. (Key neutralises combinations anyway.)
	for i, p := range t.parts {
		if p.ph != phLiteral {
			continue
		}
		segs := strings.Split(p.lit, "/")
		for j, seg := range segs {
			// {prefix} usually ends with '/' or is empty: treat it as a boundary.
			whole := (j > 0 || t.parts[i-1].ph == phPrefix) && (j < len(segs)-1 || i == len(t.parts)-1)
			if whole && (seg == "." || seg == "..") {
				return nil, invalidf("key template %q: %q path segments are not allowed", s, seg)
			}
		}
	}
	return t, nil
}

// DefaultStagedKeyTemplate is the key of staged delivery's objects (DESIGN
// §3): one object per integration per window, late objects beside it.
const DefaultStagedKeyTemplate = "{prefix}wallarm_hits_{window_start}{late}.{ext}"

// SecurityLakeKeyTemplate is the key of a security_lake integration's
// objects: under the prefix of its source's partitions
// (ext/{source}/region=…/accountId=…/, config.Integration.KeyPrefix), the
// eventDay partition of the window's UTC day. A window never straddles a day
// (window sizes divide 24 h), so the day is every record's.
const SecurityLakeKeyTemplate = "{prefix}eventDay={yyyy}{mm}{dd}/wallarm_hits_{window_start}{late}.{ext}"

// ParseStagedKeyTemplate parses the key template of staged delivery, where
// one object holds an integration's records of a window from every
// partition, and late objects of the window are numbered ({late}: "" for the
// main object, "_late_{n}" for the n-th late one).
//
// Beyond ParseKeyTemplate's lexical rules: the template must contain
// {window_start} and {late}, each followed by a character that is not a digit
// (a literal or {ext}), so that no two objects of one integration render the
// same key (window 100 late 1 and window 1001 must not meet); {partition},
// {first_offset} and {digest} are refused, since they name per-partition
// objects. All errors satisfy IsInvalid.
func ParseStagedKeyTemplate(s string) (*KeyTemplate, error) {
	t, seen, err := lexKeyTemplate(s)
	if err != nil {
		return nil, err
	}
	for _, ph := range []placeholder{phPartition, phFirstOffset, phDigest} {
		if seen[ph] {
			return nil, invalidf("key template %q: {%s} names per-partition objects, but staged delivery writes one object per integration and window from every partition; write e.g. %q", s, phName(ph), DefaultStagedKeyTemplate)
		}
	}
	for _, ph := range []placeholder{phWindowStart, phLate} {
		if !seen[ph] {
			return nil, invalidf("key template %q lacks {%s}: two objects of one integration (two windows, or a window's main and late objects) would get the same key; write e.g. %q", s, phName(ph), DefaultStagedKeyTemplate)
		}
	}
	for i, p := range t.parts {
		if p.ph != phWindowStart && p.ph != phLate {
			continue
		}
		// {late} renders "" or starts with '_': look past it.
		next := i + 1
		for next < len(t.parts) && t.parts[next].ph == phLate {
			next++
		}
		ok := next < len(t.parts) && (t.parts[next].ph == phExt ||
			t.parts[next].ph == phLiteral && (t.parts[next].lit[0] < '0' || t.parts[next].lit[0] > '9'))
		if !ok {
			return nil, invalidf("key template %q: {%s} must be followed by a character that is not a digit (such as '.', '_' or '/'), or two objects could get the same key; write e.g. %q", s, phName(p.ph), DefaultStagedKeyTemplate)
		}
	}
	return t, nil
}

// lexKeyTemplate parses the placeholders of s and checks the rules every
// template follows (it starts with {prefix}; no unknown placeholder,
// unbalanced brace or control character).
func lexKeyTemplate(s string) (*KeyTemplate, map[placeholder]bool, error) {
	t := &KeyTemplate{src: s}
	seen := map[placeholder]bool{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, keyPart{ph: phLiteral, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '{':
			end := strings.IndexAny(s[i+1:], "{}")
			if end < 0 || s[i+1+end] != '}' {
				return nil, nil, invalidf("key template %q: unbalanced '{' at byte %d", s, i)
			}
			name := s[i+1 : i+1+end]
			ph, ok := placeholderNames[name]
			if !ok {
				return nil, nil, invalidf("key template %q: unknown placeholder {%s} (known: {prefix} {window_start} {partition} {first_offset} {digest} {ext} {client_id} {integration} {topic} {yyyy} {mm} {dd} {hh} {MM} {late})", s, name)
			}
			flush()
			t.parts = append(t.parts, keyPart{ph: ph})
			seen[ph] = true
			if ph >= phYear && ph <= phMinute {
				t.usesT = true
			}
			i += end + 2
		case '}':
			return nil, nil, invalidf("key template %q: unbalanced '}' at byte %d", s, i)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size <= 1 {
				return nil, nil, invalidf("key template %q: invalid UTF-8 at byte %d", s, i)
			}
			if unicode.IsControl(r) {
				return nil, nil, invalidf("key template %q: control character at byte %d", s, i)
			}
			lit.WriteString(s[i : i+size])
			i += size
		}
	}
	flush()
	if len(t.parts) == 0 || t.parts[0].ph != phPrefix {
		return nil, nil, invalidf("key template %q must start with {prefix} so that keys stay under the integration's prefix; write e.g. %q", s, "{prefix}"+strings.TrimPrefix(s, "/"))
	}
	return t, seen, nil
}

func phName(ph placeholder) string {
	for name, p := range placeholderNames {
		if p == ph {
			return name
		}
	}
	return "?"
}

// String returns the template source.
func (t *KeyTemplate) String() string { return t.src }

// Key renders the key of one object. It never fails: substituted strings are
// made safe so that the key stays under p.Prefix. Control characters and
// invalid UTF-8 become '_'; in {integration} and {topic} '/' and '\' become '_';
// a leading '/' of the prefix is dropped; a resulting "." or ".." path segment
// becomes "_" or "__". Configured prefixes should be checked with
// ValidatePrefix at start-up so that this sanitising never changes a key.
// Key is safe for concurrent use.
func (t *KeyTemplate) Key(p KeyParams) string {
	var b strings.Builder
	b.Grow(len(t.src) + len(p.Prefix) + 32)
	var tm time.Time
	if t.usesT {
		tm = time.UnixMilli(p.WindowStart).UTC()
	}
	var buf [24]byte
	for _, part := range t.parts {
		switch part.ph {
		case phLiteral:
			b.WriteString(part.lit)
		case phPrefix:
			b.WriteString(cleanValue(strings.TrimLeft(p.Prefix, "/"), false))
		case phWindowStart:
			b.Write(strconv.AppendInt(buf[:0], floorDiv(p.WindowStart, 1000), 10))
		case phPartition:
			b.Write(strconv.AppendInt(buf[:0], int64(p.Partition), 10))
		case phFirstOffset:
			b.Write(strconv.AppendInt(buf[:0], p.FirstOffset, 10))
		case phDigest:
			b.Write(appendHex16(buf[:0], p.Digest))
		case phExt:
			b.WriteString(p.Format.Ext())
			b.WriteString(p.Compression.Ext())
		case phClientID:
			b.Write(strconv.AppendInt(buf[:0], p.ClientID, 10))
		case phIntegration:
			b.WriteString(cleanValue(p.Integration, true))
		case phTopic:
			b.WriteString(cleanValue(p.Topic, true))
		case phYear:
			b.Write(appendPadded(buf[:0], tm.Year(), 4))
		case phMonth:
			b.Write(appendPadded(buf[:0], int(tm.Month()), 2))
		case phDay:
			b.Write(appendPadded(buf[:0], tm.Day(), 2))
		case phHour:
			b.Write(appendPadded(buf[:0], tm.Hour(), 2))
		case phMinute:
			b.Write(appendPadded(buf[:0], tm.Minute(), 2))
		case phLate:
			if p.Late > 0 {
				b.WriteString("_late_")
				b.Write(strconv.AppendInt(buf[:0], int64(p.Late), 10))
			}
		}
	}
	return cleanSegments(strings.TrimLeft(b.String(), "/"))
}

// ValidatePrefix reports whether prefix is a safe key prefix: no leading '/',
// no "." or ".." path segment, no control characters, valid UTF-8. The error
// satisfies IsInvalid.
func ValidatePrefix(prefix string) error {
	if strings.HasPrefix(prefix, "/") {
		return invalidf("prefix %q must not start with '/'", prefix)
	}
	if !utf8.ValidString(prefix) {
		return invalidf("prefix %q is not valid UTF-8", prefix)
	}
	for _, r := range prefix {
		if unicode.IsControl(r) {
			return invalidf("prefix %q contains a control character", prefix)
		}
	}
	for _, seg := range strings.Split(prefix, "/") {
		if seg == "." || seg == ".." {
			return invalidf("prefix %q contains a %q path segment", prefix, seg)
		}
	}
	return nil
}

func cleanValue(s string, noSlash bool) string {
	ok := utf8.ValidString(s)
	if ok {
		for _, r := range s {
			if unicode.IsControl(r) || (noSlash && (r == '/' || r == '\\')) {
				ok = false
				break
			}
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1, unicode.IsControl(r), noSlash && (r == '/' || r == '\\'):
			b.WriteByte('_')
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// cleanSegments replaces "." and ".." path segments by underscores.
func cleanSegments(k string) string {
	if !strings.Contains(k, ".") {
		return k
	}
	segs := strings.Split(k, "/")
	changed := false
	for i, s := range segs {
		if s == "." || s == ".." {
			segs[i] = strings.Repeat("_", len(s))
			changed = true
		}
	}
	if !changed {
		return k
	}
	return strings.Join(segs, "/")
}

func appendPadded(dst []byte, v, width int) []byte {
	p := 1
	for i := 1; i < width; i++ {
		p *= 10
	}
	for ; p > 1 && v >= 0 && v < p; p /= 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(v), 10)
}

// appendHex16 appends v as 16 lowercase hex digits.
func appendHex16(dst []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(v>>uint(shift))&0xf])
	}
	return dst
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("sink: "+format+": %w", append(args, ErrInvalid)...)
}
