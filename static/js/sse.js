// Server-sent events over fetch. EventSource can't be used: it only sends GET, and /v1/messages takes a POST body.

// Yields {event, data} for every event in the response body, as soon as its blank line arrives.
// `data` is the parsed JSON (every Anthropic event carries JSON); `raw` is the data text as sent.
export async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    // The spec allows \r\n, \r and \n line ends; normalising first keeps the splitting simple.
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const parsed = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (parsed) yield parsed;
    }
  }
  const last = parseEvent(buffer.trim());
  if (last) yield last;
}

function parseEvent(chunk) {
  let event = "message";
  const data = [];
  for (const line of chunk.split("\n")) {
    if (!line || line.startsWith(":")) continue;     // a comment line (some servers use them as keep-alives)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  const raw = data.join("\n");
  return { event, raw, data: JSON.parse(raw) };
}
