// The official TypeScript SDK against a thinkserve server, as a TypeScript user calls it: one request body sent
// with `client.messages.create(body)` and with the stream helper `client.messages.stream(body)`. Run by
// tests/api/test_typescript_sdk.py.
//
//   node stream_helpers.mjs BASE_URL API_KEY BODY_JSON
//   (or THINKSERVE_BASE_URL, THINKSERVE_API_KEY, THINKSERVE_BODY in the environment)
//
// thinkserve's extension fields (`thinkserve: {...}`) are plain keys of the body: the SDK spreads the params
// object it is given into the JSON body, so keys its types do not name are sent as given (in TypeScript they need
// a cast, or `// @ts-expect-error`; in plain JavaScript nothing).
//
// Prints one JSON object: {created, final, texts, thinkserve}: the non-streamed Message, the stream helper's
// finalMessage(), the `text` events in order, and the `thinkserve` figures of the streamed message_delta event (the
// SDK's accumulator keeps only the fields it knows, so they are read from the raw `streamEvent`s). Any error
// (a thrown SDK error, an `error` event) exits 1 with the error on stderr.
import Anthropic from '@anthropic-ai/sdk';

const [baseURL, apiKey, bodyJson] = [
  process.argv[2] ?? process.env.THINKSERVE_BASE_URL,
  process.argv[3] ?? process.env.THINKSERVE_API_KEY,
  process.argv[4] ?? process.env.THINKSERVE_BODY,
];
if (!baseURL || !apiKey || !bodyJson) {
  console.error('usage: node stream_helpers.mjs BASE_URL API_KEY BODY_JSON');
  process.exit(2);
}
const body = JSON.parse(bodyJson);

try {
  const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 20_000 });

  const created = await client.messages.create(body);

  const texts = [];
  let thinkserve = null;
  const stream = client.messages.stream(body);
  stream.on('text', (delta) => texts.push(delta));
  stream.on('streamEvent', (event) => {
    if (event.type === 'message_delta' && 'thinkserve' in event) thinkserve = event.thinkserve;
  });
  const final = await stream.finalMessage();

  process.stdout.write(JSON.stringify({ created, final, texts, thinkserve }) + '\n');
} catch (error) {
  console.error(error?.stack ?? String(error));
  process.exit(1);
}
