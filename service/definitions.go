package service

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"hitship/admin"
	"hitship/config"
	"hitship/integrations"
	"hitship/integrations/defs"
	"hitship/integrations/registry"
	"hitship/secrets"
	s3sink "hitship/sink/s3"
)

// Integrations created through the admin API (issue #13) are definitions in
// the integrations topic (integrations/defs). The running config is the
// file's with them added: every replica computes it from the file it loaded
// and the definitions its follower applied, at start (before the first
// record), after every change of a definition (within the follower's wait,
// no restart, no rebalance) and at every SIGHUP. It goes through the same
// reload as a SIGHUP: the same validation, and routing changes recorded at an
// offset of each partition.
//
// Decisions: a definition whose name the file also has is left out (the
// file wins; the API refuses such a name); a definition the validator finds a
// problem with (written by another version, or valid only with settings this
// replica's file lacks) is left out and logged, the others apply.

// effective returns file's config with the valid definitions added, and the
// definitions left out with why.
func (s *Service) effective(file *config.Config) (*config.Config, map[string]string) {
	cfg := *file
	cfg.Integrations = slices.Clone(file.Integrations)
	left := map[string]string{}
	if s.defs == nil {
		return &cfg, left
	}
	list, err := s.defs.List()
	if err != nil {
		left["(unreadable)"] = err.Error()
	}
	inFile := map[string]bool{}
	for _, in := range file.Integrations {
		inFile[in.Name] = true
	}
	var added []config.Integration
	for _, d := range list {
		if inFile[d.Name] {
			left[d.Name] = "the config file has an integration of that name, which wins; delete the API's (hitship integrations delete " + d.Name + ")"
			continue
		}
		in, err := s.integrationOf(d)
		if err != nil {
			left[d.Name] = err.Error()
			continue
		}
		added = append(added, in)
	}
	for len(added) > 0 {
		try := cfg
		try.Integrations = append(slices.Clone(cfg.Integrations), added...)
		bad := problemsOfAdded(try.Validate(), len(cfg.Integrations), added)
		if len(bad) == 0 {
			return &try, left
		}
		added = slices.DeleteFunc(added, func(in config.Integration) bool {
			if p, ok := bad[in.Name]; ok {
				left[in.Name] = p
				return true
			}
			return false
		})
	}
	return &cfg, left
}

var problemIndex = regexp.MustCompile(`^integrations\[(\d+)\]`)

// problemsOfAdded maps the problems of the added integrations (at index base
// and after) by name; a problem elsewhere is charged to every added one.
func problemsOfAdded(ps []config.Problem, base int, added []config.Integration) map[string]string {
	out := map[string]string{}
	for _, p := range ps {
		m := problemIndex.FindStringSubmatch(p.Key)
		if m == nil {
			for _, in := range added {
				out[in.Name] += p.String() + "; "
			}
			continue
		}
		i, _ := strconv.Atoi(m[1])
		if i >= base && i-base < len(added) {
			name := added[i-base].Name
			out[name] += strings.Replace(p.String(), m[0], "integration "+name, 1) + "; "
		}
	}
	for k, v := range out {
		out[k] = strings.TrimSuffix(v, "; ")
	}
	return out
}

// configIntegration is the config file's integration d stands for (no
// secret, no incarnation); the config's defaults fill what d leaves empty.
func configIntegration(d *defs.Definition) config.Integration {
	in := config.DefaultIntegration()
	in.Name, in.ClientID, in.Region, in.Bucket, in.Prefix = d.Name, d.ClientID, d.Region, d.Bucket, d.Prefix
	in.Format, in.Endpoint, in.PathStyle, in.Manifest = cmp.Or(d.Format, in.Format), d.Endpoint, d.PathStyle, d.Manifest
	in.Type = d.Type
	if d.SecurityLake != nil {
		in.SecurityLake = *d.SecurityLake
	}
	in.Format = cmp.Or(d.Format, config.DefaultFormat(d.Type))
	in.Compression = cmp.Or(d.Compression, in.Compression)
	if len(d.Events) > 0 {
		in.Events = slices.Clone(d.Events)
	}
	in.Source = config.SourceAPI
	in.Credentials = config.Credentials{RoleARN: d.RoleARN, AccessKeyID: d.AccessKeyID}
	return in
}

// integrationOf is the config integration a stored definition stands for.
func (s *Service) integrationOf(d *defs.Definition) (config.Integration, error) {
	in := configIntegration(d)
	in.Incarnation = strconv.FormatInt(d.CreatedAt.UnixMilli(), 10)
	if d.AccessKeyID != "" {
		secret, err := s.defs.Secret(d)
		if err != nil {
			return config.Integration{}, err
		}
		in.Credentials.SetInlineSecret(secret)
	}
	return in, nil
}

