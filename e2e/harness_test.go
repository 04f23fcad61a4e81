package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"
)

// chromiumPath is Debian's Chromium (the package "chromium").
const chromiumPath = "/usr/bin/chromium"

// actionTimeout bounds each browser action; a page of the example loads in
// milliseconds.
const actionTimeout = 15 * time.Second

// screenshotDir receives a screenshot of each open tab when a test fails.
const screenshotDir = "screenshots"

// TestMain gives the run its own HOME and TMPDIR, inherited by Chromium,
// which writes under $HOME/.config and leaves a folder in $TMPDIR at each
// launch, and removes them at the end.
func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ginsession-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, v := range []string{"HOME", "TMPDIR"} {
		d := filepath.Join(dir, strings.ToLower(v))
		if err := os.Mkdir(d, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		os.Setenv(v, d)
	}
	return m.Run()
}

// requireChromium skips the test when Chromium is not installed, or fails
// it under CI=true: a browser suite that silently skips in CI proves
// nothing.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("%s not installed (%v): run `make e2e` from the repository root, which installs Debian's chromium package", chromiumPath, err)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s; CI=true: browser tests must not be skipped in CI", msg)
		}
		t.Skip(msg)
	}
}

// browser is one Chromium process for one test, with a fresh profile.
type browser struct {
	root context.Context // the browser's first tab, which starts it
}

// newBrowser starts Chromium headless for the test; the test's cleanup
// stops it.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	requireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root
		chromedp.NoFirstRun,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	root, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancel)
	// The first action starts the browser; its context has no deadline, as
	// the browser lives as long as it does.
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return &browser{root: root}
}

// tab is one device: a tab in a browser context of its own, so with its
// own cookie jar. Its methods fail the test t on error.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
}

// device opens a tab in a new browser context, closed when the test t
// ends. When t fails, the tab's page is saved to screenshots/.
func (b *browser) device(t *testing.T, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: open tab: %v", name, err)
	}
	tb := &tab{t: t, name: name, ctx: ctx}
	t.Cleanup(tb.screenshotOnFailure) // runs before cancel
	return tb
}

// in returns the tab for use in subtest t.
func (tb *tab) in(t *testing.T) *tab {
	c := *tb
	c.t = t
	return &c
}

// timeout returns the tab's context bounded for one action.
func (tb *tab) timeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(tb.ctx, actionTimeout)
}

// do runs actions that return nothing, failing the test on error.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := tb.timeout()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %s: %v", tb.name, what, err)
	}
}

// get runs one action and returns its value, failing the test on error.
func get[T any](tb *tab, what string, a chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := tb.timeout()
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.t.Fatalf("%s: %s: %v", tb.name, what, err)
	}
	return v
}

// open navigates to url and returns the response of the document it ends
// on, after redirects.
func (tb *tab) open(url string) *network.Response {
	tb.t.Helper()
	return get(tb, "open "+url, chromedp.NavigateResponse(url))
}

// click clicks the element sel, which submits a form, and returns the
// response of the document the navigation ends on, after redirects.
func (tb *tab) click(sel string) *network.Response {
	tb.t.Helper()
	ctx, cancel := tb.timeout()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("%s: click %s: %v", tb.name, sel, err)
	}
	return resp
}

// text returns the visible text of the first element matching sel,
// waiting for it to appear.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return strings.TrimSpace(get(tb, "text of "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// attr returns an attribute of the first element matching sel.
func (tb *tab) attr(sel, name string) string {
	tb.t.Helper()
	res := get(tb, "attribute "+name+" of "+sel, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if !res.Exists {
		tb.t.Fatalf("%s: %s has no attribute %s", tb.name, sel, name)
	}
	return res.Value
}

// page returns the page's URL and all its visible text.
func (tb *tab) page() (url, text string) {
	tb.t.Helper()
	url = get(tb, "location", chromedp.Location())
	text = get(tb, "page text", chromedp.Evaluate[string](`document.body.innerText`))
	return url, text
}

// count returns the number of elements matching sel, without waiting.
func (tb *tab) count(sel string) int {
	tb.t.Helper()
	return get(tb, "count "+sel, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
}

// cookie returns the cookie name that the browser holds for url, as the
// DevTools protocol reports it, or nil.
func (tb *tab) cookie(url, name string) *network.Cookie {
	tb.t.Helper()
	ctx, cancel := tb.timeout()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		tb.t.Fatalf("%s: get cookies: %v", tb.name, err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// startNavigation starts loading url and returns at once, without waiting
// for the page: for pages that navigate on by themselves.
func (tb *tab) startNavigation(url string) {
	tb.t.Helper()
	ctx, cancel := tb.timeout()
	defer cancel()
	res, err := chromedp.Call(ctx, page.Navigate, page.NavigateParams{URL: url})
	if err == nil && res.ErrorText != "" {
		err = errors.New(res.ErrorText)
	}
	if err != nil {
		tb.t.Fatalf("%s: navigate to %s: %v", tb.name, url, err)
	}
}

// waitFor polls the page until the JavaScript expression cond is true in a
// fully loaded document, across navigations.
func (tb *tab) waitFor(cond string) {
	tb.t.Helper()
	expr := `document.readyState === "complete" && (` + cond + `)`
	deadline := time.Now().Add(actionTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tb.ctx, time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		lastErr = err // a navigation in progress destroys the context
		time.Sleep(50 * time.Millisecond)
	}
	tb.t.Fatalf("%s: waiting for %s: timed out (last error: %v)", tb.name, cond, lastErr)
}

// screenshot returns a PNG of the element sel.
func (tb *tab) screenshot(sel string) []byte {
	tb.t.Helper()
	return get(tb, "screenshot "+sel, chromedp.Screenshot(chromedp.CSS(sel)))
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// screenshotOnFailure saves the tab's page to screenshots/ if the test
// failed.
func (tb *tab) screenshotOnFailure() {
	if !tb.t.Failed() {
		return
	}
	ctx, cancel := tb.timeout()
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Logf("%s: no screenshot: %v", tb.name, err)
		return
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		tb.t.Logf("%s: no screenshot: %v", tb.name, err)
		return
	}
	file := filepath.Join(screenshotDir, unsafeName.ReplaceAllString(tb.t.Name()+"-"+tb.name, "_")+".png")
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		tb.t.Logf("%s: no screenshot: %v", tb.name, err)
		return
	}
	url, _ := chromedp.Run(ctx, chromedp.Location())
	tb.t.Logf("%s: screenshot of %s in %s", tb.name, url, file)
}
