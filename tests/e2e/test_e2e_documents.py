"""A base64 PDF through the official SDK to the real default model: answered, and counted as count_tokens counts
the extracted text."""
import base64

from e2e_server import MODEL, prompt_tokens
from pdf_bytes import pdf_bytes

PDF = {"type": "document", "title": "Shopping list", "source": {
    "type": "base64", "media_type": "application/pdf",
    "data": base64.b64encode(pdf_bytes("Apples, bread and milk.", "Also: coffee.")).decode()}}
MESSAGES = [{"role": "user", "content": [PDF, {"type": "text", "text": "What is on the list?"}]}]


def test_a_pdf_is_read_and_counted(client):
    message = client.messages.create(model=MODEL, max_tokens=24, messages=MESSAGES, extra_body={"temperature": 0})
    assert message.content[0].type == "text" and message.content[0].text.strip()
    counted = client.messages.count_tokens(model=MODEL, messages=MESSAGES).input_tokens
    assert prompt_tokens(message.usage) == counted
    plain = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "What is on the list?"}])
    assert counted > plain.input_tokens + 10          # the pages' text is in the prompt
