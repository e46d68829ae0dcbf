package staging

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
)

// Intent fixes, before the first upload attempt, exactly which records one
// customer object holds and what its bytes are: every attempt on any replica
// assembles the listed segments, keeps the listed records, and must arrive at
// the same size and SHA-256, so that `If-None-Match: *` answering 412 means
// "already delivered". Intents are kept after delivery: a record a later
// segment holds again (a replay, a zombie) is found in one and never written
// twice.
type Intent struct {
	Version     int    `json:"version"`
	Target      string `json:"target"` // the namespace (Namespace): "name:clientID"
	Integration string `json:"integration"`
	ClientID    int64  `json:"client_id"`
	Window      int64  `json:"window_start_ms"`
	CloseAt     int64  `json:"close_at_ms"`
	Object      string `json:"object"` // "main" or "late-NNNN"
	Late        int    `json:"late"`
	Key         string `json:"key"` // in the customer's bucket
	Format      string `json:"format"`
	Compression string `json:"compression"`
	Records     int    `json:"records"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	// Segments are the staging keys the records are read from.
	Segments []string `json:"segments"`
	// Partitions holds the records by partition, in order.
	Partitions []PartitionRecords `json:"partitions"`
}

// PartitionRecords is the offsets of one partition's records in an object.
type PartitionRecords struct {
	Partition int   `json:"partition"`
	First     int64 `json:"first"`
	Last      int64 `json:"last"`
	Count     int   `json:"count"`
	// Offsets is base64 of the offsets as unsigned varints, each the
	// difference to the previous one (the first to 0).
	Offsets string `json:"offsets"`
}

// Manifest records a finished delivery in the staging bucket: after it is
// written the intent's segments are deleted. State is "delivered" (the object
// is in the customer's bucket) or "parked" (its bytes wait in the staging
// bucket for the retry workers, DESIGN §5).
type Manifest struct {
	Key        string             `json:"key"`
	State      string             `json:"state"`
	Records    int                `json:"records"`
	Size       int64              `json:"size"`
	SHA256     string             `json:"sha256"`
	Partitions []PartitionRecords `json:"partitions"` // without Offsets
}

// Offsets is a set of record identities (partition, offset) built in order,
// held as runs of consecutive offsets: a partition's records in one object
// are one run unless a replay or a dead letter left a hole, so a window of
// millions of records costs a few bytes, not 8 (and the slice's growth) per
// record (bench/README.md measured 25 bytes per record at 2 GiB).
type Offsets map[int][]span

// span is the offsets first..last, both included.
type span struct{ first, last int64 }

// Add adds offset to partition's set; offsets come in increasing order.
func (o Offsets) Add(partition int, offset int64) {
	l := o[partition]
	if n := len(l); n > 0 && l[n-1].last+1 == offset {
		l[n-1].last = offset
		return
	}
	o[partition] = append(l, span{offset, offset})
}

// Has reports whether the set holds (partition, offset).
func (o Offsets) Has(partition int, offset int64) bool {
	l := o[partition]
	i := sort.Search(len(l), func(i int) bool { return l[i].last >= offset })
	return i < len(l) && l[i].first <= offset
}

// Merge adds every identity of other.
func (o Offsets) Merge(other Offsets) {
	for p, l := range other {
		m := append(slices.Clone(o[p]), l...)
		slices.SortFunc(m, func(a, b span) int { return cmp.Compare(a.first, b.first) })
		out := m[:0]
		for _, s := range m {
			if n := len(out); n > 0 && s.first <= out[n-1].last+1 {
				out[n-1].last = max(out[n-1].last, s.last)
				continue
			}
			out = append(out, s)
		}
		o[p] = out
	}
}

// Len is the number of identities.
func (o Offsets) Len() int {
	n := 0
	for p := range o {
		n += o.count(p)
	}
	return n
}

func (o Offsets) count(p int) int {
	n := 0
	for _, s := range o[p] {
		n += int(s.last - s.first + 1)
	}
	return n
}

// Encode renders the set by partition, in partition order.
func (o Offsets) Encode() []PartitionRecords {
	ps := make([]int, 0, len(o))
	for p, l := range o {
		if len(l) > 0 {
			ps = append(ps, p)
		}
	}
	sort.Ints(ps)
	out := make([]PartitionRecords, 0, len(ps))
	for _, p := range ps {
		l := o[p]
		n := o.count(p)
		buf := make([]byte, 0, n+binary.MaxVarintLen64*len(l))
		prev := int64(0)
		for _, s := range l {
			buf = binary.AppendUvarint(buf, uint64(s.first-prev))
			for off := s.first + 1; off <= s.last; off++ {
				buf = append(buf, 1) // the varint of 1
			}
			prev = s.last
		}
		out = append(out, PartitionRecords{Partition: p, First: l[0].first, Last: l[len(l)-1].last, Count: n,
			Offsets: base64.StdEncoding.EncodeToString(buf)})
	}
	return out
}

// DecodeOffsets reads what Encode wrote.
func DecodeOffsets(prs []PartitionRecords) (Offsets, error) {
	o := Offsets{}
	for _, pr := range prs {
		buf, err := base64.StdEncoding.DecodeString(pr.Offsets)
		if err != nil {
			return nil, fmt.Errorf("staging: offsets of partition %d: %w", pr.Partition, err)
		}
		prev, count := int64(0), 0
		for len(buf) > 0 {
			d, n := binary.Uvarint(buf)
			if n <= 0 {
				return nil, fmt.Errorf("staging: offsets of partition %d are corrupt", pr.Partition)
			}
			buf = buf[n:]
			if count > 0 && d == 0 {
				return nil, fmt.Errorf("staging: offsets of partition %d are not increasing", pr.Partition)
			}
			prev += int64(d)
			o.Add(pr.Partition, prev)
			count++
		}
		if count != pr.Count {
			return nil, fmt.Errorf("staging: partition %d lists %d offsets, says %d", pr.Partition, count, pr.Count)
		}
	}
	return o, nil
}

func decodeIntent(data []byte) (*Intent, error) {
	var in Intent
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("staging: intent: %w", err)
	}
	if in.Version != 1 {
		return nil, fmt.Errorf("staging: intent version %d unknown", in.Version)
	}
	return &in, nil
}

// summary is prs without their offsets (for a manifest).
func summary(prs []PartitionRecords) []PartitionRecords {
	out := slices.Clone(prs)
	for i := range out {
		out[i].Offsets = ""
	}
	return out
}
