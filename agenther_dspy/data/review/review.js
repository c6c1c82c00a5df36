// Renders the review data embedded in #review-data. Every string from the logs reaches the
// page through textContent only, never as markup. One page of runs is in the DOM at a time.
"use strict";
(function () {
  var PAGE_SIZE = 50;
  var data = JSON.parse(document.getElementById("review-data").textContent);
  var records = data.records;
  var state = { status: "", type: "", search: "", page: 0 };

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function add(parent, child) { parent.appendChild(child); return child; }
  // A text cut in the middle arrives as [head, characters cut, tail].
  function cutText(value, cls, tag) {
    var node = el(tag || "div", cls || "text");
    if (Array.isArray(value)) {
      node.appendChild(document.createTextNode(value[0]));
      add(node, el("span", "cut", " … " + value[1].toLocaleString("en") + " characters cut … "));
      node.appendChild(document.createTextNode(value[2]));
    } else {
      node.textContent = value || "";
    }
    return node;
  }
  function plain(value) { return Array.isArray(value) ? value[0] + " … " + value[2] : value || ""; }
  function num(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits || 2);
  }
  function yesNo(value) { return value === true ? "yes" : value === false ? "no" : "–"; }
  function tile(parent, label, value) {
    var node = add(parent, el("div", "tile"));
    add(node, el("b", null, value));
    node.appendChild(document.createTextNode(label));
  }
  function statusOf(r) { return r.status === "accepted" && r.single_judge ? "single_judge" : r.status; }
  function labelled(parent, label, node) { add(parent, el("div", "label", label)); add(parent, node); }

  function header() {
    var kind = data.kind === "evaluation" ? "Evaluation" : "Batch";
    document.getElementById("title").textContent = kind + " review";
    document.getElementById("source").textContent = data.source + " · " + records.length +
      " records · written " + data.generated;
    var notes = document.getElementById("notes");
    data.notes.forEach(function (note) { add(notes, el("li", null, note)); });
    var c = data.counts, counts = document.getElementById("counts");
    tile(counts, "accepted", c.accepted);
    tile(counts, "of them on a single judge", c.single_judge);
    tile(counts, "rejected", c.rejected);
    tile(counts, "skipped", c.skipped);
    tile(counts, "error", c.error);
    if (c.invalid) tile(counts, "invalid", c.invalid);
    if (data.metrics) {
      var m = data.metrics, metrics = document.getElementById("metrics");
      var ci = m.fidelity_ci95 || [];
      tile(metrics, "fidelity [95% interval " + num(ci[0], 3) + ", " + num(ci[1], 3) + "]",
        num(m.fidelity, 3));
      tile(metrics, "acceptance precision", num(m.acceptance_precision));
      tile(metrics, "acceptance recall", num(m.acceptance_recall));
      tile(metrics, "failure-type accuracy", num(m.failure_type_accuracy));
      tile(metrics, "examples", m.examples);
    }
  }

  function options(select, pairs) {
    pairs.forEach(function (pair) {
      var option = add(select, el("option", null, pair[1]));
      option.value = pair[0];
    });
  }

  function controls() {
    var status = document.getElementById("status-filter");
    options(status, [["", "all"], ["accepted-any", "accepted (any)"],
      ["accepted", "accepted by both judges"], ["single_judge", "accepted on a single judge"],
      ["rejected", "rejected"], ["skipped", "skipped"], ["error", "error"], ["invalid", "invalid"]]);
    var type = document.getElementById("type-filter");
    options(type, [["", "all"]].concat(data.failure_types.map(function (t) { return [t, t]; }),
      [["-", "(none)"]]));
    status.addEventListener("change", function () { state.status = status.value; state.page = 0; show(); });
    type.addEventListener("change", function () { state.type = type.value; state.page = 0; show(); });
    var search = document.getElementById("search");
    search.addEventListener("input", function () {
      state.search = search.value.toLowerCase(); state.page = 0; show();
    });
    document.getElementById("prev").addEventListener("click", function () { state.page--; show(); });
    document.getElementById("next").addEventListener("click", function () { state.page++; show(); });
  }

  function matches(r) {
    var s = statusOf(r);
    if (state.status === "accepted-any" && r.status !== "accepted") return false;
    if (state.status && state.status !== "accepted-any" && s !== state.status) return false;
    if (state.type === "-" && r.failure_type) return false;
    if (state.type && state.type !== "-" && r.failure_type !== state.type) return false;
    if (state.search) {
      var hay = (r.id + " " + r.request + " " + plain(r.goal)).toLowerCase();
      if (hay.indexOf(state.search) < 0) return false;
    }
    return true;
  }

  function steps(parent, r) {
    if (!r.steps) return;
    var count = r.steps.filter(function (s) { return !s.gap; }).length;
    var box = add(parent, el("details", "steps"));
    add(box, el("summary", null, "Steps (" + count + (r.steps.some(function (s) { return s.gap; })
      ? " shown" : "") + ")"));
    r.steps.forEach(function (s) {
      if (s.gap) { add(box, el("div", "step cut", "… " + s.gap + " steps cut …")); return; }
      var step = add(box, el("div", "step"));
      var action = add(step, el("div", "action"));
      action.appendChild(document.createTextNode(s.n + ". " + s.action + "("));
      action.appendChild(cutText(s.args, "text", "span"));
      action.appendChild(document.createTextNode(")"));
      if (plain(s.thought)) labelled(step, "thought", cutText(s.thought));
      labelled(step, "observation", cutText(s.observation));
    });
    if (plain(r.final_answer)) labelled(box, "final answer", cutText(r.final_answer));
  }

  function attempts(parent, r) {
    if (!r.attempts.length) return;
    add(parent, el("div", "label", "Attempts"));
    var table = add(parent, el("table", "attempts"));
    var head = add(table, el("tr"));
    ["#", "request", "relabeler: valid, confidence", "second judge: valid, confidence",
      "outcome"].forEach(function (h) { add(head, el("th", null, h)); });
    r.attempts.forEach(function (a) {
      var row = add(table, el("tr", "attempt"));
      add(row, el("td", null, a.n));
      var request = add(row, el("td"));
      add(request, el("div", "text", a.request || "(none)"));
      if (plain(a.rationale)) {
        var why = add(request, el("details"));
        add(why, el("summary", null, "rationale"));
        add(why, cutText(a.rationale));
      }
      add(row, el("td", null, a.valid === undefined ? "–" : yesNo(a.valid) + ", " +
        num(a.confidence) + (a.temperature !== undefined ? " (T " + a.temperature + ")" : "")));
      var judge = add(row, el("td"));
      if (a.judge) {
        add(judge, el("div", null, yesNo(a.judge.valid) + ", " + num(a.judge.confidence)));
        if (plain(a.judge.reason)) add(judge, cutText(a.judge.reason));
      } else {
        judge.textContent = "not asked";
      }
      add(row, el("td", "text", a.outcome));
    });
  }

  function list(parent, label, items) {
    if (!items || !items.length) return;
    add(parent, el("div", "label", label));
    var ul = add(parent, el("ul", "plain"));
    items.forEach(function (item) { add(ul, el("li", "text", item)); });
  }

  function evaluation(parent, r) {
    if (!r.gold) return;
    var side = add(parent, el("div", "side"));
    var gold = add(side, el("div", "gold"));
    add(gold, el("div", "label", "Gold annotation"));
    var g = r.gold;
    add(gold, el("div", null, (g.recoverable ? "recoverable" : "not recoverable") + " · " +
      g.failure_type + (g.severity !== null && g.severity !== undefined
        ? " · severity " + num(g.severity) : "")));
    list(gold, "achievements", g.achievements);
    list(gold, "key facts", g.key_facts);
    list(gold, "must not require", g.must_not_require);
    list(gold, "reference requests", g.references);
    if (g.notes) labelled(gold, "notes", el("div", "text", g.notes));
    var metric = add(side, el("div", "metric"));
    add(metric, el("div", "label", "Metric: score " + num(r.score, 3)));
    var parts = Object.keys(r.components || {}).map(function (k) {
      return k + " " + num(r.components[k]);
    });
    add(metric, el("div", "muted", parts.join(" · ")));
    labelled(metric, "feedback", el("div", "text", r.feedback || "(none)"));
  }

  function card(r) {
    var node = el("article", "run " + r.status);
    var head = add(node, el("div", "run-head"));
    var s = statusOf(r);
    add(head, el("span", "badge " + s, s === "single_judge" ? "accepted · single judge" : r.status));
    if (r.failure_type) add(head, el("span", "badge", r.failure_type));
    var known = function (v) { return v !== null && v !== undefined; };
    add(head, el("span", "muted", "stage " + r.stage + " · confidence " + num(r.confidence) +
      (known(r.relabel_confidence) || known(r.judge_confidence) ? " (relabeler " +
        num(r.relabel_confidence) + ", judge " + num(r.judge_confidence) + ")" : "") +
      (known(r.severity) ? " · severity " + num(r.severity) : "")));
    add(head, el("span", "run-id", r.id));
    if (r.request) {
      labelled(node, r.status === "accepted" ? "New request" : "Best request (not accepted)",
        el("div", "request text" + (r.status === "accepted" ? "" : " not-accepted"), r.request));
    }
    labelled(node, "Decision", el("div", "text", r.reason));
    if (r.goal !== undefined) {
      labelled(node, "Original goal", cutText(r.goal));
      labelled(node, "Why it failed", cutText(r.failure));
    }
    steps(node, r);
    attempts(node, r);
    evaluation(node, r);
    return node;
  }

  function show() {
    var shown = records.filter(matches);
    var pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    state.page = Math.min(Math.max(state.page, 0), pages - 1);
    var start = state.page * PAGE_SIZE, end = Math.min(start + PAGE_SIZE, shown.length);
    var runs = document.getElementById("runs");
    while (runs.firstChild) runs.removeChild(runs.firstChild);
    if (!shown.length) add(runs, el("p", "muted", "No run matches these filters."));
    for (var i = start; i < end; i++) add(runs, card(shown[i]));
    document.getElementById("range").textContent = shown.length
      ? (start + 1) + "–" + end + " of " + shown.length + " (page " + (state.page + 1) + " of " + pages + ")"
      : "0 of 0";
    document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = state.page >= pages - 1;
    window.scrollTo(0, 0);
  }

  header();
  controls();
  show();
})();
