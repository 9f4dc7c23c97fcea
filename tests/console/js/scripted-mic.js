// A scripted microphone: records the fake capture device (Chromium's --use-file-for-fake-audio-capture)
// from the moment it is opened, and outputs only the spans of it the page asks for, when it asks.
//
// Why: Chromium plays the file on its own clock and loops it, so a barge-in would depend on how fast the
// server answered. With this node the page says "play [1.2 s, 3.4 s) of the recording now" (the question)
// and later "play the interruption", right when the reply's audio has started. Between spans it outputs
// silence, as a quiet microphone does. Output goes to a MediaStreamDestination (WebRTC's track) and, in
// ~40 ms batches, to the page (the WebSocket transport's sendAudio).
class ScriptedMic extends AudioWorkletProcessor {
  constructor() {
    super();
    this.store = new Float32Array(sampleRate * 120);
    this.captured = 0;
    this.queue = [];
    this.cursor = null;
    this.batch = new Float32Array(Math.round(sampleRate / 25));
    this.filled = 0;
    this.port.onmessage = (event) => {
      for (const [start, end] of event.data.play) this.queue.push([Math.round(start * sampleRate), Math.round(end * sampleRate)]);
    };
  }

  record(input) {
    const room = this.store.length - this.captured;
    if (room > 0) this.store.set(input.subarray(0, room), this.captured);
    this.captured += input.length;
  }

  fill(out) {
    let i = 0;
    while (i < out.length && this.queue.length) {
      const [start, end] = this.queue[0];
      if (this.cursor == null) this.cursor = start;
      if (this.cursor >= end) { this.queue.shift(); this.cursor = null; this.port.postMessage({ spoken: [start / sampleRate, end / sampleRate] }); continue; }
      const n = Math.min(end, this.captured) - this.cursor;
      if (n <= 0) break; // not recorded yet: the span is still being "said" into the fake device
      const take = Math.min(n, out.length - i);
      out.set(this.store.subarray(this.cursor, this.cursor + take), i);
      i += take;
      this.cursor += take;
    }
  }

  process(inputs, outputs) {
    const input = inputs[0] && inputs[0][0];
    if (input) this.record(input);
    const out = outputs[0][0];
    out.fill(0);
    this.fill(out);
    for (let k = 1; k < outputs[0].length; k++) outputs[0][k].set(out);
    let offset = 0;
    while (offset < out.length) {
      const take = Math.min(out.length - offset, this.batch.length - this.filled);
      this.batch.set(out.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === this.batch.length) { this.port.postMessage({ pcm: this.batch.slice() }); this.filled = 0; }
    }
    return true;
  }
}
registerProcessor("scripted-mic", ScriptedMic);
