// Calls to the server's /v1 API with the key the user entered (kept in this browser's localStorage).

const KEY_STORAGE = "thinkserve.apiKey";

export const apiKey = {
  get: () => localStorage.getItem(KEY_STORAGE) || "",
  set: (key) => key ? localStorage.setItem(KEY_STORAGE, key) : localStorage.removeItem(KEY_STORAGE),
};

export function headers() {
  const result = { "content-type": "application/json", "anthropic-version": "2023-06-01" };
  if (apiKey.get()) result["x-api-key"] = apiKey.get();
  return result;
}

// An error in Anthropic's envelope {"type":"error","error":{"type","message"},"request_id"}, from an HTTP
// response or from an `event: error` in a stream.
export class ApiError extends Error {
  constructor(status, envelope) {
    const error = envelope?.error || { type: "unknown_error", message: JSON.stringify(envelope) };
    super(error.message);
    this.status = status;
    this.type = error.type;
    this.requestId = envelope?.request_id;
  }
}

async function errorFrom(response) {
  const text = await response.text();
  try {
    return new ApiError(response.status, JSON.parse(text));
  } catch {
    return new ApiError(response.status, { error: { type: `HTTP ${response.status}`, message: text } });
  }
}

export async function getJson(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

export async function postJson(path, body) {
  const response = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body) });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

// POSTs a streaming request; returns the response whose body is the event stream, or throws its ApiError.
export async function postStream(path, body, signal) {
  const response = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body), signal });
  if (!response.ok) throw await errorFrom(response);
  return response;
}
