"""Export JSON Schemas of the provider wire formats from the official Python SDKs.

Run by `hack/provider-schemas/generate.sh` inside a virtualenv that holds the pinned SDKs; writes one
schema per file into the output directory (argument 1):

| file | SDK type | what |
|---|---|---|
| anthropic/messages.request.json | anthropic.types.message_create_params.MessageCreateParamsNonStreaming | body of POST /v1/messages |
| anthropic/messages.response.json | anthropic.types.Message | its 200 answer |
| anthropic/error.response.json | anthropic.types.shared.ErrorResponse | its error answers |
| openai/chat-completions.request.json | openai.types.chat.completion_create_params.CompletionCreateParamsNonStreaming | body of POST /chat/completions |
| openai/chat-completions.response.json | openai.types.chat.ChatCompletion | its 200 answer |
| openai/error.response.json | {"error": openai.types.shared.ErrorObject} | its error answers (the SDK reads body["error"]) |

Request params are TypedDicts; pydantic's TypeAdapter turns them into schemas. The APIs refuse
parameters they do not know (Anthropic: "Extra inputs are not permitted"; OpenAI: "Unrecognized
request argument supplied"), so every TypedDict object gets `additionalProperties: false`: a field
that the SDK does not have (e.g. `temperature` on Anthropic's current Messages API) fails
validation. Response models are the SDK's pydantic models as they are (they accept extra fields,
as the SDK does).
"""

import json
import sys
from pathlib import Path

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from anthropic.types import Message as AnthropicMessage
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from anthropic.types.shared import ErrorResponse as AnthropicErrorResponse
from openai.types.chat import ChatCompletion
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from openai.types.shared import ErrorObject as OpenAIErrorObject


class ClosedTypedDicts(GenerateJsonSchema):
    """TypedDict params are closed: unknown keys are rejected, as the APIs do."""

    def typed_dict_schema(self, schema):
        out = super().typed_dict_schema(schema)
        out.setdefault("additionalProperties", False)
        return out


class OpenAIErrorBody(BaseModel):
    """The envelope of an OpenAI error answer: `{"error": {...}}`."""

    error: OpenAIErrorObject


SCHEMAS = [
    ("anthropic/messages.request.json", MessageCreateParamsNonStreaming, ClosedTypedDicts),
    ("anthropic/messages.response.json", AnthropicMessage, GenerateJsonSchema),
    ("anthropic/error.response.json", AnthropicErrorResponse, GenerateJsonSchema),
    ("openai/chat-completions.request.json", CompletionCreateParamsNonStreaming, ClosedTypedDicts),
    ("openai/chat-completions.response.json", ChatCompletion, GenerateJsonSchema),
    ("openai/error.response.json", OpenAIErrorBody, GenerateJsonSchema),
]


def main() -> None:
    out = Path(sys.argv[1])
    for rel, typ, generator in SCHEMAS:
        schema = TypeAdapter(typ).json_schema(schema_generator=generator, mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