// apply makes file (nil: the file loaded last) plus the definitions the
// running config.
func (s *Service) apply(file *config.Config) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if file == nil {
		file = s.file
	}
	cfg, left := s.effective(file)
	for name, why := range left {
		if s.leftOut[name] != why {
			s.log.Warn("an integration created through the API is left out", "integration", name, "problem", why)
		}
	}
	s.leftOut = left
	s.reloadMu.Lock()
	wasAPI := map[string]bool{}
	for _, in := range s.cfg.Integrations {
		wasAPI[in.Name] = in.Source == config.SourceAPI
	}
	s.reloadMu.Unlock()
	removed, err := s.reload(cfg)
	if err != nil {
		return err
	}
	s.file = file
	// An API integration is removed by its delete, which removes what
	// hitship keeps for it: no advice to run hitship forget.
	s.noteRemoved(slices.DeleteFunc(removed, func(n string) bool { return wasAPI[n] }))
	return nil
}

// rewrapSecrets re-wraps, once at start, the stored secrets that are not
// under the key ring's newest key: after a key is added as the newest and the
// replicas rolled, what the integrations topic holds moves to it by itself
// (secrets/doc.go, "Rotating the key encryption key").
func (s *Service) rewrapSecrets(ctx context.Context) {
	n, err := s.defs.RewrapAll(ctx, "hitship-rewrap")
	if n > 0 {
		s.log.Info("secrets of integrations re-wrapped under the newest key", "integrations", n)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("not every stored secret could be re-wrapped under the newest key; the next start tries again", "err", err)
	}
}

// pokeDefinitions asks runDefinitions to apply the definitions again.
func (s *Service) pokeDefinitions() {
	select {
	case s.defsPoke <- struct{}{}:
	default:
	}
}

// runDefinitions applies the definitions whenever one changed, until ctx ends.
func (s *Service) runDefinitions(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.defsPoke:
			if err := s.apply(nil); err != nil {
				s.log.Error("integrations created through the API not applied", "err", err)
			}
		}
	}
}

// newSealer is what seals the secrets of integrations created through the
// API: the key ring of secrets.keys_env/_file, or, without one, a sealer that
// refuses (only role integrations can then be created there).
func newSealer(cfg *config.Config) (defs.Sealer, error) {
	text := cfg.Secrets.Keys()
	if text == "" {
		return noKeys{}, nil
	}
	kr, err := secrets.ParseKeyring(text, cfg.Secrets.KeysSource())
	if err != nil {
		return nil, err
	}
	sl, err := secrets.NewSealer(kr)
	if err != nil {
		return nil, err
	}
	return defs.Envelopes(sl), nil
}

// noKeys refuses to seal: without a key ring only role integrations can be
// created through the API.
type noKeys struct{}

func (noKeys) Seal([]byte, []byte) (json.RawMessage, error) {
	return nil, errors.New("no key ring to seal secrets with is configured (secrets.keys_env or secrets.keys_file): create role integrations, or configure one")
}

func (noKeys) Rewrap(raw json.RawMessage, _ []byte) (json.RawMessage, bool, error) {
	return raw, false, nil
}

func (noKeys) Open(json.RawMessage, []byte) ([]byte, error) {
	return nil, errors.New("no key ring to open sealed secrets with is configured (secrets.keys_env or secrets.keys_file): configure the key ring the secret was sealed with")
}

// apiDefinitions is the admin API's Definitions: it validates a request as
// the config file's integrations are validated (the same problems, the same
// fixes), stores it (integrations/defs) and applies it on this replica at
// once; the others follow the integrations topic.
type apiDefinitions struct{ s *Service }

var _ admin.Definitions = apiDefinitions{}

// definitionOf is the definition a request asks for (without its secret).
func definitionOf(req admin.Request) defs.Definition {
	return defs.Definition{Name: req.Name, ClientID: req.ClientID, Region: req.Region, Bucket: req.Bucket, Prefix: req.Prefix,
		Format: req.Format, Compression: req.Compression, Events: req.Events, Endpoint: req.Endpoint, PathStyle: req.PathStyle,
		Manifest: req.Manifest, RoleARN: req.Credentials.RoleARN, AccessKeyID: req.Credentials.AccessKeyID,
		Type: req.Type, SecurityLake: req.SecurityLake}
}

