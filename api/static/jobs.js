// Jobs view: recent jobs with a bar per stage, the policy verdict and the spoken answer; upload a file.
// Each unfinished job is followed on its own event stream (GET /v1/jobs/{id}/events), and its card is
// redrawn as stages start and finish. A job held for review shows its proposed reply, editable, with
// Approve and Reject (POST /v1/jobs/{id}/approve with optional `text`, /reject with optional `reason`).
// The API key is typed by the user and kept in sessionStorage (this tab only), never in the page source.
import { follow } from "./sse.js";

const KEY = "voicechain.apiKey";
const FINAL = new Set(["succeeded", "failed", "cancelled", "rejected"]);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "style") node.style.cssText = v; else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

export class JobsView {
  constructor(doc) {
    this.doc = doc;
    this.list = doc.getElementById("jobs-list");
    this.status = doc.getElementById("jobs-status");
    this.audioUrls = new Map(); // job id -> object URL, fetched once
    this.streams = new Map(); // job id -> AbortController of its event stream
    this.turns = new Map(); // conversation id -> jobs of it seen in the list
    doc.getElementById("api-key").value = sessionStorage.getItem(KEY) || "";
    doc.getElementById("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, doc.getElementById("api-key").value.trim());
      this.refresh();
    });
    doc.getElementById("upload-form").addEventListener("submit", (event) => { event.preventDefault(); this.upload(); });
  }

  get key() { return sessionStorage.getItem(KEY) || ""; }

  async api(path, init = {}) {
    const response = await fetch(path, { ...init, headers: { ...(init.headers || {}), Authorization: `Bearer ${this.key}` } });
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try { message = (await response.json()).error.message; } catch { /* not JSON */ }
      throw new Error(message);
    }
    return response;
  }

  async upload() {
    const file = this.doc.getElementById("upload-file").files[0];
    const state = this.doc.getElementById("upload-status");
    if (!file) { state.textContent = "choose an audio file first"; return; }
    const form = new FormData();
    form.append("file", file, file.name);
    const agent = this.doc.getElementById("upload-agent").value.trim();
    if (agent) form.append("agent", agent);
    state.textContent = "uploading…";
    try {
      const job = await (await this.api("/v1/jobs", { method: "POST", body: form })).json();
      state.textContent = `submitted ${job.id}`;
      state.dataset.jobId = job.id;
      await this.refresh();
      this.watch(job.id);
    } catch (error) {
      state.textContent = `refused: ${error.message}`;
    }
  }

  async refresh() {
    if (!this.key) { this.status.textContent = "paste an API key to see jobs"; return; }
    try {
      const { data } = await (await this.api("/v1/jobs?limit=20")).json();
      this.render(data);
      for (const job of data) if (!FINAL.has(job.status)) this.watch(job.id);
      this.status.textContent = `${data.length} recent jobs; unfinished ones update live`;
    } catch (error) {
      this.status.textContent = `cannot list jobs: ${error.message}`;
    }
  }

  /** Follow one job's event stream and redraw its card on every event, until the job ends. */
  watch(jobId) {
    if (this.streams.has(jobId)) return;
    const controller = new AbortController();
    this.streams.set(jobId, controller);
    const redraw = () => this.update(jobId);
    follow(`/v1/jobs/${jobId}/events`, this.key, (frame) => {
      const card = this.cardOf(jobId);
      if (card) card.dataset.lastEvent = frame.event;
      redraw();
    }, controller.signal)
      .catch((error) => { if (!controller.signal.aborted) this.status.textContent = `live updates stopped: ${error.message}`; })
      .finally(() => { this.streams.delete(jobId); redraw(); });
  }

  cardOf(jobId) { return this.list.querySelector(`article.job[data-job-id='${jobId}']`); }

  async update(jobId) {
    try {
      const job = await (await this.api(`/v1/jobs/${jobId}`)).json();
      const old = this.cardOf(jobId);
      const fresh = this.card(job, (this.turns.get(job.conversation_id) || [job]).length);
      if (old) {
        const edited = old.querySelector(".review textarea");
        const replacement = fresh.querySelector(".review textarea");
        if (edited && replacement) replacement.value = edited.value; // keep what the reviewer typed
        if (old.dataset.lastEvent) fresh.dataset.lastEvent = old.dataset.lastEvent;
        old.replaceWith(fresh);
      } else {
        this.list.prepend(fresh);
      }
    } catch (error) {
      this.status.textContent = `cannot read job ${jobId}: ${error.message}`;
    }
  }

  render(jobs) {
    this.turns = new Map();
    for (const job of jobs) {
      if (!this.turns.has(job.conversation_id)) this.turns.set(job.conversation_id, []);
      this.turns.get(job.conversation_id).push(job);
    }
    this.list.replaceChildren(...jobs.map((job) => this.card(job, this.turns.get(job.conversation_id).length)));
  }

  review(job) {
    const text = el("textarea", { rows: "3", "aria-label": "proposed reply" });
    text.value = job.reply_text || "";
    const reason = el("input", { type: "text", placeholder: "reason (optional)", class: "reason" });
    const state = el("span", { class: "status" });
    const approve = el("button", { type: "button", class: "approve" }, "Approve");
    const reject = el("button", { type: "button", class: "reject" }, "Reject");
    text.addEventListener("input", () => { approve.textContent = text.value.trim() === (job.reply_text || "").trim() ? "Approve" : "Approve edited"; });
    const act = async (path, body) => {
      approve.disabled = reject.disabled = true;
      state.textContent = "sending…";
      try {
        await this.api(`/v1/jobs/${job.id}/${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        state.textContent = path === "approve" ? "approved" : "rejected";
        this.watch(job.id);
      } catch (error) {
        state.textContent = `refused: ${error.message}`;
        approve.disabled = reject.disabled = false;
      }
    };
    approve.addEventListener("click", () => {
      const edited = text.value.trim();
      act("approve", edited && edited !== (job.reply_text || "").trim() ? { text: edited } : {});
    });
    reject.addEventListener("click", () => act("reject", reason.value.trim() ? { reason: reason.value.trim() } : {}));
    return el("div", { class: "review" },
      el("b", {}, "awaiting approval: edit the reply if needed"), text,
      el("div", { class: "row" }, approve, reason, reject, state));
  }

  card(job, turnsInConversation) {
    const verdict = job.policy.verdict || "–";
    const card = el("article", { class: "job", "data-job-id": job.id, "data-status": job.status },
      el("header", {},
        el("span", { class: `badge ${job.status}` }, job.status),
        el("span", {}, `agent ${job.agent}`),
        el("span", {}, `conversation ${job.conversation_id.slice(0, 12)}… (${turnsInConversation} shown)`),
        el("span", {}, new Date(job.created_at).toLocaleString()),
        el("span", { class: `badge policy ${verdict}`, "data-verdict": verdict }, `policy: ${verdict}`)),
      el("div", { class: "text" }, el("b", {}, "heard: "), job.transcript || "…"),
      el("div", { class: "text" }, el("b", {}, "reply: "), job.spoken_text || job.reply_text || "…"),
      job.policy.reasons.length ? el("div", { class: "hint" }, job.policy.reasons.join("; ")) : null,
      this.timeline(job),
      job.status === "awaiting_approval" ? this.review(job) : null,
      job.error ? el("div", { class: "text", style: "color:#a22" }, job.error) : null);
    if (job.audio_url) card.append(this.player(job));
    return card;
  }

  timeline(job) {
    const origin = Date.parse(job.created_at);
    const ends = job.stages.map((s) => (s.finished_at ? Date.parse(s.finished_at) : Date.now()));
    const span = Math.max(1, ...ends.map((t) => t - origin));
    const box = el("div", { class: "timeline", style: `--rows:${job.stages.length}`, title: "stage timeline" });
    job.stages.forEach((stage, row) => {
      const start = stage.started_at ? Date.parse(stage.started_at) - origin : 0;
      const length = stage.started_at ? (stage.duration_ms ?? (ends[row] - origin - start)) : 0;
      const label = `${stage.name} ${stage.duration_ms != null ? Math.round(stage.duration_ms) + " ms" : stage.status}`;
      box.append(el("div", {
        class: `bar ${stage.name} ${stage.status}`, "data-stage": stage.name, title: `${label} (${stage.queue})`,
        style: `left:${(100 * start) / span}%;width:${Math.max(0.5, (100 * length) / span)}%;top:${row * 20 + 2}px`,
      }, label));
    });
    return box;
  }

  player(job) {
    // <audio src> cannot send the bearer key, so the answer is fetched once and played from a blob URL.
    const audio = el("audio", { controls: "", preload: "auto", "data-job-id": job.id });
    const cached = this.audioUrls.get(job.id);
    if (cached) { audio.src = cached; return audio; }
    this.api(job.audio_url).then((r) => r.blob()).then((blob) => {
      const url = URL.createObjectURL(blob);
      this.audioUrls.set(job.id, url);
      audio.src = url;
    }).catch((error) => audio.replaceWith(el("span", { class: "hint" }, `audio: ${error.message}`)));
    return audio;
  }
}
