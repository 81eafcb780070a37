package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/devprovider"
)

// The first five minutes with the demo page: whatever a control does shows
// where the person is (the dock at the top of the viewport), each control
// is followed by an API call so cause and effect sit together on the
// timeline, a reconnect keeps the story, and the timeline's labels never
// overlap.

// viewports the page is checked at: a laptop and a phone.
var viewports = []struct {
	name string
	w, h int64
}{
	{"1280x900", 1280, 900},
	{"375x800", 375, 800},
}

// inView is 2 s: the time a consequence may take to show.
const inView = 2 * time.Second

// setViewport makes the tab's layout viewport w×h CSS pixels.
func (p *page) setViewport(w, h int64) {
	p.t.Helper()
	step, done := context.WithTimeout(p.tab, stepTimeout)
	defer done()
	if err := chromedp.Do(step, chromedp.EmulateViewport(w, h)); err != nil {
		p.t.Fatalf("setting the viewport to %dx%d: %v", w, h, err)
	}
}

// inViewportJS is true when the element is shown, entirely inside the
// viewport, and not covered at its center by anything but itself or its
// descendants.
func inViewportJS(sel string) string {
	return `(() => { const e = document.querySelector(` + strconv.Quote(sel) + `);
		if (!e || e.hidden || e.getClientRects().length === 0) return false;
		const r = e.getBoundingClientRect();
		if (r.width <= 0 || r.height <= 0 || r.top < -0.5 || r.left < -0.5 ||
			r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5) return false;
		const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
		return !!hit && (hit === e || e.contains(hit));
	})()`
}

// box describes where an element is, for a failure message.
func (p *page) box(sel string) string {
	v, err := tryEval[string](p.tab, `(() => { const e = document.querySelector(`+strconv.Quote(sel)+`);
		if (!e) return "missing";
		const r = e.getBoundingClientRect();
		return "hidden=" + e.hidden + " box=" + [r.left, r.top, r.right, r.bottom].map(Math.round).join(",") +
			" viewport=" + innerWidth + "x" + innerHeight + " scrollY=" + Math.round(scrollY); })()`)
	if err != nil {
		return err.Error()
	}
	return v
}