func (a apiDefinitions) Create(ctx context.Context, req admin.Request, by string, saveAnyway bool) (admin.Integration, []admin.Problem, error) {
	s := a.s
	if s.inFile(req.Name) {
		return admin.Integration{}, nil, admin.ErrFromFile
	}
	d := definitionOf(req)
	ps, cfg := s.check(d, req.Credentials.SecretAccessKey)
	if len(ps) > 0 {
		return admin.Integration{}, ps, nil
	}
	if err := s.testFirst(ctx, cfg, d.Name, saveAnyway); err != nil {
		return admin.Integration{}, nil, err
	}
	got, err := s.defs.Create(ctx, d, req.Credentials.SecretAccessKey, by)
	return s.written(ctx, registry.CreateEventType, by, got, err)
}

func (a apiDefinitions) Replace(ctx context.Context, name string, ifMatch int64, req admin.Request, by string, saveAnyway bool) (admin.Integration, []admin.Problem, error) {
	s := a.s
	if s.inFile(name) {
		return admin.Integration{}, nil, admin.ErrFromFile
	}
	cur, ok := s.defs.Get(name)
	if !ok {
		return admin.Integration{}, nil, admin.ErrNotFound
	}
	d := definitionOf(req)
	secret := req.Credentials.SecretAccessKey
	check, err := s.secretFor(d, secret, cur)
	if err != nil {
		return admin.Integration{}, nil, err
	}
	ps, cfg := s.check(d, check)
	if len(ps) > 0 {
		return admin.Integration{}, ps, nil
	}
	if err := s.testFirst(ctx, cfg, d.Name, saveAnyway); err != nil {
		return admin.Integration{}, nil, err
	}
	got, err := s.defs.Replace(ctx, d, ifMatch, secret, by)
	return s.written(ctx, registry.UpdateEventType, by, got, err)
}

// deleteSettle is how long a delete waits, after this replica stopped
// delivering the integration, before it removes what hitship keeps for it:
// the other replicas' followers apply the deletion within about a second
// (kstore.DefaultMaxWait). A replica that could not (cut off from Kafka)
// may still write some; the incarnation in the target ID keeps it from a
// later integration of the same name (integrations/build.go).
const deleteSettle = 2 * time.Second

