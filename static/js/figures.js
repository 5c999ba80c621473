// Live figures while a response streams: time to first token, tokens/s, thinking tokens against the budget.
// During the stream every content delta counts as one token (the server sends one per generated token);
// the final usage and thinkserve figures replace those estimates when message_delta arrives.

const $ = (id) => document.getElementById(id);

export class Figures {
  start(budget) {
    this.sentAt = performance.now();
    this.firstAt = null;
    this.lastAt = null;
    this.tokens = 0;
    this.thinking = 0;
    this.budget = budget;       // null when thinking is off
    $("ttft").textContent = $("tps").textContent = "–";
    this.showThinking(budget ? 0 : null);
  }

  elapsed() {
    return performance.now() - this.sentAt;
  }

  delta(kind) {
    if (kind === "signature_delta" || kind === "citations_delta") return;     // not a token of its own
    const now = performance.now();
    if (this.firstAt === null) {
      this.firstAt = now;
      $("ttft").textContent = `${(now - this.sentAt).toFixed(0)} ms`;
    }
    this.lastAt = now;
    this.tokens += 1;
    if (kind === "thinking_delta") this.showThinking(++this.thinking);
    this.showRate(this.tokens);
  }

  // Tokens after the first, over the time since the first: the decode rate, without the prompt's processing.
  showRate(tokens) {
    const seconds = (this.lastAt - this.firstAt) / 1000;
    if (tokens > 1 && seconds > 0) $("tps").textContent = ((tokens - 1) / seconds).toFixed(1);
  }

  showThinking(tokens) {
    const meter = $("thinking-meter");
    meter.hidden = !this.budget;
    if (!this.budget) {
      $("thinking-figure").textContent = tokens ? `${tokens}` : "off";
      return;
    }
    $("thinking-figure").textContent = `${tokens} / ${this.budget}`;
    meter.value = Math.min(1, tokens / this.budget);
  }

  finish(message) {
    if (message.usage?.output_tokens && this.firstAt !== null) this.showRate(message.usage.output_tokens);
    const stats = message.thinkserve;
    if (stats?.thinking_tokens !== undefined) {
      this.budget = stats.budget_tokens ?? this.budget;
      this.showThinking(stats.thinking_tokens);
    }
  }
}
