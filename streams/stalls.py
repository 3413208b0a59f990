"""Input partitions whose fetched messages never reached the worker's agents.

faust drops a fetched message that reaches a stream while the consumer is between
generations or its flow control is off (a rebalance, a table recovery), and relies on the
seek to the committed offsets that ends the rebalance to read it again. A message dropped
after that seek is never read again, and when nothing follows it (the last messages of an
input: an end-of-input marker, a partition's final watermark for the cells stage) no
offset gap reveals it: the partition waits for ever, and so do the pairwise alerts that
need its watermark.

:class:`StallWatch` names the partitions to look at: assigned, no message of theirs
delivered for ``after_s``, and their topic's agent idle as long (so nothing of theirs can
still be queued behind other partitions' messages). The worker then compares the
partition's highwater with the next offset its engine needs and, when messages lie
between, seeks back to that offset; what is read twice is skipped by offset, as after any
rebalance. Wall-clock time here decides only when to look again, never what is detected.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class StallWatch:
    def __init__(self, after_s: float) -> None:
        self.after_s = after_s  # 0: never look
        self.heard: dict[Any, float] = {}  # partition -> when its last message was delivered
        self.topics: dict[str, float] = {}  # topic -> when any of its messages was delivered
        self.since: dict[Any, float] = {}  # partition -> when it was (re)assigned or last read again

    def heard_from(self, tp: Any, now: float) -> None:
        self.heard[tp] = now
        self.topics[tp.topic] = now

    def assigned(self, tps: Iterable[Any], now: float) -> None:
        """A rebalance ended: every assigned partition gets ``after_s`` before it is looked at."""
        tps = set(tps)
        self.since = dict.fromkeys(tps, now)
        self.heard = {tp: t for tp, t in self.heard.items() if tp in tps}

    def due(self, assignment: Iterable[Any], now: float) -> list[Any]:
        """Assigned partitions quiet for ``after_s``, of topics whose agent is as quiet."""
        if self.after_s <= 0:
            return []
        out = []
        for tp in assignment:
            since = self.since.get(tp)
            if since is None:  # assigned before this watch heard of it: count from now
                self.since[tp] = now
                continue
            quiet = now - max(since, self.heard.get(tp, since))
            if quiet >= self.after_s and now - self.topics.get(tp.topic, since) >= self.after_s:
                out.append(tp)
        return out

    def read_again(self, tp: Any, now: float) -> None:
        """A seek was made: give the messages ``after_s`` to arrive before looking again."""
        self.since[tp] = now