// Delete removes the definition, stops delivery here, and then removes
// everything hitship keeps for the integration (hitship forget --purge): its
// runtime state, health ledger, retry entries, parked, dead and staged
// objects, with a delete_integration event.
func (a apiDefinitions) Delete(ctx context.Context, name string, ifMatch int64, by string) (any, error) {
	s := a.s
	if s.inFile(name) {
		return nil, admin.ErrFromFile
	}
	gone, err := s.defs.Delete(ctx, name, ifMatch)
	if err != nil {
		return nil, adminError(err)
	}
	if err := s.apply(nil); err != nil {
		s.log.Error("integration deleted, but this replica did not apply it", "integration", name, "err", err)
	}
	select {
	case <-time.After(deleteSettle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out, err := s.forgetter().Forget(ctx, name, true, by)
	if err != nil {
		return nil, fmt.Errorf("the definition is deleted; removing what hitship keeps for it: %w", err)
	}
	s.log.Info("integration deleted", "integration", name, "version", gone.Version, "by", by, "removed", out.Removed, "event", out.Event)
	return struct {
		Deleted string `json:"deleted"`
		Version int64  `json:"version"`
		Removed any    `json:"removed"`
	}{name, gone.Version, out}, nil
}

// onboarding is what the console shows a customer setting up a role.
func (s *Service) onboarding(clientID int64, bucket string) (s3sink.Onboarding, error) {
	s.reloadMu.Lock()
	x := s.cfg.ExternalID
	s.reloadMu.Unlock()
	return s3sink.NewOnboarding(x.AccountID, []byte(x.Secret()), clientID, bucket)
}

// testFirst runs the test write of integration name of cfg before it is
// stored: a failing one refuses the write (admin.TestFailedError) unless
// saveAnyway, which stores it and logs the answer.
func (s *Service) testFirst(ctx context.Context, cfg *config.Config, name string, saveAnyway bool) error {
	tctx, cancel := context.WithTimeout(ctx, admin.DefaultTestTimeout)
	defer cancel()
	ans, err := integrations.Test(tctx, cfg, name, s.stores)
	if err != nil {
		return err
	}
	if ans.OK {
		return nil
	}
	if saveAnyway {
		s.log.Warn("integration saved although its test write failed (save_anyway)", "integration", name, "problem", ans.Problem, "message", ans.Message)
		return nil
	}
	return &admin.TestFailedError{Answer: ans}
}

// written maps the store's answer, records the event (typ) and applies the
// change on this replica.
func (s *Service) written(ctx context.Context, typ, by string, d *defs.Definition, err error) (admin.Integration, []admin.Problem, error) {
	if err != nil {
		return admin.Integration{}, nil, adminError(err)
	}
	if ev, err := s.registry.Record(ctx, typ, d.Name, "", by); err != nil {
		s.log.Warn("integration stored; its event not recorded (Redis)", "integration", d.Name, "type", typ, "err", err)
	} else {
		s.log.Info("integration "+strings.TrimSuffix(typ, "_integration")+"d through the API", "integration", d.Name, "version", d.Version, "event", ev)
	}
	if err := s.apply(nil); err != nil {
		s.log.Error("integration stored, but not applied on this replica", "integration", d.Name, "err", err)
	}
	for _, in := range s.adminIntegrations() {
		if in.Name == d.Name {
			return in, nil, nil
		}
	}
	// Stored, but left out here (the reason was logged): answer what was stored.
	return admin.Integration{Name: d.Name, ClientID: d.ClientID, Region: d.Region, Bucket: d.Bucket, Prefix: d.Prefix,
		Format: d.Format, Compression: d.Compression, RoleARN: d.RoleARN, AccessKeyID: d.AccessKeyID, ConfigEnabled: true,
		Source: config.SourceAPI, Version: d.Version, Type: d.Type, SecurityLake: derefLake(d.SecurityLake)}, nil, nil
}

// inFile reports whether the config file has an integration of that name.
func (s *Service) inFile(name string) bool {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	return slices.ContainsFunc(s.file.Integrations, func(in config.Integration) bool { return in.Name == name })
}

// check validates d (with its secret) as the config file's integrations are
// validated, beside the running config's others.
// It returns the config with d in it, for a test write.
func (s *Service) check(d defs.Definition, secret string) ([]admin.Problem, *config.Config) {
	s.reloadMu.Lock()
	run := s.cfg
	s.reloadMu.Unlock()
	in := configIntegration(&d)
	if d.AccessKeyID != "" {
		in.Credentials.SetInlineSecret(secret)
	}
	cfg := *run
	cfg.Integrations = slices.DeleteFunc(slices.Clone(run.Integrations), func(o config.Integration) bool { return o.Name == d.Name })
	at := len(cfg.Integrations)
	cfg.Integrations = append(cfg.Integrations, in)
	var out []admin.Problem
	prefix := fmt.Sprintf("integrations[%d]", at)
	for _, p := range cfg.Validate() {
		field, ok := strings.CutPrefix(p.Key, prefix)
		if !ok {
			if m := problemIndex.FindString(p.Key); m != "" {
				continue // another integration's (it was valid when applied)
			}
			field = p.Key
		}
		field = strings.TrimPrefix(field, ".")
		msg := strings.ReplaceAll(p.Msg, prefix, "this integration")
		out = append(out, admin.Problem{Field: cmp.Or(field, "name"), Problem: msg, Fix: p.Fix})
	}
	return out, &cfg
}

// secretFor is the secret d is checked and tested with: the one sent, or,
// when none was sent and the access key id is cur's (nil: none stored), the
// stored one (a replace that keeps the key).
func (s *Service) secretFor(d defs.Definition, sent string, cur *defs.Definition) (string, error) {
	if sent != "" || d.AccessKeyID == "" || cur == nil || d.AccessKeyID != cur.AccessKeyID {
		return sent, nil
	}
	return s.defs.Secret(cur)
}

// adminError is the admin API's error of a defs error.
func adminError(err error) error {
	switch {
	case errors.Is(err, defs.ErrExists):
		return admin.ErrExists
	case errors.Is(err, defs.ErrNotFound):
		return admin.ErrNotFound
	case errors.Is(err, defs.ErrVersion):
		return admin.ErrVersion
	case errors.Is(err, defs.ErrBusy):
		return admin.ErrBusy
	}
	return err
}

// Test is test-before-save: the test write of the integration req describes,
// storing nothing.
func (a apiDefinitions) Test(ctx context.Context, req admin.Request) (s3sink.Answer, []admin.Problem, error) {
	s := a.s
	d := definitionOf(req)
	cur, _ := s.defs.Get(d.Name)
	secret, err := s.secretFor(d, req.Credentials.SecretAccessKey, cur)
	if err != nil {
		return s3sink.Answer{}, nil, err
	}
	ps, cfg := s.check(d, secret)
	if len(ps) > 0 {
		return s3sink.Answer{}, ps, nil
	}
	ans, err := integrations.Test(ctx, cfg, d.Name, s.stores)
	return ans, nil, err
}

// derefLake is *sl, or the zero value for nil.
func derefLake(sl *config.SecurityLake) config.SecurityLake {
	if sl == nil {
		return config.SecurityLake{}
	}
	return *sl
}
