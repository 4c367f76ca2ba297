"""One Redis round trip for everything a webhook claims: its delivery, its gates' last status
and its deployment facts, checked and set atomically by one Lua script.

The edge then queues the jobs the claims lead to in one pipeline (workers.queue.enqueue_all):
two round trips per webhook instead of one per key and per job.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from redis import Redis

# KEYS: [delivery?] + one key per claim. ARGV: delivery TTL, claim TTL, "1" when KEYS[1] is a
# delivery key, then a (kind, status) pair per claim. Returns {"seen"} when the delivery was
# taken before (nothing else is touched), else {"taken", one answer per claim}.
# Answers: "new" (no earlier value), "same" (a duplicate), "absent" (kind "existing" and no
# key: not claimed), "was:<status>" (a change from <status>).
CLAIM_SCRIPT = """
local first = 1
if ARGV[3] == '1' then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return {'seen'} end
  first = 2
end
local out = {'taken'}
for i = first, #KEYS do
  local kind = ARGV[2 * (i - first) + 4]
  local status = ARGV[2 * (i - first) + 5]
  local previous = redis.call('GET', KEYS[i])
  if not previous then
    if kind == 'existing' then
      out[#out + 1] = 'absent'
    else
      redis.call('SET', KEYS[i], status, 'EX', ARGV[2])
      out[#out + 1] = 'new'
    end
  elseif previous == status then
    if kind ~= 'once' then redis.call('EXPIRE', KEYS[i], ARGV[2]) end
    out[#out + 1] = 'same'
  elseif kind == 'once' then
    out[#out + 1] = 'same'
  else
    redis.call('SET', KEYS[i], status, 'EX', ARGV[2])
    out[#out + 1] = 'was:' .. previous
  end
end
return out
"""


class ClaimKind(StrEnum):
    """How a key is claimed."""

    ANY = "any"  # set the status whether or not the key exists (a gate may open)
    EXISTING = "existing"  # set it only over an earlier status (a change of a known gate)
    ONCE = "once"  # set it only if absent (a deployment fact is acted on once)


@dataclass(frozen=True)
class Claim:
    key: str
    kind: ClaimKind
    status: str = "1"


@dataclass(frozen=True)
class Outcome:
    """What a claim found: `previous` is the earlier status of a changed key."""

    taken: bool  # the key now holds this claim's status, set by this call
    duplicate: bool
    absent: bool = False
    previous: str | None = None


class DeliverySeen(Exception):
    """The delivery's Idempotency-Key was taken before: the whole webhook is a duplicate."""


class ClaimScript:
    """The claim script, registered once per connection pool (EVALSHA, loaded on demand)."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(CLAIM_SCRIPT)

    def claim(
        self,
        delivery: str | None,
        claims: list[Claim],
        delivery_ttl_s: int,
        claim_ttl_s: int,
    ) -> list[Outcome]:
        """Claim `delivery` (raising DeliverySeen if taken) and then every claim, atomically."""
        keys = ([delivery] if delivery else []) + [c.key for c in claims]
        args: list[str | int] = [delivery_ttl_s, claim_ttl_s, "1" if delivery else "0"]
        for claim in claims:
            args += [claim.kind.value, claim.status]
        answers = [_text(a) for a in self._script(keys=keys, args=args)]
        if answers[0] == "seen":
            raise DeliverySeen
        return [_outcome(answer) for answer in answers[1:]]


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _outcome(answer: str) -> Outcome:
    if answer == "new":
        return Outcome(taken=True, duplicate=False)
    if answer == "same":
        return Outcome(taken=False, duplicate=True)
    if answer == "absent":
        return Outcome(taken=False, duplicate=False, absent=True)
    return Outcome(taken=True, duplicate=False, previous=answer.removeprefix("was:"))
