"""Server-sent events as a client reads them: one parser for the benchmarks and the tests.

A stream is a series of blocks separated by a blank line; a block holds `field: value`
lines (`id`, `event`, `data`, several data lines joined by newlines) and comment lines
starting with a colon (our `: open` and `: keep-alive`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SSE:
    id: str | None = None
    event: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def is_comment(self) -> bool:
        """Only comments: a keep-alive or the opening line, not an event."""
        return not (self.id or self.event or self.data)


def parse_block(lines: list[str]) -> SSE:
    """One block of lines (without the blank line that ends it) as an event."""
    event = SSE()
    for line in lines:
        if line.startswith(":"):
            event.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            event.data = f"{event.data}\n{value}" if event.data else value
        elif name == "event":
            event.event = value
        elif name == "id":
            event.id = value
    return event
