package integrations

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"hitship/sink"
)

// Target is one integration as the hot path sees it: one tenant's destination.
type Target struct {
	// ID names what the target is: its integration's name, its client id and
	// a fingerprint of everything that decides where and for whom records go
	// (client id, bucket, region, endpoint, path style, prefix, format,
	// compression; not the credentials). See NewTargetID. Window buffers are
	// keyed by it and keep the Target they were created with, so a buffer
	// belongs to one tenant and one destination whatever a reload does: a
	// reload that changes any of these makes new buffers, and the old ones
	// close as usual and go to the old destination with the old tenant's
	// records only.
	ID          string
	Name        string
	ClientID    int64
	Prefix      string
	Format      sink.Format
	Compression sink.Compression
	Keys        *sink.KeyTemplate
	Store       sink.Store
	IfNoneMatch bool
}

// NewTargetID returns the ID of a target (Target.ID): "name:clientID:fp",
// where fp is 16 hex digits of FNV-1a 64 over destination, the values that
// decide where its records go (bucket, region, endpoint, path style, prefix,
// format, compression), in a fixed order. Integration names hold no ':'.
func NewTargetID(name string, clientID int64, destination ...string) string {
	h := fnv.New64a()
	for _, d := range destination {
		_, _ = h.Write([]byte(d))
		_, _ = h.Write([]byte{0})
	}
	return fmt.Sprintf("%s:%d:%016x", name, clientID, h.Sum64())
}

// TargetClient returns the client id an ID made by NewTargetID names.
func TargetClient(id string) (int64, bool) {
	_, rest, ok := strings.Cut(id, ":")
	if !ok {
		return 0, false
	}
	c, _, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(c, 10, 64)
	return n, err == nil
}

// IntegrationKey is "name:clientID" of a target ID made by NewTargetID (or of
// such a key itself): what stays the same when a reload moves an integration
// to another destination. False when id is neither.
func IntegrationKey(id string) (string, bool) {
	name, rest, ok := strings.Cut(id, ":")
	if !ok || name == "" {
		return "", false
	}
	c, _, _ := strings.Cut(rest, ":")
	if _, err := strconv.ParseInt(c, 10, 64); err != nil {
		return "", false
	}
	return name + ":" + c, true
}

// Successor returns the member of set that is the same integration as the
// target ID id (same name, same client: IntegrationKey), whatever its
// destination now: where a target a reload moved delivers now. Never another
// client's target.
func (s *RouteSet) Successor(id string) (*Target, bool) {
	key, ok := IntegrationKey(id)
	if !ok {
		return nil, false
	}
	for _, t := range s.Members {
		if k, _ := IntegrationKey(t.ID); k == key {
			return t, true
		}
	}
	return nil, false
}

// RouteSet is a membership: the set of targets a partition's records may be
// routed to. Each record goes to the members whose ClientID is its tenant.
// Immutable once made (NewRouteSet).
type RouteSet struct {
	ID      string    // RouteSetID(IDs): names the set's content
	IDs     []string  // the members' IDs, sorted
	Members []*Target // in the order of IDs
}

// NewRouteSet returns the set of targets, sorted by ID, with its ID.
func NewRouteSet(targets []*Target) *RouteSet {
	ms := slices.Clone(targets)
	slices.SortFunc(ms, func(a, b *Target) int { return strings.Compare(a.ID, b.ID) })
	ids := make([]string, len(ms))
	for i, t := range ms {
		ids[i] = t.ID
	}
	return &RouteSet{ID: RouteSetID(ids), IDs: ids, Members: ms}
}

// RouteSetID is the content id of a set of target IDs given sorted: 32 hex
// digits of SHA-256 over the IDs, each followed by a newline.
func RouteSetID(sortedIDs []string) string {
	h := sha256.New()
	for _, id := range sortedIDs {
		_, _ = h.Write([]byte(id))
		_, _ = h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