// waitInView waits up to within for sel to be in the viewport, and
// returns how long that took.
func (p *page) waitInView(sel string, within time.Duration, what string) time.Duration {
	p.t.Helper()
	start := time.Now()
	for {
		if ok, err := tryEval[bool](p.tab, inViewportJS(sel)); err == nil && ok {
			return time.Since(start)
		}
		if time.Since(start) > within {
			p.t.Fatalf("%s (%s) not in the viewport within %v: %s\npage: %s", what, sel, within, p.box(sel), p.describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventCount counts the page's logged events of a kind.
func (p *page) eventCount(kind string) int {
	p.t.Helper()
	return evalJS[int](p, `(window.demoEvents || []).filter((e) => e.kind === `+strconv.Quote(kind)+`).length`)
}

// scrollToControls scrolls the page so that the list of controls is in
// the middle of the viewport, as a person does to press them.
func (p *page) scrollToControls() {
	p.t.Helper()
	evalJS[bool](p, `(() => { document.querySelector(".controls").scrollIntoView({ block: "center" }); return true; })()`)
	time.Sleep(100 * time.Millisecond) // the scroll event runs
}

// pressControl clicks a control of the "Provoke a failure" card, scrolling
// it into view first if need be (as a person would), and waits until the
// page logged it. The top of the page (the heading, where the status used
// to be) must be out of view: the page is scrolled down to the controls.
// It returns when the click was made.
func (p *page) pressControl(id string) time.Time {
	p.t.Helper()
	n := p.eventCount("control")
	evalJS[bool](p, `(() => { const e = document.querySelector("#`+id+`");
		const dock = document.querySelector("#dock"), r = e.getBoundingClientRect();
		const top = dock ? dock.getBoundingClientRect().bottom : 0;
		if (r.top < top || r.bottom > innerHeight) e.scrollIntoView({ block: "center" });
		return true; })()`)
	time.Sleep(50 * time.Millisecond)
	if ok := evalJS[bool](p, inViewportJS("#"+id)); !ok {
		p.t.Fatalf("#%s is not in the viewport to be pressed: %s", id, p.box("#"+id))
	}
	if top := evalJS[float64](p, `document.querySelector("h1").getBoundingClientRect().bottom`); top > 0 {
		p.t.Fatalf("at the controls, the heading still ends %.0f px into the viewport: the page is not scrolled down", top)
	}
	clicked := time.Now()
	p.click("#" + id)
	p.waitFor(`(window.demoEvents || []).filter((e) => e.kind === "control").length > `+strconv.Itoa(n), inView, "#"+id+" to be logged")
	return clicked
}

// waitInViewSince is waitInView with the 2 s counted from since (a click).
func (p *page) waitInViewSince(since time.Time, sel, what string) time.Duration {
	p.t.Helper()
	p.waitInView(sel, max(0, inView-time.Since(since)), what)
	return time.Since(since)
}

// apiAfterControlJS is true once an API call is logged after the last control.
const apiAfterControlJS = `(() => { const ev = window.demoEvents || [];
	const c = ev.map((e) => e.kind).lastIndexOf("control");
	return c >= 0 && ev.slice(c + 1).some((e) => e.kind === "api-ok" || e.kind === "api-error"); })()`

// TestConsequencesInView: at 1280x900 and 375x800, scrolled down to the
// controls, each control's consequence appears in the viewport within 2 s
// of pressing it (the banner, the degraded notice, the recovered notice,
// the status), with an API call right after the control; the banner's
// Reconnect is the only Connect-like button and is in reach; after the
// reconnect (a full-page redirect) the timeline and the log still hold
// the earlier events, with the reconnect marked. Screenshots of the page
// after the story go to /tmp/tether-demo-screenshot-<viewport>.png.
func TestConsequencesInView(t *testing.T) {
	for _, vp := range viewports {
		t.Run(vp.name, func(t *testing.T) {
			s := startStack(t, stackOptions{accessTTL: 8 * time.Second, autoApprove: true})
			tab := newTab(t)
			p := &page{t: t, tab: tab, s: s}
			p.setViewport(vp.w, vp.h)
			p = openPage(t, tab, s)
			p.login(false)
			p.waitFor(`window.tether.state().connected`, stepTimeout, "a first token")
			p.scrollToControls()
			p.waitInView("#status", inView, "the status")

			// Expire: the control calls the API; its 401 is retried, and
			// the outcome shows under the control.
			retries := p.eventCount("retry")
			clicked := p.pressControl("ctl-expire")
			p.waitFor(apiAfterControlJS, inView, "an API call right after Expire")
			p.waitFor(`(window.demoEvents || []).filter((e) => e.kind === "retry").length > `+strconv.Itoa(retries), inView, "the 401 + retry")
			p.waitFor(`/retried: 200/.test(document.querySelector("#ctl-status").textContent)`, inView, "the outcome of the call after Expire")
			took := p.waitInViewSince(clicked, "#ctl-status", "the outcome of the call after Expire")
			t.Logf("the outcome of Expire was in view %v after the click", took.Round(time.Millisecond))
			if st := p.read(); st.Status != "connected" || st.Banner || st.Degraded {
				t.Errorf("after Expire: %+v; want connected, no banner, no notice", st)
			}

			// An outage costs nothing while the token is valid: the call
			// after it succeeds. Expire the token: the forced refresh meets
			// the outage and the degraded notice shows, in view.
			p.pressControl("ctl-outage-503")
			if _, err := s.d.Dev.SetOutage(devprovider.Outage503, 6*time.Second, 0); err != nil {
				t.Fatal(err)
			}
			p.waitFor(apiAfterControlJS, inView, "an API call right after the outage started")
			if r := p.read(); r.ResultStatus != "200" {
				t.Errorf("the call after the outage started: %q; want 200 (the token is still valid)", r.ResultStatus)
			}
			clicked = p.pressControl("ctl-expire")
			took = p.waitInViewSince(clicked, "#degraded-notice", "the degraded notice")
			t.Logf("the degraded notice was in view %v after the click on Expire during the outage", took.Round(time.Millisecond))
			p.waitInView("#status", inView, "the status")
			if st := evalJS[string](p, `document.querySelector("#status").dataset.state`); st != "degraded" {
				t.Errorf("#status data-state %q during the outage; want degraded", st)
			}

			// End the outage: the client comes back by itself when its
			// back-off ends, which the BFF's circuit breaker makes the time
			// to its next probe (at most TETHER_PROBE_INTERVAL, 2 s), not
			// the provider's Retry-After; the moment it does, the recovered
			// notice is in view. Target 3 s; the bound leaves room for a
			// loaded machine.
			recovered := p.eventCount("recovered")
			ended := time.Now()
			p.pressControl("ctl-outage-none")
			p.waitFor(`(window.demoEvents || []).filter((e) => e.kind === "recovered").length > `+strconv.Itoa(recovered),
				30*time.Second, "the recovered event")
			if d := time.Since(ended); d > 5*time.Second {
				t.Errorf("the page recovered %v after the outage ended; want about 3 s at most", d.Round(time.Millisecond))
			} else {
				t.Logf("the page recovered %v after the outage ended, with no click", d.Round(time.Millisecond))
			}
			took = p.waitInView("#recovered-notice", inView, "the recovered notice")
			t.Logf("the recovered notice was in view %v after the page saw the recovered event", took.Round(time.Millisecond))
			recoveredSeen := time.Now()
			p.waitFor(`document.querySelector("#degraded-notice").hidden`, inView, "the degraded notice to go")

			// Revoke: the call after it meets the 401, the refresh is
			// refused, and the banner with its Reconnect is in view; no
			// Connect next to it. The recovery's refresh may have been a
			// forced one (the client's retry of the token the API
			// rejected), and a forced refresh within its minimum age
			// (min(TETHER_FORCE_MIN_AGE, a quarter of the token's 8 s) =
			// 2 s) of another is answered with the same token, not sent to
			// the provider (bff/refresh/force.go): a user does not revoke
			// within 2 s of a recovery, so neither does the test.
			time.Sleep(time.Until(recoveredSeen.Add(min(bff.DefaultForceMinAge, 8*time.Second/4))))
			clicked = p.pressControl("ctl-revoke")
			p.waitFor(apiAfterControlJS, inView, "an API call right after Revoke")
			took = p.waitInViewSince(clicked, "#reconnect-banner", "the reconnect banner")
			t.Logf("the reconnect banner was in view %v after the click on Revoke", took.Round(time.Millisecond))
			p.waitInViewSince(clicked, selReconnect, "the banner's Reconnect button")
			if p.visible(selConnect) {
				t.Error("#connect is shown next to the banner's Reconnect; want one button")
			}

			if !p.visible("#status") || evalJS[string](p, `document.querySelector("#status").dataset.state`) != "reconnect" {
				t.Errorf("#status after Revoke: %s; want data-state reconnect", p.describe())
			}
			if text := evalJS[string](p, `document.querySelector("#api-result").textContent`); !strings.Contains(text, "Reconnect") {
				t.Errorf("#api-result after Revoke says %q; want it to say what to do (Reconnect)", text)
			}

			// What the page keeps across the redirect: no token in it.
			stored := evalJS[string](p, `(() => { dispatchEvent(new Event("pagehide"));
				const v = sessionStorage.getItem("tether-demo-history") || ""; sessionStorage.removeItem("tether-demo-history"); return v; })()`)
			if !strings.Contains(stored, `"kind":"retry"`) {
				t.Errorf("the saved story lacks the retry: %.300s", stored)
			}
			for _, n := range append(secrets, devprovider.PrefixAccessToken) {
				if strings.Contains(stored, n) {
					t.Errorf("the saved story holds %q", n)
				}
			}

			before := map[string]int{}
			for _, k := range []string{"retry", "degraded", "recovered", "reconnect", "api-ok"} {
				before[k] = p.marks(k)
				if before[k] == 0 {
					t.Errorf("no %s mark on the timeline before the reconnect", k)
				}
			}
			events := len(p.read().Events)

			// Reconnect: a full-page redirect through the provider.
			p.loginWith(selReconnect, false)
			p.waitFor(`window.tether.state().connected`, stepTimeout, "a token after the reconnect")
			for k, n := range before {
				if got := p.marks(k); got < n {
					t.Errorf("after the reconnect the timeline has %d %s marks; want the %d from before", got, k, n)
				}
			}
			if n := evalJS[int](p, `[...document.querySelectorAll("#timeline .ctl-flag text")].filter((e) => /reconnected/i.test(e.textContent)).length`); n != 1 {
				t.Errorf("%d flags say reconnected; want 1", n)
			}
			if got := evalJS[int](p, `(window.demoEvents || []).filter((e) => e.restored).length`); got < events-2 {
				t.Errorf("%d restored events after the reconnect; want the ~%d from before", got, events)
			}
			if n := p.eventCount("page"); n != 1 {
				t.Errorf("%d page events (the marked return); want 1", n)
			}
			if n := evalJS[int](p, `sessionStorage.length`); n != 0 {
				t.Errorf("sessionStorage holds %d items after the page took the story back; want 0", n)
			}
			p.waitInView("#recovered-notice", inView, "the reconnected notice")
			if st := p.read(); st.Banner || st.Status != "connected" || p.visible(selConnect) {
				t.Errorf("after the reconnect: %+v, #connect %v; want connected, no banner, no Connect", st, p.visible(selConnect))
			}
			if r := p.callAPI(); r.Status != "200" {
				t.Errorf("call after the reconnect: %+v", r)
			}

			p.screenshotViewport(t, "/tmp/tether-demo-screenshot-"+vp.name+".png")

			// Disconnect ends the story: nothing is kept for the next page.
			p.click("#disconnect")
			p.waitFor(`document.querySelector("#status").dataset.state === "disconnected"`, stepTimeout, "disconnected")
			if v := evalJS[string](p, `(() => { dispatchEvent(new Event("pagehide")); return String(sessionStorage.getItem("tether-demo-history")); })()`); v != "null" {
				t.Errorf("after Disconnect the page still saves its story: %.200s", v)
			}
			if p.visible("#recovered-notice") {
				t.Error("the reconnected notice is still shown after Disconnect")
			}
		})
	}
}

// screenshotViewport saves what the viewport shows, from the top of the page.
func (p *page) screenshotViewport(t *testing.T, path string) {
	t.Helper()
	evalJS[bool](p, `(() => { scrollTo(0, 0); return true; })()`)
	time.Sleep(300 * time.Millisecond)
	step, done := context.WithTimeout(p.tab, stepTimeout)
	defer done()
	png, err := chromedp.Run(step, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// labelBoxesJS lists the timeline's shown labels (every text drawn) and
// incident symbols with their boxes in viewport pixels.
const labelBoxesJS = `(() => {
	const svg = document.querySelector("#timeline");
	const rect = (e) => { const r = e.getBoundingClientRect(); return { l: r.left, t: r.top, r: r.right, b: r.bottom }; };
	const labels = [...svg.querySelectorAll("text")].filter((e) => e.getClientRects().length > 0 && e.textContent.trim() !== "" &&
		e.getBoundingClientRect().width > 0).map((e) => Object.assign(rect(e), { what: "text " + JSON.stringify(e.textContent) }));
	const marks = [...svg.querySelectorAll(".mark:not([data-kind^=api-])")].filter((g) => g.getClientRects().length > 0)
		.map((g) => { const sym = g.querySelector("circle, path, rect"); return Object.assign(rect(sym), { what: "mark " + g.dataset.kind }); });
	return { svg: rect(svg), labels, marks };
})()`

// box is an element's box in viewport pixels.
type box struct {
	L, T, R, B float64
	What       string
}

// labelBoxes is what labelBoxesJS returns.
type labelBoxes struct {
	SVG    box   `json:"svg"`
	Labels []box `json:"labels"`
	Marks  []box `json:"marks"`
}

func (b box) overlaps(o box) bool {
	const eps = 0.5
	return b.L < o.R-eps && o.L < b.R-eps && b.T < o.B-eps && o.T < b.B-eps
}

func (b box) String() string {
	return fmt.Sprintf("%s [%.1f,%.1f – %.1f,%.1f]", b.What, b.L, b.T, b.R, b.B)
}

// TestTimelineLabelsNeverOverlap: with every control pressed in a burst
// (labels that used to run into each other: "TIMEOTEXPIRE") and incident
// marks close together, no two labels of the timeline and no two incident
// symbols intersect, and no label leaves the drawing, at 375, 768 and 1280
// px.
func TestTimelineLabelsNeverOverlap(t *testing.T) {
	s := startStack(t, stackOptions{accessTTL: 20 * time.Second, autoApprove: true})
	tab := newTab(t)
	p := openPage(t, tab, s)
	p.login(false)
	p.waitFor(`window.tether.state().connected`, stepTimeout, "a first token")
	p.scrollToControls()
	for _, id := range []string{"ctl-expire", "ctl-outage-503", "ctl-outage-timeout", "ctl-outage-none", "ctl-expire", "ctl-expire", "ctl-expire", "ctl-outage-503"} {
		p.pressControl(id)
	}
	// The page's outage lasts 20 s; make it 3 at the provider, so that the
	// client's back-off (the provider's Retry-After) is short.
	if _, err := s.d.Dev.SetOutage(devprovider.Outage503, 3*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	p.pressControl("ctl-expire")
	p.waitFor(`window.demoEvents.some((e) => e.kind === "degraded")`, 10*time.Second, "the degraded event")
	p.pressControl("ctl-outage-none")
	p.pressControl("ctl-revoke")
	p.waitFor(`document.querySelector("#status").dataset.state === "reconnect"`, 20*time.Second, "the reconnect")
	p.pressControl("ctl-expire")
	p.pressControl("ctl-outage-503")

	for _, w := range []int64{375, 768, 1280} {
		t.Run(strconv.FormatInt(w, 10), func(t *testing.T) {
			p := &page{t: t, tab: tab, s: s}
			p.setViewport(w, 900)
			time.Sleep(400 * time.Millisecond) // the ResizeObserver and a few frames
			got := evalJS[labelBoxes](p, labelBoxesJS)
			flags := 0
			for _, l := range got.Labels {
				if strings.Contains(l.What, "expire") || strings.Contains(l.What, "outage") || strings.Contains(l.What, "503") || strings.Contains(l.What, "revoke") {
					flags++
				}
			}
			if len(got.Labels) < 7 || flags < 2 || len(got.Marks) < 2 {
				t.Fatalf("%d labels (%d of controls), %d incident marks shown; want a busy timeline to check:\n%v\n%v", len(got.Labels), flags, len(got.Marks), got.Labels, got.Marks)
			}
			// The plot is clipped 10 px inside the drawing (timeline.js PAD).
			plot := box{got.SVG.L + 10, got.SVG.T, got.SVG.R - 10, got.SVG.B, "the plot"}
			for i, a := range got.Labels {
				if a.L < plot.L-0.5 || a.R > plot.R+0.5 || a.T < plot.T-0.5 || a.B > plot.B+0.5 {
					t.Errorf("%v leaves %v: it would be clipped", a, plot)
				}
				for _, b := range got.Labels[i+1:] {
					if a.overlaps(b) {
						t.Errorf("labels overlap: %v and %v", a, b)
					}
				}
			}
			for i, a := range got.Marks {
				for _, b := range got.Marks[i+1:] {
					if a.overlaps(b) {
						t.Errorf("incident marks overlap: %v and %v", a, b)
					}
				}
				for _, b := range got.Labels {
					if a.overlaps(b) {
						t.Errorf("an incident mark overlaps a label: %v and %v", a, b)
					}
				}
			}
			t.Logf("%d px: %d labels (%d of controls), %d incident marks, none overlapping", w, len(got.Labels), flags, len(got.Marks))
		})
	}
}
