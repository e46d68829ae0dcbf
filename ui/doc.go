// Package ui is hitship's console: one page (plain HTML, CSS and
// JavaScript, embedded in the binary, no build step) that the admin
// listener serves under /ui/ beside the admin API it calls.
//
// # What it shows and does
//
// The integrations with their destination, format, state (enabled,
// disabled, auto-disabled with the reason, since when, by whom), last
// success, last error in plain words with its class, 12-hour success ratio
// and the objects and hits delivered in the last hour, filtered by state
// and searched by name or client; the setup dialog of the product's
// documentation (name, client, region, bucket, prefix, format, compression,
// a role ARN with the account ID, external ID and ready-to-paste policies
// of GET /v1/clients/{id}/onboarding, or an access key; Test integration;
// Add integration, or Save with If-Match); disable with a reason, enable,
// delete, each confirmed; and an integration's event history.
//
// # Guarantees
//
//   - The page holds no data of its own: everything it shows comes from
//     /v1/ with the token the operator typed, sent as "Authorization:
//     Bearer", kept in sessionStorage (gone with the tab), never in a URL.
//     A 401 forgets the token and shows the sign-in form, never data.
//   - Secrets go one way: an access key's secret is sent in a create or
//     replace and never shown again (the API never answers it); the form
//     field is cleared when the dialog closes.
//   - Every answer carries a strict Content-Security-Policy (only this
//     origin's script, style, images and API; no inline script or style,
//     no framing, no plugins, no form posts, no base URI), nosniff,
//     no referrer and same-origin opener and resource policies: the page
//     makes no third-party request.
//   - Only GET and HEAD; unknown paths are 404. Assets carry an ETag of
//     their content and must be revalidated (Cache-Control: no-cache), so a
//     new binary's console is the one loaded.
//   - Keyboard and screen readers: every control has a label, the dialogs
//     are modal <dialog>s that keep the focus inside and give it back to the
//     control that opened them, tabs follow the WAI-ARIA tabs pattern,
//     problems are tied to their fields (aria-invalid, aria-describedby)
//     and answers are announced by live regions.
//
// The handler is safe for concurrent use.
package ui
