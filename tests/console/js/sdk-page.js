// The browser test page: the official @openai/agents-realtime SDK (its UMD bundle, window.OpenAIAgentsRealtime)
// in a RealtimeSession, as an app would use it, over either transport. Everything the test asserts on is
// recorded in `harness.state`; the page holds no API key: it asks its backend for an `ek_` secret.
/* global OpenAIAgentsRealtime */
const { RealtimeAgent, RealtimeSession, OpenAIRealtimeWebSocket, OpenAIRealtimeWebRTC } = OpenAIAgentsRealtime;

const state = {
  connected: false, serverEvents: [], clientEvents: [], errors: [], audioBytes: 0, audioChunks: 0, interrupted: 0,
  spoken: [], history: [], firstAudioAt: null, speechStoppedAt: null, rtc: null,
};

/** What the SDK sends (audio appends aside): its tool outputs and response requests, among others. */
function recordSent(event) {
  if (event.type === "input_audio_buffer.append") return;
  const kept = { type: event.type, at: performance.now() };
  if (event.item) kept.item = { type: event.item.type, call_id: event.item.call_id, output: event.item.output };
  if (event.item_id) kept.item_id = event.item_id;
  state.clientEvents.push(kept);
}

function record(event) {
  const kept = { type: event.type, at: performance.now() };
  for (const key of ["item_id", "transcript", "name", "arguments", "response_id", "audio_end_ms"]) {
    if (event[key] !== undefined) kept[key] = event[key];
  }
  if (event.item) kept.item = { type: event.item.type, role: event.item.role, name: event.item.name, output: event.item.output, status: event.item.status };
  if (event.response) kept.status = event.response.status;
  if (event.error) kept.error = event.error.message || JSON.stringify(event.error);
  if (event.type === "response.output_audio_transcript.delta") kept.delta = event.delta;
  state.serverEvents.push(kept);
  if (event.type === "input_audio_buffer.speech_stopped") state.speechStoppedAt = kept.at;
  if ((event.type === "response.output_audio.delta" || event.type === "output_audio_buffer.started") && state.firstAudioAt == null) {
    state.firstAudioAt = kept.at;
  }
}

function toPcm16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32768)));
  return out.buffer;
}

async function scriptedMic(context) {
  // Worklet module loads bypass Playwright's request routing; a blob URL of the fetched source does not.
  const source = await (await fetch("scripted-mic.js")).text();
  await context.audioWorklet.addModule(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
  const device = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
  });
  const node = new AudioWorkletNode(context, "scripted-mic");
  const destination = context.createMediaStreamDestination();
  context.createMediaStreamSource(device).connect(node);
  node.connect(destination);
  return { node, stream: destination.stream, device };
}

async function rtcStats(transport) {
  const pc = transport.connectionState && transport.connectionState.peerConnection;
  if (!pc) return null;
  const stats = { inboundBytes: 0, inboundEnergy: 0, inboundSeconds: 0, outboundBytes: 0 };
  (await pc.getStats()).forEach((report) => {
    if (report.type === "inbound-rtp" && report.kind === "audio") {
      stats.inboundBytes += report.bytesReceived || 0;
      stats.inboundEnergy += report.totalAudioEnergy || 0;
      stats.inboundSeconds += report.totalSamplesDuration || 0;
    }
    if (report.type === "outbound-rtp" && report.kind === "audio") stats.outboundBytes += report.bytesSent || 0;
  });
  return stats;
}

const harness = {
  state,
  /** Connect with options {transport: "websocket"|"webrtc", url, instructions}; returns when connected. */
  async start(options) {
    const response = await fetch("/__test_backend__/client_secret", { method: "POST" });
    const secret = await response.json();
    if (!response.ok) throw new Error(`the backend could not mint a secret: ${JSON.stringify(secret)}`);
    this.context = new AudioContext({ sampleRate: 24000 });
    this.mic = await scriptedMic(this.context);
    const agent = new RealtimeAgent({ name: "Assistant", instructions: options.instructions || "Answer briefly." });
    const audioElement = document.createElement("audio");
    audioElement.autoplay = true;
    document.body.append(audioElement);
    this.transport = options.transport === "webrtc"
      ? new OpenAIRealtimeWebRTC({ baseUrl: options.url, mediaStream: this.mic.stream, audioElement })
      : new OpenAIRealtimeWebSocket({ url: options.url });
    const send = this.transport.sendEvent.bind(this.transport);
    this.transport.sendEvent = (event) => { recordSent(event); return send(event); };
    this.session = new RealtimeSession(agent, { transport: this.transport, model: "voicechain" });
    this.session.on("transport_event", record);
    this.session.on("error", (e) => {
      const error = e.error && e.error.error ? e.error.error : e.error; // a server `error` event, or an Error
      state.errors.push((error && error.message) || JSON.stringify(error));
    });
    this.session.on("audio", (e) => { state.audioBytes += e.data.byteLength; state.audioChunks += 1; });
    this.session.on("audio_interrupted", () => { state.interrupted += 1; });
    this.session.on("history_updated", (history) => {
      state.history = history.map((item) => ({
        type: item.type, role: item.role, name: item.name, output: item.output, status: item.status,
        text: (item.content || []).map((c) => c.transcript || c.text || "").join(" "),
      }));
    });
    this.mic.node.port.onmessage = (event) => {
      if (event.data.spoken) state.spoken.push(event.data.spoken);
      if (event.data.pcm && options.transport !== "webrtc" && state.connected) this.session.sendAudio(toPcm16(event.data.pcm));
    };
    await this.session.connect({ apiKey: secret.value });
    state.connected = true;
  },
  /** Say spans [start_s, end_s) of the fake microphone's recording, now. */
  say(spans) { this.mic.node.port.postMessage({ play: spans }); },
  async stats() { return this.transport instanceof OpenAIRealtimeWebRTC ? rtcStats(this.transport) : null; },
  close() { if (this.session) this.session.close(); },
};

window.harness = harness;
