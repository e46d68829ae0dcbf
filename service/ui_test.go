package service_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"hitship/config"
	"hitship/integrations/registry"
	"hitship/internal/testenv"
	s3sink "hitship/sink/s3"
)

// chromiumPath returns Debian's chromium (or HITSHIP_CHROMIUM), or skips
// the test when there is none; under CI=true it fails instead: .ci/run
// installs chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HITSHIP_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found; .ci/run installs it (apt-get install --no-install-recommends chromium)")
	}
	t.Skip("chromium not installed (apt-get install --no-install-recommends chromium): the console's browser test needs it")
	return ""
}

// browser is one headless Chromium tab on the console, with what it saw:
// every request's URL, and every script error, CSP violation or console
// error.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	requests []string
	problems []string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900), // a laptop's screen
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t, base: base}
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithListener(b.saw))
	t.Cleanup(func() { cancelC(); cancelA() })
	b.ctx = ctx
	enable := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, cdplog.Enable, cdp.Empty{})
		return err
	})
	if err := chromedp.Do(ctx, enable); err != nil { // the first Run starts the browser: no timeout
		t.Fatal(err)
	}
	return b
}

// saw records what the page did (it runs on the tab's reader: no commands).
func (b *browser) saw(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.problems = append(b.problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
	case *cdplog.EventEntryAdded:
		// An error answer of the API (400 problems, 401, 422) is logged as a
		// network error; the console shows those answers on purpose.
		if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
			b.problems = append(b.problems, "console: "+ev.Entry.Text)
		}
	}
}

func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value into out
// (nil: ignored).
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.t.Fatalf("evaluating %s: %v (%s)", expr, err, raw)
		}
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.eval(fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, sel), &s)
	return strings.Join(strings.Fields(s), " ")
}

// waitJS waits until a JavaScript expression is true.
func (b *browser) waitJS(timeout time.Duration, what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		b.eval("!!("+expr+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var page string
			b.eval(`document.querySelector("main").innerText + "\n" + [...document.querySelectorAll("dialog[open]")].map(d => d.innerText).join("\n")`, &page)
			b.t.Fatalf("%s: not within %v; the page shows:\n%s", what, timeout, page)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// typeInto clears a field and types text into it, as a person would.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.focus(); e.value = ""; e.dispatchEvent(new Event("input", {bubbles: true})); return true })()`, sel), nil)
	if text != "" {
		b.run("typing into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text))
	}
}

// choose selects an option of a <select>, as a person would.
func (b *browser) choose(sel, value string) {
	b.t.Helper()
	var ok bool
	b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.focus(); e.value = %q; e.dispatchEvent(new Event("change", {bubbles: true})); return e.value === %q })()`, sel, value, value), &ok)
	if !ok {
		b.t.Fatalf("%s has no option %q", sel, value)
	}
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.run("clicking "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// rows names the integrations the list shows, in its order.
func (b *browser) rows() string {
	b.t.Helper()
	var names []string
	b.eval(`[...document.querySelectorAll("#rows tr")].map(r => r.dataset.name)`, &names)
	return strings.Join(names, ",")
}

// filtered names the rows shown for a state filter and a search, then
// clears both.
func (b *browser) filtered(state, search string) string {
	b.t.Helper()
	b.choose("#state-filter", state)
	b.typeInto("#search", search)
	got := b.rows()
	b.choose("#state-filter", "")
	b.typeInto("#search", "")
	return got
}

func (b *browser) focused() string {
	b.t.Helper()
	var id string
	b.eval(`document.activeElement ? document.activeElement.id : ""`, &id)
	return id
}

// screenshot writes the page, or the element sel, as NAME.png into
// $HITSHIP_UI_SCREENSHOTS when it is set (make screenshots).
func (b *browser) screenshot(name, sel string) {
	b.t.Helper()
	dir := os.Getenv("HITSHIP_UI_SCREENSHOTS")
	if dir == "" {
		return
	}
	b.eval(`document.activeElement && document.activeElement.blur(), true`, nil) // no focus ring in the picture
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	var png []byte
	var err error
	if sel == "" {
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	} else {
		png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	}
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// rowSel selects a cell (td class) of an integration's row.
func rowSel(name, cell string) string {
	return fmt.Sprintf(`#rows tr[data-name=%q] td.%s`, name, cell)
}

