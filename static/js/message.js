// Folds stream events into a Message, the way the official SDKs' stream accumulators do.

export class MessageAccumulator {
  constructor() {
    this.message = null;
    this.partialJson = {};     // tool_use input as it streams: index -> the JSON text received so far
  }

  apply(name, data) {
    if (name === "message_start") {
      this.message = structuredClone(data.message);
    } else if (name === "content_block_start") {
      this.message.content[data.index] = structuredClone(data.content_block);
    } else if (name === "content_block_delta") {
      const block = this.message.content[data.index];
      const delta = data.delta;
      if (delta.type === "text_delta") block.text += delta.text;
      else if (delta.type === "thinking_delta") block.thinking += delta.thinking;
      else if (delta.type === "signature_delta") block.signature = delta.signature;
      else if (delta.type === "citations_delta") (block.citations ||= []).push(delta.citation);
      else if (delta.type === "input_json_delta") {
        this.partialJson[data.index] = (this.partialJson[data.index] || "") + delta.partial_json;
      }
    } else if (name === "content_block_stop") {
      const json = this.partialJson[data.index];
      // The input is only complete (and only valid JSON) when its block stops.
      if (json !== undefined) this.message.content[data.index].input = json ? JSON.parse(json) : {};
      delete this.partialJson[data.index];
    } else if (name === "message_delta") {
      Object.assign(this.message, data.delta);
      this.message.usage = { ...this.message.usage, ...data.usage };
      if (data.thinkserve) this.message.thinkserve = data.thinkserve;
    }
  }

  toolUses() {
    return (this.message?.content || []).filter((block) => block.type === "tool_use");
  }
}
