package staging

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Layout names the staging bucket's objects under the operator's prefix
// (parking.prefix). Every name is a pure function of what it describes, so a
// replay writes the same segment under the same key, and intents and
// manifests are found by listing.
//
//	{prefix}staging/seg/{closeAt}/{target}/{window}/{partition}-{first offset}-{digest}
//	{prefix}staging/obj/{namespace}/{window}/{object}.intent|.manifest
//
// closeAt and window are Unix milliseconds, zero-padded to 16 digits so that
// keys sort by time; target is the target ID, path-escaped; namespace is the
// target's integration, "name:clientID" (Namespace): one namespace holds the
// objects of every destination an integration had in that window; object is "main"
// or "late-NNNN". Segments are grouped by the boundary at which they closed:
// a listing of seg/ with a delimiter tells the boundaries that have segments,
// and every segment of a boundary the topic has passed can be assembled.
type Layout struct{ Prefix string }

func pad(ms int64) string { return fmt.Sprintf("%016d", ms) }

// SegPrefix is the prefix of every segment.
func (l Layout) SegPrefix() string { return l.Prefix + "staging/seg/" }

// BoundaryPrefix is the prefix of the segments that closed at boundary closeAt.
func (l Layout) BoundaryPrefix(closeAt int64) string { return l.SegPrefix() + pad(closeAt) + "/" }

// SegmentKey names one closed buffer's segment.
func (l Layout) SegmentKey(s SegmentID) string {
	return l.BoundaryPrefix(s.CloseAt) + url.PathEscape(s.Target) + "/" + pad(s.Window) + "/" +
		strconv.Itoa(s.Partition) + "-" + strconv.FormatInt(s.FirstOffset, 10) + "-" + fmt.Sprintf("%016x", s.Digest)
}

// ObjPrefix is the prefix of the intents and manifests of namespace ns's
// window (Namespace).
func (l Layout) ObjPrefix(ns string, window int64) string {
	return l.Prefix + "staging/obj/" + url.PathEscape(ns) + "/" + pad(window) + "/"
}

// IntentKey and ManifestKey name an object's intent and manifest.
func (l Layout) IntentKey(ns string, window int64, object string) string {
	return l.ObjPrefix(ns, window) + object + ".intent"
}

// ManifestKey: see IntentKey.
func (l Layout) ManifestKey(ns string, window int64, object string) string {
	return l.ObjPrefix(ns, window) + object + ".manifest"
}

// ObjectName is the name of a window's main object (late = 0) or of its
// late-th late object.
func ObjectName(late int) string {
	if late == 0 {
		return "main"
	}
	return fmt.Sprintf("late-%04d", late)
}

// SegmentID is what a segment key says.
type SegmentID struct {
	CloseAt     int64 // the watermark boundary at which the buffer closed (Unix ms)
	Target      string
	Window      int64 // window start (Unix ms)
	Partition   int
	FirstOffset int64
	Digest      uint64
}

// ParseSegmentKey reads a key made by SegmentKey.
func (l Layout) ParseSegmentKey(key string) (SegmentID, error) {
	rest, ok := strings.CutPrefix(key, l.SegPrefix())
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 4 {
		return SegmentID{}, fmt.Errorf("staging: %q is not a segment key", key)
	}
	var s SegmentID
	var err error
	if s.CloseAt, err = strconv.ParseInt(parts[0], 10, 64); err != nil {
		return SegmentID{}, fmt.Errorf("staging: segment key %q: %w", key, err)
	}
	if s.Target, err = url.PathUnescape(parts[1]); err != nil {
		return SegmentID{}, fmt.Errorf("staging: segment key %q: %w", key, err)
	}
	if s.Window, err = strconv.ParseInt(parts[2], 10, 64); err != nil {
		return SegmentID{}, fmt.Errorf("staging: segment key %q: %w", key, err)
	}
	f := strings.Split(parts[3], "-")
	if len(f) != 3 {
		return SegmentID{}, fmt.Errorf("staging: %q is not a segment key", key)
	}
	if s.Partition, err = strconv.Atoi(f[0]); err != nil {
		return SegmentID{}, fmt.Errorf("staging: segment key %q: %w", key, err)
	}
	if s.FirstOffset, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return SegmentID{}, fmt.Errorf("staging: segment key %q: %w", key, err)
	}
	if s.Digest, err = strconv.ParseUint(f[2], 16, 64); err != nil {
		return SegmentID{}, fmt.Errorf("staging: segment key %q: %w", key, err)
	}
	return s, nil
}

// IntegrationObjects lists what the staging bucket keeps for the integration
// called name, whatever its targets (client, destination, incarnation): its
// segments and its intents and manifests. It lists every segment (an
// operator's command, not a hot path).
func (l Layout) IntegrationObjects(ctx context.Context, store Lister, name string) (segments, records []string, err error) {
	err = store.List(ctx, l.SegPrefix(), func(keys []string) error {
		for _, k := range keys {
			if id, err := l.ParseSegmentKey(k); err == nil && targetName(id.Target) == name {
				segments = append(segments, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	objPrefix := l.Prefix + "staging/obj/"
	err = store.List(ctx, objPrefix+url.PathEscape(name), func(keys []string) error {
		for _, k := range keys {
			ns, _, _ := strings.Cut(strings.TrimPrefix(k, objPrefix), "/")
			if ns, err := url.PathUnescape(ns); err == nil && targetName(ns) == name {
				records = append(records, k)
			}
		}
		return nil
	})
	return segments, records, err
}

// Lister lists keys under a prefix (*parking.Store).
type Lister interface {
	List(ctx context.Context, prefix string, fn func(keys []string) error) error
}

// targetName is the integration name of a target ID (integrations.NewTargetID)
// or a namespace, without an API integration's incarnation ("name~inc").
func targetName(id string) string {
	name, _, _ := strings.Cut(id, ":")
	name, _, _ = strings.Cut(name, "~")
	return name
}