// TestConsole drives the console in headless Chromium against a running
// hitship (embedded Kafka, S3 behind an authenticating proxy and a fake STS,
// Redis): sign-in (a wrong token shows no data), the setup dialog with its
// onboarding values and field problems, Test integration for a missing and
// a good bucket, a role integration and an access-key one added through the
// dialog, the first object arriving and the row showing it, disable with a
// reason, the history, enable, edit (PUT with If-Match), filter and search,
// delete, and a token that stops working. The page makes no request to
// another origin and raises no script error or CSP violation.
func TestConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	chromiumPath(t)
	const (
		token     = "console-admin-token-7c1d5e"
		roleARN   = "arn:aws:iam::444455556666:role/hitship-writer"
		keyID     = "AKIACONSOLETEST00001"
		keySecret = "console-key-secret-9f3b2a71c4e8d6"
		extSecret = "console-extid-secret-0123456789abcdef"
	)
	t.Setenv("HITSHIP_TEST_ADMIN_TOKEN", token)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("HITSHIP_TEST_KEYS", "k1:"+base64.StdEncoding.EncodeToString(key))
	t.Setenv("HITSHIP_TEST_EXTID", extSecret)

	e := newEnv(t, 1, "b-file", "b-role", "b-key")
	sts, authS3 := e.fakeAWS(t)
	sts.Trust(roleARN, s3sink.ExternalID([]byte(extSecret), 2))
	authS3.AllowRole("b-role", roleARN)
	authS3.AllowRole("b-gone", roleARN) // allowed, but no such bucket upstream
	const brokenARN = "arn:aws:iam::777788889999:role/hitship-writer"
	sts.Trust(brokenARN, s3sink.ExternalID([]byte(extSecret), 4))
	authS3.AllowRole("b-gone", brokenARN)
	authS3.AllowKey("b-key", keyID, keySecret)
	authS3.AllowKey("b-file", "TESTACCESSKEY0001", testSecret)

	cfg := e.config(t, integ("file-acme", 1, "b-file", "ndjson"))
	cfg.S3.Endpoint = authS3.URL() // API integrations name no endpoint: they go through the proxy
	cfg.Window.Size, cfg.Window.Grace, cfg.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
	cfg.HTTP.AdminTokenEnv = "HITSHIP_TEST_ADMIN_TOKEN"
	cfg.Secrets.KeysEnv = "HITSHIP_TEST_KEYS"
	cfg.ExternalID = config.ExternalID{SecretEnv: "HITSHIP_TEST_EXTID", AccountID: "111122223333", STSEndpoint: sts.URL()}
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatal(config.AsError(ps))
	}
	svc, reg := startService(t, "console", cfg)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	waitFor(t, 30*time.Second, "the member owns its partition", func() bool {
		return metricSum(t, reg, "hitship_kafka_assigned_partitions") == 1
	})
	// Past the first owner's read mark (consumer/membership.go), so that an
	// integration created now routes from the next record.
	e.produceHits(t, 300, []int64{1}, time.Now().Add(-30*time.Second), 10*time.Second, 1, 3)
	waitFor(t, 60*time.Second, "the warm-up read", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })

	b := newBrowser(t, srv.URL)

	// No token: the sign-in form, no data.
	b.run("open the console", chromedp.Navigate(srv.URL+"/ui/"))
	b.waitJS(10*time.Second, "the sign-in form", `!document.getElementById("login").hidden`)
	if b.focused() != "token" {
		t.Errorf("focus on %q, want the token field", b.focused())
	}
	checkNoData := func(when string) {
		t.Helper()
		var rows int
		b.eval(`document.querySelectorAll("#rows tr").length`, &rows)
		var html string
		b.eval(`document.documentElement.outerHTML`, &html)
		if rows != 0 || strings.Contains(html, "file-acme") || strings.Contains(html, "b-file") {
			t.Errorf("%s: the page shows data without a valid token (%d rows)", when, rows)
		}
	}
	checkNoData("no token")
	b.typeInto("#token", "not-the-token")
	b.run("sign in", chromedp.SendKeys(chromedp.CSS("#token"), "\r"))
	b.waitJS(10*time.Second, "a wrong token refused", `document.getElementById("login-why").textContent.includes("refused")`)
	checkNoData("wrong token")
	b.typeInto("#token", token)
	b.run("sign in", chromedp.SendKeys(chromedp.CSS("#token"), "\r"))
	b.waitJS(10*time.Second, "the list", `document.querySelector('#rows tr[data-name="file-acme"]')`)
	if got := b.text(rowSel("file-acme", "dest")); !strings.Contains(got, "s3://b-file/hits/") {
		t.Errorf("file-acme's destination = %q", got)
	}
	var stored string
	b.eval(`sessionStorage.getItem("hitship.adminToken") + "|" + location.href`, &stored)
	if stored != token+"|"+srv.URL+"/ui/" {
		t.Errorf("sessionStorage token and URL = %q: want the token kept in the tab, not in the URL", stored)
	}

	// The dialog: modal, focus inside, onboarding values, problems beside
	// their fields.
	b.click("#add")
	b.waitJS(5*time.Second, "the dialog open", `document.getElementById("editor").open`)
	if b.focused() != "f-name" {
		t.Errorf("dialog opened with focus on %q, want the name", b.focused())
	}
	b.typeInto("#f-name", "acme-role")
	b.typeInto("#f-client", "2")
	b.typeInto("#f-region", testenv.S3Region)
	b.typeInto("#f-bucket", "Not_A_Bucket")
	wantExt := s3sink.ExternalID([]byte(extSecret), 2)
	b.waitJS(10*time.Second, "the onboarding values", fmt.Sprintf(`document.getElementById("o-external").textContent === %q && document.getElementById("o-account").textContent === "111122223333"`, wantExt))
	var perm string
	b.eval(`document.getElementById("o-permission").textContent`, &perm)
	var policy map[string]any
	if err := json.Unmarshal([]byte(perm), &policy); err != nil || !strings.Contains(perm, "s3:PutObject") {
		t.Errorf("permission policy shown = %q (%v), want ready-to-paste JSON granting s3:PutObject", perm, err)
	}
	b.typeInto("#f-role", roleARN)
	b.click("#save")
	b.waitJS(10*time.Second, "the bucket's problem beside it", `document.getElementById("f-bucket-err").textContent !== "" && document.getElementById("f-bucket").getAttribute("aria-invalid") === "true"`)
	if b.focused() != "f-bucket" {
		t.Errorf("focus on %q after the problems, want the bucket field", b.focused())
	}
	// Keyboard: Tab from the last control comes back to the first (the
	// dialog keeps the focus); Escape is not used here, Cancel is.
	var inside bool
	b.run("tab around", chromedp.Focus(chromedp.CSS("#save")), chromedp.KeyEvent("\t"))
	b.eval(`document.getElementById("editor").contains(document.activeElement)`, &inside)
	if !inside {
		t.Errorf("Tab from the last button left the dialog (focus on %q)", b.focused())
	}

	// Test integration: a bucket that does not exist, then the right one.
	b.typeInto("#f-bucket", "b-gone")
	b.click("#test")
	b.waitJS(20*time.Second, "the missing bucket's answer", `document.getElementById("test-result").classList.contains("bad")`)
	if msg := b.text("#test-result"); !strings.Contains(msg, "b-gone does not exist") || !strings.Contains(msg, "Fix:") {
		t.Errorf("test answer for a missing bucket = %q", msg)
	}
	if b.text("#f-bucket-err") != "" {
		t.Errorf("the old problem stayed beside the bucket: %q", b.text("#f-bucket-err"))
	}
	b.typeInto("#f-bucket", "b-role")
	b.click("#test")
	b.waitJS(20*time.Second, "the good bucket's answer", `document.getElementById("test-result").classList.contains("ok")`)
	b.screenshot("console-dialog", "#editor")
	b.click("#save")
	b.waitJS(20*time.Second, "the role integration added", `!document.getElementById("editor").open && document.querySelector('#rows tr[data-name="acme-role"]')`)
	if b.focused() != "add" {
		t.Errorf("focus after the dialog closed on %q, want the Add button that opened it", b.focused())
	}

	// The access-key tab, reached with the keyboard.
	b.click("#add")
	b.typeInto("#f-name", "globex-key")
	b.typeInto("#f-client", "3")
	b.typeInto("#f-region", testenv.S3Region)
	b.typeInto("#f-bucket", "b-key")
	b.choose("#f-format", "json")
	b.run("arrow to the access key tab", chromedp.Focus(chromedp.CSS("#tab-role")), chromedp.KeyEvent(kb.ArrowRight))
	b.waitJS(5*time.Second, "the access key tab", `document.getElementById("tab-key").getAttribute("aria-selected") === "true" && !document.getElementById("panel-key").hidden && document.getElementById("panel-role").hidden`)
	if b.focused() != "tab-key" {
		t.Errorf("focus on %q after ArrowRight, want the access key tab", b.focused())
	}
	b.typeInto("#f-keyid", keyID)
	b.typeInto("#f-secret", keySecret)
	b.click("#test")
	b.waitJS(20*time.Second, "the access key's answer", `document.getElementById("test-result").classList.contains("ok")`)
	b.click("#save")
	b.waitJS(20*time.Second, "the key integration added", `!document.getElementById("editor").open && document.querySelector('#rows tr[data-name="globex-key"]')`)
	var html string
	b.eval(`document.documentElement.outerHTML`, &html)
	if strings.Contains(html, keySecret) {
		t.Error("the secret access key is in the page after saving")
	}

	// Add refused by its failing test, then saved anyway: its deliveries
	// fail, and its row says why.
	b.click("#add")
	b.typeInto("#f-name", "initech-broken")
	b.typeInto("#f-client", "4")
	b.typeInto("#f-region", testenv.S3Region)
	b.typeInto("#f-bucket", "b-gone")
	b.typeInto("#f-role", brokenARN)
	b.click("#save")
	b.waitJS(20*time.Second, "the refusal with the test's answer", `document.getElementById("test-result").classList.contains("bad") && !document.getElementById("save-anyway").hidden`)
	if msg := b.text("#test-result"); !strings.Contains(msg, "Not saved") || !strings.Contains(msg, "b-gone does not exist") {
		t.Errorf("refusal = %q", msg)
	}
	b.click("#save-anyway")
	b.waitJS(20*time.Second, "the broken integration saved anyway", `!document.getElementById("editor").open && document.querySelector('#rows tr[data-name="initech-broken"]')`)

	// The first objects arrive and the rows say so.
	e.produceHits(t, 60, []int64{2, 3, 4}, time.Now().Add(-15*time.Second), 10*time.Second, 1, 11)
	waitFor(t, 60*time.Second, "the first objects in both buckets", func() bool {
		delivered := func(bucket string) bool {
			return slices.ContainsFunc(e.objects(t, bucket), func(o object) bool { return !strings.Contains(o.key, "_test.") })
		}
		return delivered("b-role") && delivered("b-key")
	})
	hits := 0 // in the delivered objects, not the test writes' (wallarm_hits_{now}_test.json)
	for _, o := range e.objects(t, "b-role") {
		if !strings.Contains(o.key, "_test.") {
			hits += len(o.records)
		}
	}
	b.waitJS(20*time.Second, "acme-role's row showing its delivery", fmt.Sprintf(
		`(() => { const r = document.querySelector('#rows tr[data-name="acme-role"]'); return r && !r.querySelector("td.success").textContent.includes("never") && r.querySelector("td.delivered .objects").textContent !== "0 objects" && r.querySelector("td.delivered .hits").textContent === "%d hits" })()`, hits))
	if got := b.text(rowSel("acme-role", "num")); !strings.Contains(got, "100%") {
		t.Errorf("acme-role's 12-hour success = %q, want 100%%", got)
	}
	b.waitJS(30*time.Second, "initech-broken's row showing its failure", `document.querySelector('#rows tr[data-name="initech-broken"] td.err-cell').textContent.includes("b-gone does not exist")`)
	if got := b.text(rowSel("initech-broken", "err-cell")); !strings.Contains(got, "customer's side") || !strings.Contains(got, "Fix:") {
		t.Errorf("initech-broken's last error = %q, want the customer's side and the fix", got)
	}
	if got := b.text(rowSel("initech-broken", "success")); got != "never" {
		t.Errorf("initech-broken's last success = %q, want never", got)
	}
	if got := b.filtered("failing", ""); got != "initech-broken" {
		t.Errorf("filter failing shows %q", got)
	}
	// The health check's auto-disable (as health.Ledger makes it after
	// hours of failures): the row says so, why and since when, and offers
	// to re-enable.
	st, err := registry.New(e.redis.Client(), cfg.Redis.KeyPrefix, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	const why = "60% of 20 attempts in 12 h failed on the customer's side: The bucket b-gone does not exist."
	if _, changed, err := st.AutoDisable(t.Context(), "initech-broken", why, "health"); err != nil || !changed {
		t.Fatalf("auto-disable: %v, changed %v", err, changed)
	}
	b.waitJS(15*time.Second, "initech-broken auto-disabled", `document.querySelector('#rows tr[data-name="initech-broken"]').dataset.state === "auto-disabled" && document.querySelector('button[data-action="enable"][data-name="initech-broken"]')`)
	if got := b.text(rowSel("initech-broken", "state")); !strings.Contains(got, "Auto-disabled") || !strings.Contains(got, why) || !strings.Contains(got, "since") {
		t.Errorf("initech-broken's state cell = %q", got)
	}
	if got := b.text(`button[data-action="enable"][data-name="initech-broken"]`); got != "Re-enable" {
		t.Errorf("the auto-disabled row's button says %q", got)
	}
	b.screenshot("console-list", "")
	b.click(`button[data-action="enable"][data-name="initech-broken"]`)
	if got := b.text("#confirm-text"); !strings.Contains(got, why) {
		t.Errorf("the re-enable confirmation = %q, want the reason it was switched off", got)
	}
	b.click("#confirm-ok")
	b.waitJS(10*time.Second, "initech-broken re-enabled", `document.querySelector('#rows tr[data-name="initech-broken"]').dataset.state === "enabled"`)

	// Disable with a reason, seen in the row and the history; enable.
	b.click(`button[data-action="disable"][data-name="acme-role"]`)
	b.waitJS(5*time.Second, "the confirmation", `document.getElementById("confirm").open`)
	if b.focused() != "reason" {
		t.Errorf("confirmation opened with focus on %q, want the reason", b.focused())
	}
	b.typeInto("#reason", "customer rotates the role")
	b.click("#confirm-ok")
	b.waitJS(10*time.Second, "acme-role disabled", `document.querySelector('#rows tr[data-name="acme-role"]').dataset.state === "disabled"`)
	if got := b.text(rowSel("acme-role", "state")); !strings.Contains(got, "Disabled") || !strings.Contains(got, "customer rotates the role") || !strings.Contains(got, "admin-api@") {
		t.Errorf("acme-role's state cell = %q", got)
	}
	for _, f := range []struct{ state, search, want string }{
		{"disabled", "", "acme-role"},
		{"", "3", "globex-key"},
		{"", "acme", "file-acme,acme-role"},
		{"enabled", "acme", "file-acme"},
	} {
		if got := b.filtered(f.state, f.search); got != f.want {
			t.Errorf("state %q, search %q shows %q, want %q", f.state, f.search, got, f.want)
		}
	}

	b.click(`button[data-action="history"][data-name="acme-role"]`)
	b.waitJS(10*time.Second, "the history", `document.querySelectorAll("#history-list li").length >= 2`)
	if got := b.text("#history-list"); !strings.Contains(got, "Disabled") || !strings.Contains(got, "why: customer rotates the role") || !strings.Contains(got, "Added") {
		t.Errorf("history = %q, want the disable with its reason and the creation", got)
	}
	b.click("#history-close")
	b.click(`button[data-action="enable"][data-name="acme-role"]`)
	b.click("#confirm-ok")
	b.waitJS(10*time.Second, "acme-role enabled", `document.querySelector('#rows tr[data-name="acme-role"]').dataset.state === "enabled"`)

	// Edit: PUT with If-Match; the secret is kept when left empty.
	b.click(`button[data-action="edit"][data-name="globex-key"]`)
	b.waitJS(10*time.Second, "the edit dialog", `document.getElementById("editor").open && document.getElementById("f-keyid").value === "`+keyID+`"`)
	var secretShown string
	b.eval(`document.getElementById("f-secret").value`, &secretShown)
	if secretShown != "" {
		t.Error("the edit dialog shows the secret")
	}
	b.typeInto("#f-prefix", "edited/")
	b.click("#save")
	b.waitJS(20*time.Second, "the edit saved", `!document.getElementById("editor").open && document.querySelector('#rows tr[data-name="globex-key"] td.dest').textContent.includes("s3://b-key/edited/")`)

	// Delete, confirmed.
	b.click(`button[data-action="delete"][data-name="globex-key"]`)
	b.click("#confirm-ok")
	b.waitJS(20*time.Second, "globex-key deleted", `!document.querySelector('#rows tr[data-name="globex-key"]')`)

	// A token that stops working (revoked, or a restart with another one):
	// the next refresh shows the sign-in form and drops the data.
	b.eval(`sessionStorage.setItem("hitship.adminToken", "expired-token"), true`, nil)
	b.waitJS(15*time.Second, "the sign-in form after the token stopped working", `!document.getElementById("login").hidden && document.getElementById("console").hidden`)
	checkNoData("expired token")
	// A new visit without a token: the sign-in form.
	b.eval(`sessionStorage.clear(), true`, nil)
	b.run("reload", chromedp.Reload())
	b.waitJS(10*time.Second, "the sign-in form", `!document.getElementById("login").hidden`)
	checkNoData("reloaded without a token")

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, u := range b.requests {
		if !strings.HasPrefix(u, srv.URL+"/") {
			t.Errorf("the page requested %s, outside hitship", u)
		}
		if strings.Contains(u, token) {
			t.Errorf("the token is in a URL: %s", u)
		}
	}
	for _, p := range b.problems {
		t.Errorf("browser: %s", p)
	}
}
