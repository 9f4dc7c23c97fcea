// Server-Sent Events over fetch: EventSource cannot send the bearer key the jobs API needs.
// Calls onEvent({ id, event, data }) per frame; resolves when the server ends the stream (or on abort).

export async function follow(url, key, onEvent, signal) {
  const response = await fetch(url, { headers: { Authorization: `Bearer ${key}`, Accept: "text/event-stream" }, signal });
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = { id: null, event: "message", data: "" };
      for (const line of frame.split("\n")) {
        if (!line || line.startsWith(":")) continue; // keep-alive comment
        const colon = line.indexOf(":");
        const name = line.slice(0, colon), text = line.slice(colon + 1).replace(/^ /, "");
        if (name === "data") fields.data += (fields.data ? "\n" : "") + text; else if (name in fields) fields[name] = text;
      }
      if (fields.data) onEvent({ ...fields, data: JSON.parse(fields.data) });
    }
  }
}
