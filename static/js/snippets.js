// The current request as a curl command and as a Python SDK script. The key is never written into a snippet:
// both read it from $ANTHROPIC_API_KEY, as Anthropic's own examples do.

const shellQuote = (text) => `'${text.replaceAll("'", `'\\''`)}'`;

// context_management is a beta field: the SDK takes it from client.beta.messages, with the beta named.
const CONTEXT_BETA = "context-management-2025-06-27";

export function curlSnippet(baseUrl, body, hasKey) {
  const lines = [`curl -N ${baseUrl}/v1/messages`,
                 `  -H 'content-type: application/json'`,
                 `  -H 'anthropic-version: 2023-06-01'`];
  if ("context_management" in body) lines.push(`  -H 'anthropic-beta: ${CONTEXT_BETA}'`);
  if (hasKey) lines.push(`  -H "x-api-key: $ANTHROPIC_API_KEY"`);
  lines.push(`  -d ${shellQuote(JSON.stringify(body, null, 2))}`);
  return lines.join(" \\\n");
}

// SDK 2.x no longer types temperature, top_p and top_k: they travel in extra_body.
const UNTYPED = ["temperature", "top_p", "top_k"];

export function pythonSnippet(baseUrl, body) {
  const { stream, ...fields } = body;
  const extra = Object.fromEntries(UNTYPED.filter((k) => k in fields).map((k) => [k, fields[k]]));
  const args = Object.entries(fields).filter(([k]) => !UNTYPED.includes(k))
    .map(([k, v]) => `    ${k}=${python(v, 1)},`);
  if (Object.keys(extra).length) args.push(`    extra_body=${python(extra, 1)},`);
  const beta = "context_management" in fields;
  if (beta) args.push(`    betas=[${JSON.stringify(CONTEXT_BETA)}],`);
  return [
    "import os",
    "",
    "import anthropic",
    "",
    `client = anthropic.Anthropic(base_url=${JSON.stringify(baseUrl)},`,
    `                             api_key=os.environ.get("ANTHROPIC_API_KEY", "unused"))`,
    "",
    `with client.${beta ? "beta." : ""}messages.stream(`,
    ...args,
    ") as stream:",
    "    for text in stream.text_stream:",
    "        print(text, end=\"\", flush=True)",
    "    message = stream.get_final_message()",
    "",
    "print()",
    "print(message.to_json())",
    "",
  ].join("\n");
}

// A JSON value as a Python literal; short values stay on one line, long ones are indented like black would.
function python(value, depth) {
  const flat = pythonFlat(value);
  if (flat.length + depth * 4 <= 100 || value === null || typeof value !== "object") return flat;
  const pad = "    ".repeat(depth + 1);
  const end = "    ".repeat(depth);
  const items = Array.isArray(value)
    ? value.map((v) => `${pad}${python(v, depth + 1)},`)
    : Object.entries(value).map(([k, v]) => `${pad}${JSON.stringify(k)}: ${python(v, depth + 1)},`);
  return Array.isArray(value) ? `[\n${items.join("\n")}\n${end}]` : `{\n${items.join("\n")}\n${end}}`;
}

function pythonFlat(value) {
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  // JSON's string escapes are all valid in Python string literals.
  if (typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pythonFlat).join(", ")}]`;
  return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${pythonFlat(v)}`).join(", ")}}`;
}
