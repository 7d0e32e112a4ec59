"""Retained answers share what they have in common."""

from __future__ import annotations

from ...snapshot import Head


class SharedHeads:
    """One copy of each (status, headers) pair that many answers have.

    Most tasks of a view answer with the same status and headers, so retained
    tasks share them and a kept answer costs little more than its body.
    Bounded; answers that set cookies keep their own, so that no cookie
    outlives its task here.
    """

    LIMIT = 4096

    def __init__(self) -> None:
        self._heads: dict[Head, Head] = {}

    def share(self, head: Head) -> Head:
        """The shared copy of ``head``; ``head`` itself is shared if there is room."""
        shared = self._heads.get(head)
        if shared is not None:
            return shared
        if len(self._heads) >= self.LIMIT or any(
            name.lower() == "set-cookie" for name, _ in head[1]
        ):
            return head
        return self._heads.setdefault(head, head)
