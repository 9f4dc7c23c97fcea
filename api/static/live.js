// Live talk: a voice playground. Connects over WebRTC by default and falls back to a WebSocket when the
// API offers no WebRTC calls (or the peer connection cannot be made); shows a live transcript of both
// sides, tool calls and handoffs as they happen, and the voice-to-voice latency of every turn.
//
// Credentials: the page never holds an API key for this view. It asks the API for a short-lived,
// single-use client secret (POST /console/realtime-secret) for each connection attempt.
//
// Voice-to-voice latency of a turn: from the server's end-of-speech event (input_audio_buffer.speech_stopped)
// to the moment the reply starts to sound here: over WebRTC when the server starts the outgoing track
// (output_audio_buffer.started), over a WebSocket when the first reply chunk is scheduled to play.
import { WebRtcLink, WebSocketLink } from "./links.js";

const TRANSPORT_KEY = "voicechain.transport";

export class LiveTalk {
  constructor(doc) {
    this.doc = doc;
    this.$ = (id) => doc.getElementById(id);
    this.log = this.$("live-transcript");
    this.stats = {
      transport: null, replyAudioMs: 0, userTranscripts: [], assistantTranscripts: [], toolCalls: [],
      handoffs: [], latenciesMs: [], interruptions: 0, errors: [], fallback: null,
    };
    this.lines = new Map(); // item id -> transcript <li>
    this.calls = new Map(); // call_id (or a server-run mcp_call item id) -> tool <li>
    const choice = new URLSearchParams(location.hash.split("?")[1] || "").get("transport");
    this.$("live-transport").value = choice || sessionStorage.getItem(TRANSPORT_KEY) || "auto";
    this.$("live-transport").addEventListener("change", (e) => sessionStorage.setItem(TRANSPORT_KEY, e.target.value));
    this.$("live-start").addEventListener("click", () => this.start().catch((e) => this.fail(e)));
    this.$("live-stop").addEventListener("click", () => this.stop());
  }

  status(text) { const el = this.$("live-status"); el.textContent = text; el.dataset.state = text; }

  fail(error) {
    const message = String(error.message || error);
    this.stats.errors.push(message);
    this.line("error", message);
    this.status("error");
    this.stop(false);
  }

  line(kind, text, id) {
    const li = this.doc.createElement("li");
    li.className = kind;
    if (id) li.dataset.itemId = id;
    const who = this.doc.createElement("span");
    who.className = "who";
    who.textContent = { user: "you", assistant: "agent", tool: "tool", handoff: "handoff", note: "", error: "error" }[kind] ?? kind;
    const body = this.doc.createElement("span");
    body.className = "body";
    body.textContent = text;
    li.append(who, body);
    this.log.append(li);
    li.scrollIntoView({ block: "nearest" });
    return li;
  }

