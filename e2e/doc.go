// Package e2e tests the example application (package app of the _example
// module) in a real browser: Debian's Chromium, driven through the DevTools
// protocol by chromedp, against the example's router served by the tests
// on loopback ports. It checks what only a browser shows: the cookie's
// attributes as the browser stored them, that HttpOnly hides the cookie
// from scripts, what SameSite and the CSRF token do to a form posted from
// another origin, the back button after sign-out, devices in separate
// cookie jars, and two instances sharing one store.
//
// Run it with `make e2e` from the repository root, which installs Chromium
// when it is missing, or with `go test ./...` in this directory. Without
// /usr/bin/chromium the tests skip, except under CI=true, where they fail.
// On failure, each open tab's page is saved to screenshots/. With
// E2E_SCREENSHOT=path, the suite writes a screenshot of the profile page
// there (`E2E_SCREENSHOT=../docs/profile.png` refreshes the README's).
package e2e
