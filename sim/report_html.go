package sim

import (
	"fmt"
	"html/template"
)

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"count": fmtCount,
	// heat shades an error rate cell: clear at 0, deep red at 1.
	"heat": func(rate float64) template.CSS {
		if !(rate > 0) {
			return ""
		}
		return template.CSS(fmt.Sprintf("background:rgba(214,39,40,%.2f)", 0.10+0.35*min(rate, 1)))
	},
}).Parse(reportHTML))

const reportHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root { --ok: #4a7bb7; --unknown: #f59f00; --failed: #d62728; --missed: #a0a7b4; --ink: #1d2330; --mute: #6b7280; --line: #e5e7eb; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0; background: #f6f7f9; }
main { max-width: 1400px; margin: 0 auto; padding: 18px 24px 40px; }
h1 { font-size: 20px; margin: 0 0 8px; }
h2 { font-size: 15px; margin: 26px 0 8px; }
.verdict { font-size: 16px; font-weight: 600; padding: 9px 14px; border-left: 6px solid var(--mute); background: #fff; border-radius: 4px; }
.verdict.fail { border-color: var(--failed); background: #fdecec; color: #8b1116; }
.verdict.pass { border-color: #2ca02c; background: #eaf7ea; color: #1b5e20; }
.meta { color: var(--mute); margin: 8px 0 0; }
.meta b { color: var(--ink); font-weight: 600; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.toolbar { display: flex; gap: 18px; align-items: center; flex-wrap: wrap; margin-bottom: 6px; color: var(--mute); }
.key { display: inline-flex; align-items: center; gap: 5px; }
.dot { width: 10px; height: 10px; border-radius: 50%; display: inline-block; }
canvas { display: block; width: 100%; }
#tip { position: fixed; pointer-events: none; background: #1d2330; color: #fff; padding: 5px 8px; border-radius: 4px; font-size: 12px; display: none; max-width: 520px; z-index: 2; }
table { border-collapse: collapse; width: 100%; background: #fff; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; background: #fafafa; position: sticky; top: 0; }
td.num, th.num { text-align: right; }
td.wrap { white-space: normal; }
tr.sub td { color: var(--mute); }
tr.sub td:first-child { padding-left: 24px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.bad { color: var(--failed); }
pre { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow: auto; margin: 0; font-size: 12.5px; }
details summary { cursor: pointer; color: var(--mute); margin: 8px 0; }
.oplog { margin: 6px 0; max-height: 240px; white-space: pre-wrap; }
.scroll { max-height: 520px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
</style>
</head>
<body>
<main>
<h1 id="title">{{.Title}}</h1>
<div id="verdict" class="verdict {{.VerdictClass}}">{{.Verdict}}</div>
<p class="meta" id="meta">seed <b>{{.Seed}}</b>{{if .Began}} · began <b>{{.Began}}</b>{{end}} · lasted <b>{{.Duration}}</b>{{if .Machine}} · the machine: <b>{{.Machine}}</b>{{end}} · <b>{{count .Total.Count}}</b> ops, <b>{{count .Total.Errors}}</b> errors ({{count .Total.Failed}} failed, {{count .Total.Unknown}} unknown){{if .Total.Missed}} · <b>{{count .Total.Missed}}</b> missed by the framework, not judged{{end}}{{if .SamplesMissed}} · <b>{{count .SamplesMissed}}</b> samples missed{{end}} · <b>{{.FaultCount}}</b> faults</p>
{{if .Replay}}<h2>Replay</h2>
<pre id="replay">{{.Replay}}</pre>{{end}}

<h2 id="timeline">Latency over time</h2>
<div class="panel">
<div class="toolbar">
<span class="key"><span class="dot" style="background:var(--ok)"></span>ok</span>
<span class="key"><span class="dot" style="background:var(--unknown)"></span>unknown</span>
<span class="key"><span class="dot" style="background:var(--failed)"></span>failed</span>
<span class="key"><span class="dot" style="background:var(--missed)"></span>missed (not started, cut off by the run's end, or held by a stall of the test process)</span>
<label>kind <select id="kind"><option value="-1">all</option></select></label>
<span id="shown"></span>
</div>
<canvas id="lanes"></canvas>
<canvas id="scatter"></canvas>
<canvas id="rate"></canvas>
<div id="samples"></div>
</div>
<div id="tip"></div>

<h2 id="windows">Windows</h2>
<table id="window-table">
<thead><tr><th>window</th><th>kind</th><th class="num">from</th><th class="num">to</th><th class="num">ops</th><th class="num">errors</th><th class="num">missed</th><th class="num">error rate</th><th class="num">p50</th><th class="num">p90</th><th class="num">p99</th><th class="num">max</th></tr></thead>
<tbody>
{{range .Windows}}<tr{{if .Sub}} class="sub"{{end}}><td>{{if not .Sub}}{{if .Colour}}<span class="swatch" style="background:{{.Colour}}"></span>{{end}}{{.Label}}{{end}}</td><td>{{.Kind}}</td><td class="num">{{.From}}</td><td class="num">{{.To}}</td><td class="num">{{count .S.Count}}</td><td class="num">{{count .S.Errors}}</td><td class="num">{{if .S.Missed}}{{count .S.Missed}}{{end}}</td><td class="num" style="{{heat .Heat}}">{{.Rate}}</td><td class="num">{{.P50}}</td><td class="num">{{.P90}}</td><td class="num">{{.P99}}</td><td class="num">{{.Max}}</td></tr>
{{end}}</tbody>
</table>

<h2 id="faults">Faults as they ran</h2>
{{if .Faults}}<table id="fault-table">
<thead><tr><th class="num">#</th><th class="num">step</th><th>target</th><th>fault</th><th class="num">planned</th><th class="num">applied</th><th class="num">late</th><th class="num">reverted</th><th class="num">held</th><th>problem</th></tr></thead>
<tbody>
{{range .Faults}}<tr><td class="num">{{.Index}}</td><td class="num">{{.Step}}</td><td><span class="swatch" style="background:{{.Colour}}"></span>{{.Target}}</td><td>{{.Fault}}</td><td class="num">{{.Planned}}</td><td class="num">{{.Start}}</td><td class="num">{{.Late}}</td><td class="num">{{.End}}</td><td class="num">{{.Held}}</td><td class="wrap bad">{{.Problem}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p class="meta">No faults ran.</p>{{end}}

<h2 id="schedule">Schedule</h2>
<pre id="schedule-text">{{.ScheduleText}}</pre>
<details><summary>JSON</summary><pre id="schedule-json">{{.ScheduleJSON}}</pre></details>
<p class="meta" id="drawn"></p>
</main>
<script>
"use strict";
const META = {{.Meta}};
const OPS = {{.Ops}};
const LOGS = {{.Logs}};
(function () {
  const N = OPS.length / 6;
  const ID = new Float64Array(N), T = new Float64Array(N), L = new Float64Array(N);
  const OC = new Uint8Array(N), K = new Int32Array(N), E = new Int32Array(N);
  let id = 0, t = 0;
  for (let i = 0, j = 0; i < N; i++, j += 6) {
    id += OPS[j]; t += OPS[j + 1];
    ID[i] = id; T[i] = t; L[i] = OPS[j + 2]; OC[i] = OPS[j + 3]; K[i] = OPS[j + 4]; E[i] = OPS[j + 5];
  }
  const css = getComputedStyle(document.documentElement);
  const COL = [css.getPropertyValue("--ok").trim(), css.getPropertyValue("--failed").trim(), css.getPropertyValue("--unknown").trim(), css.getPropertyValue("--missed").trim()];
  const OUT = ["ok", "failed", "unknown", "missed"];
  let end = META.duration;
  for (let i = 0; i < N; i++) end = Math.max(end, T[i] + L[i]);
  for (const f of META.faults) end = Math.max(end, f.end);
  end = Math.max(end, 1000);
  let kind = -1;
  const sel = document.getElementById("kind");
  META.kinds.forEach((k, i) => { const o = document.createElement("option"); o.value = i; o.textContent = k; sel.appendChild(o); });
  sel.onchange = () => { kind = +sel.value; draw(); };

  // ML is the left gutter, where the labels of lanes, sample series and
  // axes go: as wide as the widest label (so "pool.wait_seconds" shows
  // whole), at least 92px, and at most 40% of the page; a label wider than
  // that wraps at its dots and underscores (see lines).
  const MR = 16, BOLD = "600 12px system-ui, sans-serif", FONT = "12px system-ui, sans-serif", LINE = 14;
  let ML = 92;
  const ruler = document.createElement("canvas").getContext("2d");
  function width(text, font) { ruler.font = font; return ruler.measureText(text).width; }
  // lines breaks text into lines no wider than the gutter's labels may be,
  // after a separator (. _ - : or a space) where it can, anywhere if it must.
  function lines(text, font) {
    const room = ML - 16;
    if (width(text, font) <= room) return [text];
    const out = [];
    let line = "";
    for (const piece of text.split(/(?<=[._: -])/)) {
      if (width(line + piece, font) <= room) { line += piece; continue; }
      if (line) out.push(line);
      line = "";
      for (const ch of piece) {
        if (line && width(line + ch, font) > room) { out.push(line); line = ""; }
        line += ch;
      }
    }
    if (line) out.push(line);
    return out;
  }
  function write(g, text, font, x, y) {
    g.font = font;
    lines(text, font).forEach((l, i) => g.fillText(l, x, y + i * LINE));
  }
  function gutter() {
    let widest = 0;
    for (const name of META.targets) widest = Math.max(widest, width(name, BOLD));
    for (const s of META.samples) {
      widest = Math.max(widest, width(s.name, BOLD), width(+Math.max(...s.v).toPrecision(4) + " max", FONT), width(+Math.min(...s.v).toPrecision(4) + " min", FONT));
    }
    widest = Math.max(widest, width("per " + fmt(end / 10), FONT), width("peak " + N, FONT), width(fmt(1e9), FONT));
    const page = document.getElementById("scatter").clientWidth || 800;
    ML = Math.ceil(Math.max(92, Math.min(widest + 16, page * 0.4)));
  }
  function setup(c, h) {
    const r = window.devicePixelRatio || 1, w = c.clientWidth;
    c.style.height = h + "px"; c.width = Math.round(w * r); c.height = Math.round(h * r);
    const g = c.getContext("2d"); g.setTransform(r, 0, 0, r, 0, 0);
    g.font = "12px system-ui, sans-serif"; g.textBaseline = "middle";
    return [g, w];
  }
  const X = (w, us) => ML + (w - ML - MR) * us / end;
  function fmt(us) {
    if (us >= 1e6) return +(us / 1e6).toPrecision(4) + "s";
    if (us >= 1e3) return +(us / 1e3).toPrecision(3) + "ms";
    return +us.toPrecision(3) + "µs";
  }
  function xTicks(g, w, top, bottom, labels) {
    const span = end / 1e6, raw = span / Math.max(2, (w - ML) / 110);
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(m => m * p).find(s => s >= raw);
    g.strokeStyle = "#eef0f3"; g.fillStyle = "#6b7280"; g.textAlign = "center";
    for (let s = 0; s <= span + 1e-9; s += step) {
      const x = X(w, s * 1e6);
      g.beginPath(); g.moveTo(x, top); g.lineTo(x, bottom); g.stroke();
      if (labels) g.fillText(s === 0 ? "0" : fmt(s * 1e6), x, bottom + 10);
    }
  }
  function bands(g, w, top, bottom) {
    for (const f of META.faults) {
      if (f.failed) continue;
      const x0 = X(w, f.start), x1 = X(w, f.end < 0 ? end : f.end);
      g.globalAlpha = 0.11; g.fillStyle = META.colours[f.target];
      g.fillRect(x0, top, Math.max(2, x1 - x0), bottom - top);
      g.globalAlpha = 1;
    }
  }

  function drawLanes() {
    const c = document.getElementById("lanes"), n = META.targets.length;
    if (!n) { c.style.display = "none"; return; }
    const most = Math.max(1, ...META.targets.map(name => lines(name, BOLD).length));
    const LH = Math.max(24, most * LINE + 8);
    const [g, w] = setup(c, n * LH + 6);
    xTicks(g, w, 0, n * LH + 6, false);
    META.targets.forEach((name, i) => {
      g.fillStyle = META.colours[i]; g.textAlign = "right";
      const k = lines(name, BOLD).length;
      write(g, name, BOLD, ML - 8, i * LH + LH / 2 + 3 - (k - 1) * LINE / 2);
    });
    g.font = FONT;
    for (const f of META.faults) {
      const y = f.target * LH + 5, x0 = X(w, f.start), ym = y + (LH - 4) / 2;
      const bw = f.failed ? 8 : Math.max(3, X(w, f.end < 0 ? end : f.end) - x0);
      if (f.failed) {
        g.strokeStyle = "#d62728"; g.setLineDash([3, 2]); g.strokeRect(x0, y, bw, LH - 4); g.setLineDash([]);
      } else {
        g.fillStyle = META.colours[f.target]; g.globalAlpha = 0.85; g.fillRect(x0, y, bw, LH - 4); g.globalAlpha = 1;
      }
      const label = f.label + (f.failed ? " ✗ not applied" : f.end < 0 ? " (never reverted)" : ""), tw = g.measureText(label).width;
      if (tw + 8 < bw && !f.failed) { g.fillStyle = "#fff"; g.textAlign = "left"; g.fillText(label, x0 + 4, ym); }
      else if (x0 + bw + 4 + tw < w || x0 - 4 - tw < 0 && w - x0 - bw > x0) { g.fillStyle = f.failed ? "#d62728" : "#374151"; g.textAlign = "left"; g.fillText(label, x0 + bw + 4, ym); }
      else { g.fillStyle = f.failed ? "#d62728" : "#374151"; g.textAlign = "right"; g.fillText(label, x0 - 4, ym); }
    }
  }

  let scatterW = 0, lo = 0, hi = 1;
  const SH = 380, ST = 8, SB = 26;
  const Y = us => ST + (SH - ST - SB) * (1 - (Math.log10(Math.max(us, 1)) - lo) / (hi - lo));
  function drawScatter() {
    const c = document.getElementById("scatter"), [g, w] = setup(c, SH);
    scatterW = w;
    let mn = Infinity, mx = 0;
    for (let i = 0; i < N; i++) if (kind < 0 || K[i] === kind) { mn = Math.min(mn, L[i]); mx = Math.max(mx, L[i]); }
    if (mn === Infinity) { mn = 1; mx = 1e3; }
    lo = Math.max(0, Math.floor(Math.log10(Math.max(mn, 1)) - 0.15)); hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(mx, 1)) + 0.15));
    bands(g, w, ST, SH - SB);
    xTicks(g, w, ST, SH - SB, true);
    g.textAlign = "right";
    for (let p = lo; p <= hi; p++) {
      const y = Y(Math.pow(10, p));
      g.strokeStyle = "#e5e7eb"; g.beginPath(); g.moveTo(ML, y); g.lineTo(w - MR, y); g.stroke();
      g.fillStyle = "#6b7280"; g.fillText(fmt(Math.pow(10, p)), ML - 8, y);
    }
    g.save(); g.translate(14, (SH - SB) / 2); g.rotate(-Math.PI / 2); g.textAlign = "center"; g.fillText("latency (log)", 0, 0); g.restore();
    let shown = 0;
    const size = N > 20000 ? 2 : N > 2000 ? 3 : 5;
    for (const o of [3, 0, 2, 1]) {
      g.fillStyle = COL[o]; g.globalAlpha = o === 0 ? 0.55 : 0.9;
      const s = o === 0 ? size : size + 1;
      for (let i = 0; i < N; i++) {
        if (OC[i] !== o || (kind >= 0 && K[i] !== kind)) continue;
        g.fillRect(X(w, T[i]) - s / 2, Y(L[i]) - s / 2, s, s); shown++;
      }
    }
    g.globalAlpha = 1;
    document.getElementById("shown").textContent = shown.toLocaleString() + " ops shown";
  }

  function drawRate() {
    const c = document.getElementById("rate"), H = 110, top = 16, bottom = H - 22, [g, w] = setup(c, H);
    const nb = Math.max(10, Math.min(240, Math.floor((w - ML - MR) / 5)));
    const cnt = [new Float64Array(nb), new Float64Array(nb), new Float64Array(nb), new Float64Array(nb)];
    for (let i = 0; i < N; i++) {
      if (kind >= 0 && K[i] !== kind) continue;
      cnt[OC[i]][Math.min(nb - 1, Math.floor(T[i] / end * nb))]++;
    }
    let peak = 1;
    for (let b = 0; b < nb; b++) peak = Math.max(peak, cnt[0][b] + cnt[1][b] + cnt[2][b] + cnt[3][b]);
    bands(g, w, top, bottom);
    xTicks(g, w, top, bottom, true);
    const bw = (w - ML - MR) / nb;
    for (let b = 0; b < nb; b++) {
      let y = bottom;
      for (const o of [0, 2, 1, 3]) {
        const hgt = (bottom - top) * cnt[o][b] / peak;
        g.fillStyle = COL[o]; g.globalAlpha = o === 0 ? 0.5 : 0.95;
        g.fillRect(ML + b * bw, y - hgt, Math.max(1, bw - 1), hgt); y -= hgt;
      }
    }
    g.globalAlpha = 1; g.fillStyle = "#6b7280"; g.textAlign = "right";
    g.fillText("ops", ML - 8, top + 2);
    g.fillText("per " + fmt(end / nb), ML - 8, top + 17);
    g.fillText("peak " + peak, ML - 8, top + 32);
  }

  function drawSamples() {
    const box = document.getElementById("samples");
    if (!box.children.length) for (const s of META.samples) { const c = document.createElement("canvas"); box.appendChild(c); }
    META.samples.forEach((s, k) => {
      const extra = (lines(s.name, BOLD).length - 1) * LINE;
      const c = box.children[k], H = 64 + extra, top = 8, bottom = H - 8, [g, w] = setup(c, H);
      let mn = Math.min(...s.v), mx = Math.max(...s.v);
      if (mx === mn) { mx += 1; mn -= 1; }
      bands(g, w, top, bottom);
      g.strokeStyle = "#374151"; g.lineWidth = 1.5; g.beginPath();
      s.at.forEach((at, i) => { const x = X(w, at), y = bottom - (bottom - top) * (s.v[i] - mn) / (mx - mn); i ? g.lineTo(x, y) : g.moveTo(x, y); });
      g.stroke();
      g.fillStyle = "#374151"; g.textAlign = "right";
      write(g, s.name, BOLD, ML - 8, top + 6);
      g.fillStyle = "#6b7280";
      write(g, +Math.max(...s.v).toPrecision(4) + " max", FONT, ML - 8, top + 22 + extra);
      write(g, +Math.min(...s.v).toPrecision(4) + " min", FONT, ML - 8, top + 38 + extra);
    });
  }

  function draw() {
    const t0 = performance.now();
    gutter(); drawLanes(); drawScatter(); drawRate(); drawSamples();
    document.getElementById("drawn").textContent = "Drawn in " + Math.round(performance.now() - t0) + " ms.";
  }
  draw();
  let pending = 0;
  window.addEventListener("resize", () => { clearTimeout(pending); pending = setTimeout(draw, 100); });

  const tip = document.getElementById("tip"), sc = document.getElementById("scatter");
  // nearest is the op drawn nearest the pointer, within 8px, or -1.
  function nearest(ev) {
    const r = sc.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
    let best = -1, bd = 64;
    for (let i = 0; i < N; i++) {
      if (kind >= 0 && K[i] !== kind) continue;
      const dx = X(scatterW, T[i]) - mx, dy = Y(L[i]) - my, d = dx * dx + dy * dy;
      if (d < bd || (d === bd && OC[i] > 0)) { bd = d; best = i; }
    }
    return best;
  }
  const describe = i => "op " + ID[i] + " · " + META.kinds[K[i]] + " · " + OUT[OC[i]] + " · latency " + fmt(L[i]) +
    " · intended at " + fmt(T[i]) + (E[i] >= 0 ? " · " + META.errs[E[i]] : "");
  sc.addEventListener("mousemove", ev => {
    const best = nearest(ev);
    if (best < 0) { tip.style.display = "none"; return; }
    tip.textContent = describe(best);
    tip.style.display = "block"; tip.style.left = (ev.clientX + 14) + "px"; tip.style.top = (ev.clientY + 14) + "px";
  });
  // Clicking an op shows its log records (ReportOptions.OpLogs) under the chart.
  const oplog = document.createElement("pre");
  oplog.className = "oplog"; oplog.hidden = true;
  sc.parentNode.insertBefore(oplog, document.getElementById("samples"));
  sc.addEventListener("click", ev => {
    const best = nearest(ev);
    if (best < 0) { oplog.hidden = true; return; }
    const lines = LOGS[ID[best]];
    oplog.textContent = describe(best) + "\n" + (lines ? lines.join("\n") :
      Object.keys(LOGS).length ? "no log record carries its trace ID" : "no log records in this report (ReportOptions.OpLogs)");
    oplog.hidden = false;
  });
  sc.addEventListener("mouseleave", () => { tip.style.display = "none"; });
})();
</script>
</body>
</html>
`
