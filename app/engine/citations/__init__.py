"""Citations that are valid by construction.

The api layer numbers every citable passage of a request (a document's sentences, a custom document's or a search
result's text blocks) in the prompt, `[1]`, `[2]`, ..., and asks the model to put a passage's mark right after the
words it supports. Here the engine makes that promise hold:

- `grammar`: the answer is free text in which a `[` followed by a digit can only go on into a whole mark of a
  passage that exists (`[7]` with seven passages or more), so an invalid mark is never generated;
- `markers`: the answer's text, as it streams, has its marks taken out: each becomes a `CitationMark` event after
  the text it follows, which the api layer turns into its protocol's citation of that passage.
"""
