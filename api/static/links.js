// How the live view reaches a realtime session: WebRTC (the default, as OpenAI's browser clients do) or a
// WebSocket (the fallback). Both carry the same GA Realtime JSON events; they differ in how audio travels.
//
// - WebRtcLink: the microphone is a media track, the reply is the remote track played by an <audio>
//   element, events ride the `oai-events` data channel. Handshake: POST the SDP offer to
//   /v1/realtime/calls with the client secret as Bearer; the body of the 201 is the answer. The server
//   stops the outgoing track itself on barge-in (output_audio_buffer.cleared).
// - WebSocketLink: PCM16 24 kHz in base64 events both ways; this page schedules the reply audio itself,
//   so on barge-in it stops playback and tells the server what was heard (conversation.item.truncate).
//   The secret travels as a subprotocol: ["realtime", "openai-insecure-api-key.<ek_...>"].
// Plain browser APIs, no SDK and no build step: the console stays one folder of static files.

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

async function errorOf(response) {
  try { return (await response.json()).error.message; } catch { return `HTTP ${response.status}`; }
}

export class WebRtcLink {
  constructor({ callsUrl, onEvent, audio }) {
    this.name = "webrtc";
    this.callsUrl = callsUrl;
    this.onEvent = onEvent;
    this.audio = audio;
  }

  async connect(secret, microphone) {
    this.pc = new RTCPeerConnection({ iceServers: [] });
    this.pc.ontrack = (event) => { this.audio.srcObject = event.streams[0]; this.audio.play().catch(() => {}); };
    for (const track of microphone.getAudioTracks()) this.pc.addTrack(track, microphone);
    this.channel = this.pc.createDataChannel("oai-events");
    this.channel.onmessage = (event) => this.onEvent(JSON.parse(event.data));
    const open = new Promise((resolve, reject) => {
      this.channel.onopen = resolve;
      this.pc.onconnectionstatechange = () => {
        if (this.pc && this.pc.connectionState === "failed") reject(new Error("the WebRTC connection failed (ICE)"));
      };
      setTimeout(() => reject(new Error("the WebRTC data channel did not open within 15 s")), 15000);
    });
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const response = await fetch(this.callsUrl, {
      method: "POST", body: this.pc.localDescription.sdp,
      headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${secret}` },
    });
    if (!response.ok) throw new Error(`POST ${this.callsUrl}: ${await errorOf(response)}`, { cause: response.status });
    this.callUrl = response.headers.get("Location");
    await this.pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    await open;
    this.channel.onclose = () => this.onClose && this.onClose("data channel closed");
  }

  send(event) { if (this.channel && this.channel.readyState === "open") this.channel.send(JSON.stringify(event)); }

  /** Inbound audio so far, from the peer connection's own counters (what the browser decoded). */
  async inbound() {
    if (!this.pc) return null;
    let seconds = 0;
    (await this.pc.getStats()).forEach((r) => { if (r.type === "inbound-rtp" && r.kind === "audio") seconds += r.totalSamplesDuration || 0; });
    return seconds;
  }

  close() {
    if (this.channel) this.channel.onclose = null;
    if (this.pc) this.pc.close();
    this.pc = null;
  }
}

export class WebSocketLink {
  constructor({ url, onEvent, onPlayed }) {
    this.name = "websocket";
    this.url = url;
    this.onEvent = onEvent;
    this.onPlayed = onPlayed; // (ms of reply audio that finished playing)
    this.sources = [];
  }

  async connect(secret, microphone) {
    this.context = new AudioContext({ sampleRate: RATE });
    await this.context.audioWorklet.addModule("/console/static/pcm-worklet.js");
    this.capture = new AudioWorkletNode(this.context, "pcm-capture");
    this.context.createMediaStreamSource(microphone).connect(this.capture);
    this.playhead = this.context.currentTime;
    this.ws = new WebSocket(this.url, ["realtime", `openai-insecure-api-key.${secret}`]);
    await new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error(`cannot open ${this.url}`));
    });
    this.ws.onmessage = (event) => this.onMessage(JSON.parse(event.data));
    this.ws.onclose = (event) => this.onClose && this.onClose(`closed (${event.code})`);
    this.capture.port.onmessage = (event) => {
      this.send({ type: "input_audio_buffer.append", audio: toBase64(floatToPcm16(event.data)) });
    };
  }

  /** The session's audio is PCM here; ask for it explicitly (WebRTC negotiates Opus on its own). */
  sessionAudio() {
    return { input: { format: { type: "audio/pcm", rate: RATE } }, output: { format: { type: "audio/pcm", rate: RATE } } };
  }

  send(event) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(event)); }

  onMessage(event) {
    if (event.type === "input_audio_buffer.speech_started") this.bargeIn();
    if (event.type === "response.output_audio.delta") event.playAt = this.play(event.item_id, pcm16ToFloat(event.delta));
    this.onEvent(event);
  }

  /** Queue reply audio after what is already scheduled; returns when (performance.now() ms) it starts. */
  play(itemId, samples) {
    const buffer = this.context.createBuffer(1, samples.length, RATE);
    buffer.copyToChannel(samples, 0);
    const node = this.context.createBufferSource();
    node.buffer = buffer;
    node.connect(this.context.destination);
    const at = Math.max(this.context.currentTime, this.playhead);
    node.start(at);
    this.playhead = at + buffer.duration;
    if (this.currentItem !== itemId) { this.currentItem = itemId; this.itemStart = at; }
    const entry = { node, duration: buffer.duration };
    this.sources.push(entry);
    node.onended = () => {
      this.sources = this.sources.filter((s) => s !== entry);
      this.onPlayed(Math.round(entry.duration * 1000));
    };
    return performance.now() + (at - this.context.currentTime) * 1000;
  }

  /** The user spoke over the reply: stop it now and keep in the history only what was heard. */
  bargeIn() {
    if (!this.sources.length) return;
    const heardMs = Math.max(0, Math.round((this.context.currentTime - this.itemStart) * 1000));
    for (const { node } of this.sources) { node.onended = null; try { node.stop(); } catch { /* over */ } }
    this.sources = [];
    this.playhead = this.context.currentTime;
    this.send({ type: "conversation.item.truncate", item_id: this.currentItem, content_index: 0, audio_end_ms: heardMs });
    this.onEvent({ type: "console.interrupted", item_id: this.currentItem, audio_end_ms: heardMs });
  }

  close() {
    if (this.ws) { this.ws.onclose = null; this.ws.close(); }
    this.ws = null;
    if (this.context) this.context.close();
  }
}
