"""The message layout of every stage request: the run first, the stage after it.

DSPy's ChatAdapter opens each request with the signature's own system message (field lists,
answer structure, instructions), then the inputs. Every request about one run then differs
from its first tokens on, so a prompt cache that reuses the longest common prefix with the
previous prompt (llama.cpp's, one slot; an OpenAI-compatible server's prefix cache) finds
nothing to reuse between stages and evaluates the whole run again for each of them.

`RunFirstAdapter` moves the lead input field (`trajectory`, every stage's first input) to
the very start of the system message and leaves everything stage-specific after it:

    system     [constant line] [[ ## trajectory ## ]] <the rendered run>
               ---
               Your input fields are: … Your output fields are: … (ChatAdapter's own text)
    demos      user/assistant pairs as ChatAdapter writes them, each with its own run
    user       [[ ## trajectory ## ]] (pointer to the run above), the other inputs, the
               answer reminder

So the detect, extract, relabel and judge requests about one run share everything up to the
end of the run, and the engine evaluates the run once per run rather than once per stage.
The system message keeps ChatAdapter's "Your output fields are:" list and answer structure,
which is what `lm.grammar` derives the answer grammar from; answers are parsed exactly as
ChatAdapter parses them. A signature whose first input is not the lead field, a request
without it, or a run whose text holds one of the lines the grammar reads the answer's
shape from (a log of another DSPy program might), is formatted as ChatAdapter formats it.
"""

from __future__ import annotations

from typing import Any

import dspy
from dspy.adapters.utils import format_field_value

LEAD_FIELD = "trajectory"
RUN_HEADER = "The agent run this task is about, given once here as the `{name}` input:"
RUN_FOOTER = "---"
RUN_POINTER = "(the agent run given at the start)"
# What `lm.grammar` looks for in the system message: a run quoting them would come first.
GRAMMAR_MARKERS = ("Your output fields are:", "Outputs will be a JSON object")


class RunFirstAdapter(dspy.ChatAdapter):
    """A ChatAdapter whose requests open with the lead input field, then the stage's text."""

    def __init__(self, lead_field: str = LEAD_FIELD, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lead_field = lead_field

    def leads(self, signature: type[dspy.Signature], inputs: dict[str, Any]) -> bool:
        """Whether this request puts the lead field first."""
        names = list(signature.input_fields)
        if not names or names[0] != self.lead_field or inputs.get(self.lead_field) is None:
            return False
        value = str(inputs[self.lead_field])
        return not any(marker in value for marker in GRAMMAR_MARKERS)

    def format(
        self,
        signature: type[dspy.Signature],
        demos: list[dict[str, Any]],
        inputs: dict[str, Any],
    ) -> list[dict[str, Any]]:
        messages = super().format(signature, demos, inputs)
        if not self.leads(signature, inputs) or messages[0].get("role") != "system":
            return messages
        field = signature.input_fields[self.lead_field]
        value = format_field_value(field_info=field, value=inputs[self.lead_field])
        opening = (
            f"{RUN_HEADER.format(name=self.lead_field)}\n\n"
            f"[[ ## {self.lead_field} ## ]]\n{value}\n\n{RUN_FOOTER}\n\n"
        )
        return [{**messages[0], "content": opening + messages[0]["content"]}, *messages[1:]]

    def format_user_message_content(
        self,
        signature: type[dspy.Signature],
        inputs: dict[str, Any],
        prefix: str = "",
        suffix: str = "",
        main_request: bool = False,
    ) -> str:
        # Only the request itself points back at the run; a demo shows its own run in full.
        if main_request and self.leads(signature, inputs):
            inputs = {**inputs, self.lead_field: RUN_POINTER}
        return super().format_user_message_content(
            signature, inputs, prefix=prefix, suffix=suffix, main_request=main_request
        )


def default_adapter() -> dspy.Adapter:
    """The adapter the program's stages use when the caller has not chosen one."""
    return RunFirstAdapter()
