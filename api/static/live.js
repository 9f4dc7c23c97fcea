// Live talk: microphone -> PCM16 24 kHz -> the realtime pool (OpenAI Realtime GA events over WebSocket),
// reply audio -> Web Audio. Barge-in: when the server hears speech while a reply plays, playback stops
// and the item is truncated to what was actually heard (conversation.item.truncate).
//
// Credentials: the page never holds an API key for this view. It asks the API for a short-lived,
// single-use client secret (POST /console/realtime-secret) and passes it to the pool as a WebSocket
// subprotocol, as OpenAI's browser convention does: ["realtime", "openai-insecure-api-key.<ek_...>"].

const RATE = 24000;

function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function floatToPcm16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32768)));
  return new Uint8Array(out.buffer);
}

function pcm16ToFloat(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const ints = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
  const out = new Float32Array(ints.length);
  for (let i = 0; i < ints.length; i++) out[i] = ints[i] / 32768;
  return out;
}

export class LiveTalk {
  constructor(doc) {
    this.doc = doc;
    this.log = doc.getElementById("live-transcript");
    this.statusEl = doc.getElementById("live-status");
    this.stats = { replyAudioMs: 0, userTranscripts: [], assistantTranscripts: [], toolCalls: [], latenciesMs: [], errors: [] };
    this.lines = new Map(); // item id -> <li> of the assistant's transcript
    this.sources = [];
    doc.getElementById("live-start").addEventListener("click", () => this.start().catch((e) => this.fail(e)));
    doc.getElementById("live-stop").addEventListener("click", () => this.stop());
  }

  status(text) { this.statusEl.textContent = text; this.statusEl.dataset.state = text; }

  fail(error) {
    this.stats.errors.push(String(error.message || error));
    this.line("error", String(error.message || error));
    this.status("error");
    this.stop();
  }

  line(kind, text, id) {
    const li = this.doc.createElement("li");
    li.className = kind;
    li.textContent = text;
    if (id) li.dataset.itemId = id;
    this.log.append(li);
    li.scrollIntoView({ block: "nearest" });
    return li;
  }

  async start() {
    this.status("connecting");
    this.doc.getElementById("live-start").disabled = true;
    this.doc.getElementById("live-stop").disabled = false;
    const config = await (await fetch("/console/config")).json();
    const response = await fetch("/console/realtime-secret", { method: "POST" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
    const secret = body.value;

    this.context = new AudioContext({ sampleRate: RATE });
    await this.context.audioWorklet.addModule("/console/static/pcm-worklet.js");
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    const source = this.context.createMediaStreamSource(this.stream);
    this.capture = new AudioWorkletNode(this.context, "pcm-capture");
    source.connect(this.capture);
    this.playhead = this.context.currentTime;

    const url = `${config.realtime_url}?model=${encodeURIComponent(config.model || "voicechain")}`;
    this.ws = new WebSocket(url, ["realtime", `openai-insecure-api-key.${secret}`]);
    this.ws.onopen = () => {
      this.send({ type: "session.update", session: {
        type: "realtime", output_modalities: ["audio"],
        audio: {
          input: { format: { type: "audio/pcm", rate: RATE }, turn_detection: { type: "server_vad" },
                   transcription: { model: "whisper-1" } },
          output: { format: { type: "audio/pcm", rate: RATE } },
        },
      } });
      this.capture.port.onmessage = (event) => {
        if (this.ws && this.ws.readyState === WebSocket.OPEN) {
          this.send({ type: "input_audio_buffer.append", audio: toBase64(floatToPcm16(event.data)) });
        }
      };
      this.status("listening");
    };
    this.ws.onmessage = (event) => this.onEvent(JSON.parse(event.data));
    this.ws.onclose = (event) => { if (this.ws) this.status(`closed (${event.code})`); this.cleanup(); };
    this.ws.onerror = () => this.stats.errors.push("websocket error");
  }

  send(event) { this.ws.send(JSON.stringify(event)); }

  onEvent(event) {
    switch (event.type) {
      case "input_audio_buffer.speech_started":
        this.status("hearing you");
        this.bargeIn();
        break;
      case "input_audio_buffer.speech_stopped":
        this.turnStarted = performance.now();
        this.firstAudio = null;
        this.status("thinking");
        break;
      case "conversation.item.input_audio_transcription.completed":
        this.stats.userTranscripts.push(event.transcript);
        this.line("user", `you: ${event.transcript}`, event.item_id);
        break;
      case "response.output_audio.delta":
        if (this.turnStarted && this.firstAudio == null) {
          this.firstAudio = performance.now() - this.turnStarted;
          this.stats.latenciesMs.push(Math.round(this.firstAudio));
          this.doc.getElementById("live-latency").textContent = `${Math.round(this.firstAudio)} ms to first audio`;
        }
        this.play(event.item_id, pcm16ToFloat(event.delta));
        this.status("speaking");
        break;
      case "response.output_audio_transcript.delta": {
        let li = this.lines.get(event.item_id);
        if (!li) { li = this.line("assistant", "agent: ", event.item_id); this.lines.set(event.item_id, li); }
        li.textContent += event.delta;
        break;
      }
      case "response.output_audio_transcript.done":
        this.stats.assistantTranscripts.push(event.transcript);
        break;
      case "response.function_call_arguments.done":
        this.stats.toolCalls.push({ name: event.name, arguments: event.arguments });
        this.line("tool", `tool ${event.name}(${event.arguments})`, event.item_id);
        break;
      case "response.done": {
        const usage = event.response && event.response.usage;
        if (event.response && event.response.status !== "completed") this.line("tool", `response ${event.response.status}`);
        if (usage) this.doc.getElementById("live-latency").title = `tokens: ${usage.total_tokens}`;
        this.status("listening");
        break;
      }
      case "error":
        this.stats.errors.push(event.error.message);
        this.line("error", `error: ${event.error.message}`);
        break;
      default:
        break;
    }
  }

  play(itemId, samples) {
    const buffer = this.context.createBuffer(1, samples.length, RATE);
    buffer.copyToChannel(samples, 0);
    const node = this.context.createBufferSource();
    node.buffer = buffer;
    node.connect(this.context.destination);
    const at = Math.max(this.context.currentTime, this.playhead);
    node.start(at);
    this.playhead = at + buffer.duration;
    const entry = { node, itemId, start: at, duration: buffer.duration };
    this.sources.push(entry);
    node.onended = () => {
      this.stats.replyAudioMs += Math.round(entry.duration * 1000);
      this.doc.getElementById("live-heard").textContent = String(this.stats.replyAudioMs);
      this.sources = this.sources.filter((s) => s !== entry);
    };
    this.current = itemId;
    this.itemStart = this.itemStart && this.currentItem === itemId ? this.itemStart : at;
    this.currentItem = itemId;
  }

  bargeIn() {
    if (!this.sources.length) return;
    const now = this.context.currentTime;
    const heardMs = Math.max(0, Math.round((now - this.itemStart) * 1000));
    for (const { node } of this.sources) { node.onended = null; try { node.stop(); } catch { /* already over */ } }
    this.sources = [];
    this.playhead = now;
    this.send({ type: "conversation.item.truncate", item_id: this.currentItem, content_index: 0, audio_end_ms: heardMs });
    this.line("tool", `interrupted after ${heardMs} ms`);
  }

  stop() {
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(); this.status("stopped"); }
    this.cleanup();
  }

  cleanup() {
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this.doc.getElementById("live-start").disabled = false;
    this.doc.getElementById("live-stop").disabled = true;
  }
}
