"""Protocol-neutral: the path every generation takes (prepare → check → submit → events) and the errors it may
raise. The HTTP adapters (app/api: Anthropic's Messages, OpenAI's chat completions) validate and convert their own
JSON, call this, and write the events and the errors in their own shapes."""
