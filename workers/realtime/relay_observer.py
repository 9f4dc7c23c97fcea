"""What a relayed session's upstream events tell: records to store, server-tool calls to run, echoes to hide.

The relay shows the client every upstream event as it came; on the way, `UpstreamObserver.observe` reads
each one (events in) and answers with what follows from it (records, calls, and whether to show it):

- user messages and transcriptions, assistant replies (`response.output_audio_transcript.done` /
  `response.output_text.done`), function calls and their outputs become `Record`s;
- a barge-in's `conversation.item.truncated` carries no text, only `audio_end_ms`: the reply's heard text
  is estimated from the share of the item's audio that played (words spread evenly over it), as the local
  path estimates it per sentence; the reply's audio length is counted from its deltas;
- calls to the server's own tools are collected per response; when the response completes they are handed
  to `run_calls`, once each (`answer`);
- the `session.updated` answering an update the relay made for itself is hidden (`expect_update`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines.realtime.audio import AudioFormat, duration_ms
from pipelines.realtime.conversation import Spoken, heard_text
from pipelines.realtime.persistence import Record

Call = dict[str, Any]  # name, call_id, arguments


@dataclass
class Reply:
    """An assistant item seen on its way to the client: how much audio it had, what it said, and where
    a barge-in cut it."""

    audio_ms: float = 0.0
    text: str | None = None
    response_id: Any = None
    heard_ms: float | None = None


class UpstreamObserver:
    """Reads one relayed session's upstream events.

    `persist(record)` queues a record; `owned()` names the tools that run here (they change with a
    handoff); `run_calls(calls)` runs a completed response's calls to them."""

    def __init__(
        self,
        *,
        persist: Callable[[Record], None],
        owned: Callable[[], frozenset[str]],
        run_calls: Callable[[list[Call]], None],
    ) -> None:
        self._persist, self._owned, self._run_calls = persist, owned, run_calls
        self.output_format: AudioFormat = "audio/pcm"
        self._updates: deque[tuple[str, bool]] = deque()  # session.updates sent: (event_id, hide reply)
        self._calls: dict[str, Call] = {}  # call_id -> server-tool call awaiting its response's end
        self._answered: set[str] = set()
        self._replies: dict[str, Reply] = {}  # assistant item id -> its audio so far and transcript

    def expect_update(self, event_id: str, *, hide: bool) -> None:
        """A `session.update` went upstream; its `session.updated` is hidden from the client if `hide`."""
        self._updates.append((event_id, hide))

    def answer(self, call_id: str) -> bool:
        """Mark a call answered; False if it already was (a call is run once, however often it is seen)."""
        if call_id in self._answered:
            return False
        self._answered.add(call_id)
        return True

    def observe(self, ev: dict[str, Any]) -> bool:
        """Take in one upstream event; False: do not show it to the client."""
        kind = ev.get("type")
        if kind in ("session.created", "session.updated"):
            self._session(ev.get("session") or {})  # the output format, for the length of reply audio
            if kind == "session.updated" and self._updates:
                _, hide = self._updates.popleft()
                return not hide
        elif kind == "error":
            ref = (ev.get("error") or {}).get("event_id")
            for entry in list(self._updates):
                if entry[0] == ref:
                    self._updates.remove(entry)  # a refused update gets no session.updated
        elif kind == "conversation.item.input_audio_transcription.completed":
            self._persist(Record("user", str(ev.get("item_id")), str(ev.get("transcript") or "")))
        elif kind in ("conversation.item.added", "conversation.item.done"):
            self._item(ev.get("item") or {})
        elif kind in (
            "response.output_audio.delta",
            "response.output_audio_transcript.done",
            "response.output_text.done",
            "conversation.item.truncated",
        ):
            self._reply(kind, ev)
        elif kind == "response.function_call_arguments.done" and ev.get("name"):
            self._function_call(
                {"id": ev.get("item_id"), **{k: ev.get(k) for k in ("name", "call_id", "arguments")}}
            )
        elif kind == "response.output_item.done":
            item = ev.get("item") or {}
            if item.get("type") == "function_call":
                self._function_call(item)
        elif kind == "response.done":
            self._response_done(ev.get("response") or {})
        return True

    def _session(self, session: dict[str, Any]) -> None:
        fmt = ((session.get("audio") or {}).get("output") or {}).get("format") or {}
        self.output_format = fmt.get("type") or self.output_format

    def _reply(self, kind: str, ev: dict[str, Any]) -> None:
        item_id = str(ev.get("item_id"))
        reply = self._replies.setdefault(item_id, Reply())
        if kind == "response.output_audio.delta":
            reply.audio_ms += duration_ms(len(str(ev.get("delta") or "")) * 3 // 4, self.output_format)
        elif kind == "conversation.item.truncated":
            reply.heard_ms = float(ev.get("audio_end_ms") or 0)
            if reply.text is not None:
                self._persist_reply(item_id, reply)
        else:  # the transcript (or text) of the reply is complete
            reply.text = str(ev.get("transcript" if kind.endswith("transcript.done") else "text") or "")
            reply.response_id = ev.get("response_id")
            self._persist_reply(item_id, reply)

    def _persist_reply(self, item_id: str, reply: Reply) -> None:
        text = reply.text or ""
        data: dict[str, Any] = {"generated": text, "response_id": reply.response_id}
        if reply.heard_ms is not None:
            heard = heard_text([Spoken(text, 0.0, max(reply.audio_ms, 1.0))], reply.heard_ms)
            data |= {"interrupted": True, "truncated": True}
            text = heard
        self._persist(Record("assistant", item_id, text, data))

    def _item(self, item: dict[str, Any]) -> None:
        kind, item_id = item.get("type"), str(item.get("id") or "")
        if not item_id:
            return
        if kind == "message" and item.get("role") == "user":
            text = " ".join(
                str(part.get("text") or part.get("transcript") or "")
                for part in item.get("content") or []
                if isinstance(part, dict)
            ).strip()
            if text:  # audio messages are recorded when their transcription completes
                self._persist(Record("user", item_id, text))
        elif kind == "function_call_output":
            output = str(item.get("output") or "")
            self._persist(Record("function_call_output", item_id, output, {"call_id": item.get("call_id")}))

    def _function_call(self, item: dict[str, Any]) -> None:
        call_id = str(item.get("call_id") or "")
        if not item.get("id") or not call_id:
            return
        fields = {k: item.get(k) for k in ("name", "call_id", "arguments")}
        self._persist(Record("function_call", str(item["id"]), "", fields))
        if fields["name"] in self._owned() and call_id not in self._answered:
            self._calls[call_id] = fields

    def _response_done(self, response: dict[str, Any]) -> None:
        for item in response.get("output") or []:
            if isinstance(item, dict) and item.get("type") == "function_call":
                self._function_call(item)
        calls, self._calls = list(self._calls.values()), {}
        if calls and response.get("status") == "completed":
            self._run_calls(calls)
