/*
 * timeline.js: the demo page's live lifecycle timeline (an SVG drawn about
 * ten times a second) and the small formatting helpers it shares with
 * demo.js, which loads after it and creates the Timeline.
 *
 * Elements it draws carry class "mark" with data-kind, and "token-bar":
 * the browser tests rely on them (see demo.js).
 *
 * No two labels overlap, at any width: the flags of the controls are laid
 * out right to left, newest first, and one that has no room is hidden (its
 * line stays, its name is in the event log); same-kind marks closer than a
 * symbol merge into one with a count, and neighbours in a row step aside.
 * serialize and restore carry the drawing across a page load.
 */
(function () {
  "use strict";

  const pad = (n) => String(n).padStart(2, "0");
  const clock = (ms) => {
    const d = new Date(ms);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  };
  const span = (ms) => {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 60 ? s + "\u00a0s" : Math.floor(s / 60) + ":" + pad(s % 60) + "\u00a0min";
  };
  const setText = (e, text) => {
    if (e.textContent !== text) e.textContent = text;
  };
  // ---- the timeline ----------------------------------------------------
  //
  // One SVG, redrawn about ten times a second: the x axis is wall-clock
  // time, from a few minutes ago to a little ahead of now (the part of the
  // current token's life still to come). The viewBox is as wide as the
  // element in CSS pixels, so text keeps its size on a phone.

  const NS = "http://www.w3.org/2000/svg";
  const Y = {
    flag: 12, sessionLabel: 31, session: 37, sessionH: 18, tokenLabel: 76, token: [82, 99], tokenH: 13,
    eventsLabel: 133, rowA: 149, rowB: 169, apiLabel: 195, api: 201, apiH: 18,
    top: 19, bottom: 223, axis: 229, axisLabel: 245, H: 252,
  };
  const PAD = 10;
  const MARK_HALF = 7.5; // half the width of an incident symbol
  const MARK_GAP = 2; // between incident symbols of one row
  const FLAG_GAP = 8; // between flag labels
  const INCIDENT_ROW = { refresh: "A", retry: "A" }; // the others: row B

  function svgEl(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.append(e);
    return e;
  }
  // drop removes an element (if drawn) and tells filter to forget its item.
  function drop(e) {
    if (e) e.remove();
    return false;
  }
  function put(e, attrs) {
    for (const k in attrs) {
      const v = typeof attrs[k] === "number" ? attrs[k].toFixed(1) : attrs[k];
      if (e.getAttribute(k) !== v) e.setAttribute(k, v);
    }
  }

  const SYMBOL = {
    refresh: (g) => svgEl("circle", { r: 6, cy: Y.rowA }, g),
    retry: (g) => svgEl("path", { d: `M0 ${Y.rowA - 7.5}l7.5 7.5l-7.5 7.5l-7.5-7.5z` }, g),
    degraded: (g) => svgEl("path", { d: `M0 ${Y.rowB - 7.5}l7.5 13h-15z` }, g),
    recovered: (g) => svgEl("circle", { r: 5, cy: Y.rowB }, g),
    reconnect: (g) => svgEl("rect", { x: -6, y: Y.rowB - 6, width: 12, height: 12, rx: 2 }, g),
    logout: (g) => svgEl("rect", { x: -6, y: Y.rowB - 6, width: 12, height: 12, rx: 6 }, g),
    "api-ok": (g) => svgEl("line", { y1: Y.api + 3, y2: Y.api + Y.apiH - 3 }, g),
    "api-error": (g) => svgEl("line", { y1: Y.api - 1, y2: Y.api + Y.apiH + 1 }, g),
  };

  class Timeline {
    constructor(svg) {
      this.svg = svg;
      this.W = 1000;
      this.origin = 0; // the first item: the axis covers at least this much past
      this.sessions = [];
      this.tokens = [];
      this.outages = [];
      this.marks = [];
      this.flags = [];
      this.waits = [];
      this.lanes = 0;
      this.onTick = null;
      this.widths = new Map(); // measured label widths
      const defs = svgEl("defs", {}, svg);
      this.clip = svgEl("rect", { x: PAD, y: 0, height: Y.H, width: 0 }, svgEl("clipPath", { id: "tl-plot" }, defs));
      this.tracks = svgEl("g", { class: "tl-tracks" }, svg);
      this.future = svgEl("rect", { class: "tl-future", y: Y.top, height: Y.bottom - Y.top }, svg);
      const plot = svgEl("g", { "clip-path": "url(#tl-plot)" }, svg);
      this.bandLayer = svgEl("g", {}, plot);
      this.barLayer = svgEl("g", {}, plot);
      this.flagLayer = svgEl("g", {}, plot);
      this.markLayer = svgEl("g", {}, plot);
      this.labels = svgEl("g", { class: "tl-label" }, svg);
      this.axis = svgEl("g", { class: "tl-axis" }, svg);
      this.axisLine = svgEl("line", { y1: Y.axis, y2: Y.axis }, this.axis);
      this.ticks = [];
      this.now = svgEl("g", { class: "tl-now" }, svg);
      this.nowLine = svgEl("line", { y1: Y.top - 4, y2: Y.axis + 4 }, this.now);
      this.nowText = svgEl("text", { y: Y.axisLabel, "text-anchor": "middle" }, this.now);
      this.nowText.textContent = "now";
      this.empty = svgEl("text", { class: "tl-empty", y: 112, "text-anchor": "middle" }, svg);
      this.empty.textContent = "Connect to see the token lifecycle";
      this.layout(svg.parentElement.clientWidth || 1000);
      if (typeof ResizeObserver === "function") {
        new ResizeObserver((entries) => this.layout(entries[0].contentRect.width)).observe(svg.parentElement);
      }
      let last = 0;
      const frame = (ts) => {
        if (ts - last >= 100) {
          last = ts;
          const now = Date.now();
          this.draw(now);
          if (this.onTick) this.onTick(now);
        }
        requestAnimationFrame(frame);
      };
      requestAnimationFrame(frame);
    }

    // layout sizes the drawing to w CSS pixels: the lanes and their labels.
    layout(w) {
      const W = Math.max(280, Math.round(w));
      if (W === this.W && this.tracks.firstChild) return;
      this.W = W;
      this.svg.setAttribute("viewBox", `0 0 ${W} ${Y.H}`);
      put(this.clip, { width: W - 2 * PAD });
      this.tracks.replaceChildren();
      this.labels.replaceChildren();
      const narrow = W < 600;
      const lanes = [
        [Y.sessionLabel, Y.session, Y.sessionH, narrow ? "Session (refresh token, in the BFF)" : "Session: the refresh token, kept by the BFF"],
        [Y.tokenLabel, Y.token[0], Y.token[1] + Y.tokenH - Y.token[0], narrow ? "Access tokens (in the browser)" : "Access tokens, held in the browser's memory"],
        [Y.eventsLabel, Y.rowA - 9, Y.rowB - Y.rowA + 18, narrow ? "Refreshes and incidents" : "Refreshes, retries, outages, reconnects"],
        [Y.apiLabel, Y.api, Y.apiH, "API calls"],
      ];
      for (const [ly, y, h, text] of lanes) {
        svgEl("rect", { x: PAD, y, width: W - 2 * PAD, height: h, rx: 3 }, this.tracks);
        svgEl("text", { x: PAD + 2, y: ly }, this.labels).textContent = text;
      }
      put(this.axisLine, { x1: PAD, x2: W - PAD });
      put(this.empty, { x: W / 2 });
      this.draw(Date.now());
    }

    begin(at) {
      if (!this.origin) this.origin = at;
    }

    startSession(at, expiresAt) {
      this.begin(at);
      const open = this.sessions.find((s) => !s.endedAt);
      if (open) {
        if (expiresAt) open.expiresAt = expiresAt;
      } else {
        this.sessions.push({ start: at, expiresAt });
      }
      this.draw(Date.now());
    }

    endSession(at) {
      for (const s of this.sessions) if (!s.endedAt) s.endedAt = at;
      this.draw(Date.now());
    }

    addToken(at, expires) {
      this.begin(at);
      for (const t of this.tokens) if (!t.endedAt) t.endedAt = at;
      this.tokens.push({ issued: at, expires, lane: this.lanes++ % 2 });
      this.draw(Date.now());
    }

    // expireTokens cuts the life of every live token at the provider's
    // word, before the client finds out.
    expireTokens(at) {
      for (const t of this.tokens) if (!t.killedAt && (!t.expires || t.expires > at)) t.expires = at;
      this.draw(Date.now());
    }

    killToken(at) {
      for (const t of this.tokens) {
        if (!t.endedAt) t.endedAt = at;
        if (!t.killedAt && (!t.expires || t.expires > at)) t.killedAt = at;
      }
      this.draw(Date.now());
    }

    startOutage(at) {
      this.begin(at);
      if (!this.outages.some((o) => !o.end)) this.outages.push({ start: at });
    }

    endOutage(at) {
      for (const o of this.outages) if (!o.end) o.end = at;
    }

    addMark(kind, at, title, later) {
      this.begin(at);
      const g = svgEl("g", { class: "mark", "data-kind": kind }, this.markLayer);
      const m = { kind, at, title, g };
      if (kind.startsWith("api-")) {
        SYMBOL[kind](g);
      } else {
        // The guide marks the time; the symbol may step aside (sym).
        svgEl("line", { class: "tl-guide", y1: Y.top, y2: Y.bottom }, g);
        m.sym = svgEl("g", {}, g);
        SYMBOL[kind](m.sym);
        m.count = svgEl("text", { class: "tl-count", x: MARK_HALF + 2, y: (INCIDENT_ROW[kind] === "A" ? Y.rowA : Y.rowB) + 4 }, m.sym);
        m.row = INCIDENT_ROW[kind] || "B";
      }
      svgEl("title", {}, g).textContent = title + " · " + clock(at);
      this.marks.push(m);
      if (!later) this.draw(Date.now());
    }

    // startWait draws an API call that takes a while; endWait ends it.
    startWait(at) {
      const w = { start: at };
      this.waits.push(w);
      return w;
    }

    endWait(w, at) {
      w.end = at;
    }

    addFlag(label, at, later) {
      this.begin(at);
      const g = svgEl("g", { class: "ctl-flag" }, this.flagLayer);
      svgEl("line", { y1: Y.top - 3, y2: Y.bottom }, g);
      const text = svgEl("text", { x: 3, y: Y.flag }, g);
      text.textContent = label;
      svgEl("title", {}, g).textContent = label + " · " + clock(at);
      this.flags.push({ label, at, g, text });
      if (!later) this.draw(Date.now());
    }

    // serialize returns the drawing's items as plain data (times, kinds,
    // titles: nothing secret), for restore on the next page.
    serialize() {
      return {
        origin: this.origin,
        lanes: this.lanes,
        sessions: this.sessions.map((s) => ({ start: s.start, expiresAt: s.expiresAt, endedAt: s.endedAt })),
        tokens: this.tokens.map((t) => ({ issued: t.issued, expires: t.expires, endedAt: t.endedAt, killedAt: t.killedAt, lane: t.lane })),
        outages: this.outages.map((o) => ({ start: o.start, end: o.end })),
        marks: this.marks.map((m) => ({ kind: m.kind, at: m.at, title: m.title })),
        flags: this.flags.map((f) => ({ label: f.label, at: f.at })),
      };
    }

    // restore draws what serialize returned on an earlier page; what was
    // still going on then ends at leftAt, when that page went away.
    restore(h, leftAt) {
      if (!h) return;
      const num = (v) => (typeof v === "number" && isFinite(v) ? v : 0);
      if (num(h.origin) && (!this.origin || h.origin < this.origin)) this.origin = h.origin;
      this.lanes = num(h.lanes);
      for (const s of h.sessions || []) {
        this.sessions.push({ start: num(s.start), expiresAt: num(s.expiresAt), endedAt: num(s.endedAt) || leftAt });
      }
      for (const t of h.tokens || []) {
        this.tokens.push({ issued: num(t.issued), expires: num(t.expires), endedAt: num(t.endedAt) || leftAt, killedAt: num(t.killedAt), lane: t.lane ? 1 : 0 });
      }
      for (const o of h.outages || []) this.outages.push({ start: num(o.start), end: num(o.end) || leftAt });
      for (const m of h.marks || []) if (SYMBOL[m.kind]) this.addMark(m.kind, num(m.at), String(m.title || m.kind), true);
      for (const f of h.flags || []) this.addFlag(String(f.label), num(f.at), true);
      this.draw(Date.now());
    }

    // width measures a label as drawn (text-transform and letter-spacing
    // included), remembering it per text (digits are tabular: one width).
    width(text, key) {
      const k = key + "\u0000" + text.textContent.replace(/\d/g, "0");
      let w = this.widths.get(k);
      if (w === undefined) {
        let box = null;
        try {
          box = text.getBBox();
        } catch {
          // not rendered yet
        }
        w = box ? box.width : 0;
        if (w > 0) this.widths.set(k, w);
        else w = text.textContent.length * 7.5;
      }
      return w;
    }

    draw(now) {
      const W = this.W;
      const L = PAD;
      const R = W - PAD;
      const maxPast = W < 600 ? 120e3 : 240e3;
      const past = Math.min(maxPast, Math.max(40e3, this.origin ? now - this.origin + 15e3 : 0));
      const t0 = now - past;
      const t1 = now + Math.max(20e3, past / 3);
      const x = (t) => L + ((t - t0) / (t1 - t0)) * (R - L);
      const cx = (t) => Math.max(L - 4, Math.min(R + 4, x(t)));
      const bar = (e, from, to, y, h) => put(e, { x: cx(from), y, width: Math.max(0, cx(to) - cx(from)), height: h });
      const xNow = x(now);

      put(this.future, { x: xNow, width: Math.max(0, R - xNow) });
      put(this.nowLine, { x1: xNow, x2: xNow });
      put(this.nowText, { x: xNow });
      this.empty.style.display = this.sessions.length || this.tokens.length ? "none" : "";

      this.sessions = this.sessions.filter((s) => {
        const end = s.endedAt || s.expiresAt || t1 + 60e3;
        if (s.endedAt && end < t0) return drop(s.g);
        if (!s.g) {
          s.g = svgEl("g", { class: "session-bar" }, this.barLayer);
          s.life = svgEl("rect", { class: "life", rx: 3 }, s.g);
          s.used = svgEl("rect", { class: "used", rx: 3 }, s.g);
          s.cap = svgEl("rect", { class: "cap", width: 3, y: Y.session - 3, height: Y.sessionH + 6 }, s.g);
          s.text = svgEl("text", { y: Y.session + Y.sessionH / 2 + 4, "text-anchor": "end" }, s.g);
        }
        bar(s.life, s.start, end, Y.session, Y.sessionH);
        bar(s.used, s.start, Math.min(s.endedAt || now, end), Y.session, Y.sessionH);
        s.cap.style.display = s.endedAt ? "" : "none";
        if (s.endedAt) put(s.cap, { x: cx(s.endedAt) - 1.5 });
        s.g.dataset.state = s.endedAt ? "ended" : "open";
        // "ends in" goes in the part still to come, when it fits there.
        const label = !s.endedAt && s.expiresAt ? "ends in " + span(s.expiresAt - now) : "";
        const right = Math.min(cx(end), R);
        setText(s.text, label && right - Math.max(xNow, cx(s.start)) > label.length * 6.6 + 12 ? label : "");
        put(s.text, { x: right - 6 });
        return true;
      });

      this.tokens = this.tokens.filter((t) => {
        const lifeEnd = t.killedAt || t.expires || t.endedAt || now;
        const useEnd = Math.min(t.endedAt || now, lifeEnd);
        if (t.endedAt && lifeEnd < t0) return drop(t.g);
        if (!t.g) {
          t.g = svgEl("g", { class: "token-bar" }, this.barLayer);
          t.life = svgEl("rect", { class: "life", rx: 2 }, t.g);
          t.used = svgEl("rect", { class: "used", rx: 2 }, t.g);
          svgEl("title", {}, t.g).textContent = "Access token issued " + clock(t.issued) +
            (t.expires ? ", expires " + clock(t.expires) : "");
        }
        const y = Y.token[t.lane];
        bar(t.life, t.issued, lifeEnd, y, Y.tokenH);
        bar(t.used, t.issued, useEnd, y, Y.tokenH);
        t.g.dataset.state = t.killedAt ? "ended" : t.endedAt ? "replaced" : "current";
        return true;
      });

      this.outages = this.outages.filter((o) => {
        if (o.end && o.end < t0) return drop(o.g);
        if (!o.g) o.g = svgEl("rect", { class: "outage-band", y: Y.top, height: Y.bottom - Y.top }, this.bandLayer);
        bar(o.g, o.start, o.end || now, Y.top, Y.bottom - Y.top);
        return true;
      });

      this.waits = this.waits.filter((w) => {
        const end = w.end || now;
        if (w.end && end < t0) return drop(w.g);
        if (end - w.start < 400) return !w.end;
        if (!w.g) w.g = svgEl("rect", { class: "api-wait", rx: 2 }, this.markLayer);
        bar(w.g, w.start, end, Y.api + Y.apiH / 2 - 2, 4);
        return true;
      });

      for (const list of [this.marks, this.flags]) {
        let gone = 0;
        while (gone < list.length && list[gone].at < t0 - 30e3) list[gone++].g.remove();
        list.splice(0, gone);
        for (const m of list) put(m.g, { transform: `translate(${x(m.at).toFixed(1)} 0)` });
      }
      this.layoutMarks(x);
      this.layoutFlags(x, L, R);
      // Wall-clock ticks, at least 72 px apart; a label never touches the
      // edges or "now".
      const steps = [5, 10, 15, 30, 60, 120, 300];
      const perSec = (R - L) / ((t1 - t0) / 1000);
      const step = (steps.find((s) => s * perSec >= 72) || 600) * 1000;
      const nowHalf = this.width(this.nowText, "now") / 2;
      let i = 0;
      for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
        const tx = x(t);
        const label = clock(t);
        if (!this.ticks[i]) {
          const g = svgEl("g", {}, this.axis);
          svgEl("line", { y1: Y.axis, y2: Y.axis + 4 }, g);
          svgEl("text", { y: Y.axisLabel, "text-anchor": "middle" }, g);
          this.ticks[i] = g;
        }
        const g = this.ticks[i];
        if (g.lastChild.textContent !== label) g.lastChild.textContent = label;
        g.style.display = "";
        const half = this.width(g.lastChild, "tick") / 2;
        if (tx - half < L || tx + half > R || Math.abs(tx - xNow) < half + nowHalf + 6) {
          g.style.display = "none";
          continue;
        }
        put(g, { transform: `translate(${tx.toFixed(1)} 0)` });
        i++;
      }
      for (; i < this.ticks.length; i++) this.ticks[i].style.display = "none";
    }

    // layoutMarks draws the incident marks of each row so that no two
    // symbols overlap: marks of one kind closer than a symbol's width are
    // shown as the latest of them with a count; a mark that would still
    // touch its left neighbour moves right (its guide line stays at its
    // time).
    layoutMarks(x) {
      const rows = { A: [], B: [] };
      for (const m of this.marks) if (m.sym) rows[m.row].push(m);
      for (const row of Object.values(rows)) {
        const clusters = [];
        for (const m of row) {
          const c = clusters[clusters.length - 1];
          if (c && c.kind === m.kind && x(m.at) - x(c.last.at) < 2 * MARK_HALF + MARK_GAP) {
            c.members.push(m);
            c.last = m;
          } else {
            clusters.push({ kind: m.kind, members: [m], last: m });
          }
        }
        let free = -Infinity;
        for (const c of clusters) {
          for (const m of c.members) if (m !== c.last) m.g.style.display = "none";
          const m = c.last;
          m.g.style.display = "";
          setText(m.count, c.members.length > 1 ? "\u00d7" + c.members.length : "");
          const mx = x(m.at);
          const placed = Math.max(mx, free + MARK_GAP + MARK_HALF);
          put(m.sym, { transform: `translate(${(placed - mx).toFixed(1)} 0)` });
          free = placed + MARK_HALF + (c.members.length > 1 ? 2 + this.width(m.count, "count") : 0);
        }
      }
    }

    // layoutFlags places the controls' labels on their one line above the
    // plot: right of their flag line where there is room, shifted left of
    // it when a newer label or the edge needs the room, and hidden when it
    // would have to leave its line altogether or the plot. The same
    // control pressed again and again in a short time is one label with a
    // count.
    layoutFlags(x, L, R) {
      const reps = [];
      for (const f of this.flags) {
        const r = reps[reps.length - 1];
        if (r && r.label === f.label && x(f.at) - x(r.last.at) < 40) {
          r.n++;
          r.last.text.style.display = "none";
          r.last = f;
        } else {
          reps.push({ label: f.label, n: 1, last: f });
        }
      }
      let limit = R;
      for (let i = reps.length - 1; i >= 0; i--) {
        const { last: f, n } = reps[i];
        setText(f.text, n > 1 ? f.label + " \u00d7" + n : f.label);
        f.text.style.display = "";
        const fx = x(f.at);
        const w = this.width(f.text, "flag");
        const lx = Math.min(fx + 3, limit - w);
        if (lx < L || lx + w < fx - 3) {
          f.text.style.display = "none";
          continue;
        }
        put(f.text, { x: lx - fx });
        limit = lx - FLAG_GAP;
      }
    }
  }

  window.DemoTimeline = { Timeline, clock, span, setText };
})();
