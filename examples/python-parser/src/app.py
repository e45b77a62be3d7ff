"""An Antenna parser written in Python: the same contract as the Rust parsers
(WIT `antenna:normalizer@0.1.0`, world `normalizer`), built into a component by
componentize-py.

It claims the instrumentation scope `example.python` and turns each log record
that has a `prompt.id` attribute into a prompt fragment of the trace
`prompt-<prompt.id>`.
"""

from typing import List, Optional

import wit_world
from wit_world.imports import types as t

# The bindings componentize-py generates from the WIT: `wit_world` for the
# exports, `wit_world.imports.types` for the records (PluginInfo, Fragment, ...).


def text(attributes: List[t.KeyValue], key: str) -> Optional[str]:
    """A non-empty string attribute; the last one wins if a key repeats, as in OTLP."""
    for kv in reversed(attributes):
        if kv.key == key and isinstance(kv.value, t.AttrValue_Text) and kv.value.value:
            return kv.value.value
    return None


class WitWorld(wit_world.WitWorld):
    def describe(self) -> t.PluginInfo:
        return t.PluginInfo(
            name="example-python",
            version="0.1.0",
            agent="example-python",
            claims=t.Claims(scope_names=["example.python"], event_names=[], service_names=[]),
        )

    def normalize(self, batch: t.ResourceBatch) -> List[t.Fragment]:
        resource = batch.resource_attributes
        fragments = []
        for scope in batch.scopes:
            for log in scope.logs:
                prompt_id = text(log.attributes, "prompt.id")
                if prompt_id is None:
                    continue  # not part of a prompt: no trace
                time = max(log.time_unix_nano, log.observed_time_unix_nano)
                who = t.Attribution(
                    session_id=text(log.attributes, "session.id") or text(resource, "session.id"),
                    user_id=text(resource, "user.id") or text(log.attributes, "user.email"),
                    device_id=text(resource, "host.id"),
                )
                prompt = t.Prompt(
                    text=text(log.attributes, "prompt"),
                    response=None,
                    start_unix_nano=time,
                    end_unix_nano=None,
                )
                fragments.append(
                    t.Fragment(
                        trace_key=f"prompt-{prompt_id}",
                        also_known_as=[],
                        id="prompt",
                        # One report per record, so that reposting a batch changes nothing.
                        report_id=str(time),
                        attribution=who,
                        body=t.FragmentBody_Prompt(prompt),
                    )
                )
        return fragments
