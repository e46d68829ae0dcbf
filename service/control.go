package service

import (
	"context"
	"fmt"
	"hitship/admin"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/config"
	"hitship/delivery/retry"
	"hitship/health"
	"hitship/integrations/registry"
)

// UnknownIntegrationError says a name given on the command line is not an
// integration of the config file; it lists the ones that are.
type UnknownIntegrationError struct {
	Name       string
	Configured []string
}

func (e *UnknownIntegrationError) Error() string {
	if len(e.Configured) == 0 {
		return fmt.Sprintf("no integration named %q: the config file has no integrations", e.Name)
	}
	return fmt.Sprintf("no integration named %q; the config file has: %s", e.Name, strings.Join(e.Configured, ", "))
}

// CheckIntegration returns an *UnknownIntegrationError unless name is an
// integration of cfg.
func CheckIntegration(cfg *config.Config, name string) error {
	names := make([]string, 0, len(cfg.Integrations))
	for _, in := range cfg.Integrations {
		if in.Name == name {
			return nil
		}
		names = append(names, in.Name)
	}
	slices.Sort(names)
	return &UnknownIntegrationError{Name: name, Configured: names}
}

// Control changes and reads the runtime state of the configured integrations
// in Redis exactly as the admin API of a running replica does (same registry
// call, same event in the events stream, and on an enable the same hook:
// the health ledger is reset and the integration's parked entries are made
// due), for the commands `hitship enable`, `disable` and `status`. Every
// replica picks a change up within its 2-second poll. Safe for concurrent use.
type Control struct {
	cfg    *config.Config
	reg    *registry.Store
	ledger *health.Ledger
	queue  *retry.Queue // nil without a parking bucket
	now    func() time.Time
}

// NewControl returns a Control for cfg, which must have passed Validate,
// over reg (OpenRegistry: Redis and the durable integrations topic, so a
// change carries its client id and reaches the topic at once) and rdb, the
// Redis client reg uses.
func NewControl(cfg *config.Config, reg *registry.Store, rdb redis.UniversalClient) (*Control, error) {
	c := &Control{cfg: cfg, reg: reg, now: time.Now}
	var err error
	if c.ledger, err = health.New(rdb, health.Config{Prefix: cfg.Redis.KeyPrefix, MinAttempts: cfg.Delivery.HealthMinAttempts,
		MinFailing: cfg.Delivery.HealthMinFailing, Registry: reg}); err != nil {
		return nil, err
	}
	if cfg.Parking.Enabled() {
		if c.queue, err = NewRetryQueue(cfg, rdb); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Change is the outcome of an Enable or Disable.
type Change struct {
	Changed bool           // false: it already was in that state, nothing recorded
	Event   registry.Event // the recorded event, when Changed
	Status  registry.Status
	// Woken is how many parked entries an enable made due now.
	Woken int
}

// Disable marks name disabled, by whom and why: from then on its records are
// skipped and counted by every replica.
func (c *Control) Disable(ctx context.Context, name, reason, by string) (Change, error) {
	if err := CheckIntegration(c.cfg, name); err != nil {
		return Change{}, err
	}
	ev, changed, err := c.reg.Disable(ctx, name, reason, by)
	if err != nil {
		return Change{}, err
	}
	return c.change(ctx, name, ev, changed, 0)
}

// Enable marks name enabled again; on a change it resets the health ledger
// and makes the parked entries due now (what Service.onEnable does for the
// admin API).
func (c *Control) Enable(ctx context.Context, name, by string) (Change, error) {
	if err := CheckIntegration(c.cfg, name); err != nil {
		return Change{}, err
	}
	ev, changed, err := c.reg.Enable(ctx, name, by)
	if err != nil {
		return Change{}, err
	}
	woken := 0
	if changed {
		if woken, err = afterEnable(ctx, c.ledger, c.queue, name, c.now()); err != nil {
			return Change{}, fmt.Errorf("%s enabled, but: %w", name, err)
		}
	}
	return c.change(ctx, name, ev, changed, woken)
}

func (c *Control) change(ctx context.Context, name string, ev registry.Event, changed bool, woken int) (Change, error) {
	st, err := c.reg.Status(ctx, name)
	if err != nil {
		return Change{}, err
	}
	return Change{Changed: changed, Event: ev, Status: st, Woken: woken}, nil
}

// IntegrationStatus is one integration as `hitship status` shows it.
type IntegrationStatus struct {
	registry.Status
	// ConfigEnabled is the config file's enabled; false overrides any runtime state.
	ConfigEnabled bool
	// Attempts and Failures are the health ledger's counts of the last 12 hours.
	Attempts, Failures int
}

// Status returns the state of the named integrations, or of every configured
// one when names is empty, in the config file's order.
func (c *Control) Status(ctx context.Context, names ...string) ([]IntegrationStatus, error) {
	for _, n := range names {
		if err := CheckIntegration(c.cfg, n); err != nil {
			return nil, err
		}
	}
	var ins []config.Integration
	for _, in := range c.cfg.Integrations {
		if len(names) == 0 || slices.Contains(names, in.Name) {
			ins = append(ins, in)
		}
	}
	all := make([]string, len(ins))
	for i, in := range ins {
		all[i] = in.Name
	}
	sts, err := c.reg.All(ctx, all)
	if err != nil {
		return nil, err
	}
	out := make([]IntegrationStatus, 0, len(ins))
	now := c.now()
	for _, in := range ins {
		att, fail, err := c.ledger.Ratio(ctx, in.Name, now)
		if err != nil {
			return nil, err
		}
		out = append(out, IntegrationStatus{Status: sts[in.Name], ConfigEnabled: in.Enabled, Attempts: att, Failures: fail})
	}
	return out, nil
}

// afterEnable is what follows an operator's enable, whoever made it (the
// admin API through Service.onEnable, or Control.Enable): the integration's
// health ledger starts again (DESIGN §5), and its parked entries are made due
// now (queue nil: no parking), so they do not sit out their hold. It returns
// how many entries it made due.
func afterEnable(ctx context.Context, ledger *health.Ledger, queue *retry.Queue, name string, now time.Time) (int, error) {
	if err := ledger.Reset(ctx, name); err != nil {
		return 0, err
	}
	if queue == nil {
		return 0, nil
	}
	return queue.Wake(ctx, name, now)
}

// adminHealth is an integration's latest outcomes, 12-hour ledger and last
// hour's deliveries, for the admin API.
func (s *Service) adminHealth(ctx context.Context, name string) (admin.Health, error) {
	l := s.health.Ledger()
	last, err := l.Last(ctx, name)
	if err != nil {
		return admin.Health{}, err
	}
	now := s.now()
	c, err := l.Counts(ctx, name, now)
	if err != nil {
		return admin.Health{}, err
	}
	return admin.Health{Last: last, Ledger: admin.Ledger{Attempts: c.Attempts, Failures: c.Failures, CustomerFailures: c.CustomerFailures},
		Delivered1h: last.DeliveredInHour(now)}, nil
}
