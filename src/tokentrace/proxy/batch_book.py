"""What the gateway remembers of the batch jobs created through it: each batch's provider, tags
and endpoint, and which output files hold which batch's results. In memory, bounded: a batch
whose creation this gateway did not see is attributed by the tags of the request that reads its
results."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class BatchJob:
    provider: str  # openai or anthropic
    tags: dict[str, str] = field(default_factory=dict)
    endpoint: str | None = None  # OpenAI: what each request of the batch calls
    ended_ns: int | None = None  # when the provider says the batch ended (Anthropic)


class BatchBook:
    """Batch jobs by id, and output files by id (→ batch id); the oldest forgotten past `size`."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._jobs: OrderedDict[str, BatchJob] = OrderedDict()
        self._files: OrderedDict[str, str] = OrderedDict()

    def job(self, batch_id: str, provider: str) -> BatchJob:
        """The batch's record, made (with no tags) if this gateway has not seen it yet."""
        found = self._jobs.get(batch_id)
        if found is None:
            found = self._jobs[batch_id] = BatchJob(provider)
            if len(self._jobs) > self.size:
                self._jobs.popitem(last=False)
        return found

    def known(self, batch_id: str) -> bool:
        return batch_id in self._jobs

    def add_file(self, file_id: str, batch_id: str) -> None:
        self._files[file_id] = batch_id
        if len(self._files) > self.size:
            self._files.popitem(last=False)

    def batch_of_file(self, file_id: str) -> str | None:
        return self._files.get(file_id)