  async secret() {
    const response = await fetch("/console/realtime-secret", { method: "POST" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
    return body.value;
  }

  async start() {
    this.status("connecting");
    this.$("live-start").disabled = true;
    this.$("live-stop").disabled = false;
    const config = await (await fetch("/console/config")).json();
    const firstSecret = await this.secret(); // fails fast when the live view is closed
    this.microphone = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    const wanted = this.$("live-transport").value;
    const onEvent = (event) => this.onEvent(event);
    if (wanted !== "websocket") {
      const link = new WebRtcLink({ callsUrl: new URL(config.calls_url, location.href).href, onEvent, audio: this.$("live-audio") });
      try {
        await this.open(link, firstSecret, config);
        return;
      } catch (error) {
        link.close();
        if (wanted === "webrtc") throw error;
        this.stats.fallback = String(error.message || error);
        this.line("note", `WebRTC unavailable (${this.stats.fallback}); using a WebSocket`);
      }
    }
    const url = `${config.realtime_url}?model=${encodeURIComponent(config.model)}`;
    const link = new WebSocketLink({ url, onEvent, onPlayed: (ms) => this.heard(ms) });
    await this.open(link, wanted === "websocket" ? firstSecret : await this.secret(), config);
  }

  async open(link, secret, config) {
    this.link = link;
    link.onClose = (why) => { if (this.link === link) { this.status(why); this.stop(false); } };
    await link.connect(secret, this.microphone);
    this.stats.transport = link.name;
    this.$("live-via").textContent = link.name === "webrtc" ? "WebRTC" : "WebSocket";
    this.$("live-via").dataset.transport = link.name;
    const audio = { input: { turn_detection: { type: "server_vad" }, transcription: { model: "whisper-1" } } };
    if (link.sessionAudio) {
      const formats = link.sessionAudio();
      audio.input.format = formats.input.format;
      audio.output = formats.output;
    }
    link.send({ type: "session.update", session: { type: "realtime", output_modalities: ["audio"], audio } });
    this.status("listening");
  }

  heard(ms) {
    this.stats.replyAudioMs += ms;
    this.$("live-heard").textContent = String(this.stats.replyAudioMs);
  }

  onEvent(event) {
    const handler = this.handlers[event.type];
    if (handler) handler.call(this, event);
  }

  turnLatency(at) {
    if (this.turnEnded == null || this.turnMeasured) return;
    this.turnMeasured = true;
    const ms = Math.max(0, Math.round(at - this.turnEnded));
    this.stats.latenciesMs.push(ms);
    this.$("live-latency").textContent = `${ms} ms`;
    const li = this.doc.createElement("li");
    li.textContent = `${ms} ms`;
    this.$("live-turns").append(li);
  }

  // A call is keyed by its call_id (a function_call, answered by a function_call_output item) or, for a
  // tool the server runs itself, by its mcp_call item's id (the item carries the output when it is done).
  toolCall(key, item) {
    if (this.calls.has(key)) return;
    const handoff = item.name.startsWith("transfer_to_");
    const li = this.line(handoff ? "handoff" : "tool", handoff ? `${item.name.slice(12)} …` : `${item.name}(${item.arguments}) …`, item.id);
    li.dataset.name = item.name;
    this.calls.set(key, { li, item, handoff });
  }

  toolArguments(key, item) {
    const call = this.calls.get(key);
    if (!call) return;
    call.item = item;
    if (!call.handoff) call.li.querySelector(".body").textContent = `${item.name}(${item.arguments}) …`;
    this.stats.toolCalls.push({ name: item.name, arguments: item.arguments });
  }

  toolOutput(key, output) {
    const call = this.calls.get(key);
    if (!call) return; // the output of a call made elsewhere (a side-band controller, say)
    const body = call.li.querySelector(".body");
    if (call.handoff) {
      let to = call.item.name.slice(12);
      try { to = JSON.parse(output).assistant || to; } catch { /* plain text */ }
      body.textContent = `handed off to ${to}`;
      this.stats.handoffs.push(to);
      this.$("live-agent").textContent = to;
    } else {
      body.textContent = `${call.item.name}(${call.item.arguments}) → ${output}`;
    }
    call.li.classList.add("done");
  }

  assistantLine(itemId) {
    let li = this.lines.get(itemId);
    if (!li) { li = this.line("assistant", "", itemId); this.lines.set(itemId, li); }
    return li;
  }

  stop(announce = true) {
    if (this.link) { const link = this.link; this.link = null; link.close(); if (announce) this.status("stopped"); }
    if (this.microphone) for (const track of this.microphone.getTracks()) track.stop();
    this.microphone = null;
    this.$("live-start").disabled = false;
    this.$("live-stop").disabled = true;
  }
}

LiveTalk.prototype.handlers = {
  "session.updated"(event) {
    const instructions = event.session && event.session.instructions;
    if (instructions) this.$("live-agent").title = instructions;
  },
  "input_audio_buffer.speech_started"(event) {
    this.status("hearing you");
    let li = this.lines.get(event.item_id);
    if (!li) { li = this.line("user", "…", event.item_id); li.classList.add("pending"); this.lines.set(event.item_id, li); }
  },
  "input_audio_buffer.speech_stopped"() {
    this.turnEnded = performance.now();
    this.turnMeasured = false;
    this.status("thinking");
  },
  "conversation.item.input_audio_transcription.delta"(event) {
    const li = this.lines.get(event.item_id) || this.line("user", "", event.item_id);
    this.lines.set(event.item_id, li);
    const body = li.querySelector(".body");
    body.textContent = (li.classList.contains("pending") ? "" : body.textContent) + event.delta;
    li.classList.remove("pending");
  },
  "conversation.item.input_audio_transcription.completed"(event) {
    const li = this.lines.get(event.item_id) || this.line("user", "", event.item_id);
    this.lines.set(event.item_id, li);
    li.querySelector(".body").textContent = event.transcript;
    li.classList.remove("pending");
    this.stats.userTranscripts.push(event.transcript);
  },
  "response.output_audio.delta"(event) {
    this.turnLatency(event.playAt ?? performance.now());
    this.status("speaking");
  },
  "output_audio_buffer.started"(event) {
    this.replyStarted = performance.now();
    this.turnLatency(this.replyStarted);
    this.status("speaking");
  },
  "output_audio_buffer.stopped"() {
    if (this.replyStarted != null) this.heard(Math.round(performance.now() - this.replyStarted));
    this.replyStarted = null;
    this.status("listening");
  },
  "output_audio_buffer.cleared"(event) {
    if (this.replyStarted != null) this.heard(Math.round(performance.now() - this.replyStarted));
    this.replyStarted = null;
    this.handlers["console.interrupted"].call(this, event);
  },
  "console.interrupted"(event) {
    this.stats.interruptions += 1;
    const li = this.lines.get(event.item_id);
    if (li) li.classList.add("interrupted");
    else this.line("note", "reply interrupted");
  },
  "response.output_audio_transcript.delta"(event) {
    const body = this.assistantLine(event.item_id).querySelector(".body");
    body.textContent += event.delta;
  },
  "response.output_audio_transcript.done"(event) {
    this.stats.assistantTranscripts.push(event.transcript);
  },
  "conversation.item.truncated"(event) {
    const li = this.lines.get(event.item_id);
    if (li) li.title = `heard ${event.audio_end_ms} ms before the interruption`;
  },
  "response.output_item.added"(event) {
    if (event.item && event.item.type === "mcp_call") this.toolCall(event.item.id, event.item);
  },
  "response.output_item.done"(event) {
    const item = event.item || {};
    if (item.type === "function_call") {
      this.toolCall(item.call_id, item);
      this.toolArguments(item.call_id, item);
    } else if (item.type === "mcp_call") {
      this.toolArguments(item.id, item);
      this.toolOutput(item.id, item.error ? `failed: ${item.error.message}` : item.output);
    }
  },
  "conversation.item.added"(event) {
    if (event.item && event.item.type === "function_call_output") this.toolOutput(event.item.call_id, event.item.output);
  },
  "response.done"(event) {
    const response = event.response || {};
    if (response.status === "failed") this.line("error", `response failed: ${JSON.stringify(response.status_details)}`);
    if (!this.replyStarted) this.status("listening");
  },
  error(event) {
    this.stats.errors.push(event.error.message);
    this.line("error", event.error.message);
  },
};
