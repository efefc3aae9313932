"""Friendly run names: ``brisk-otter-41`` (adjective, animal, the run's number in the project)."""

from __future__ import annotations

import random
from collections.abc import Collection

from workbench.errors import WorkbenchError
from workbench.store.ids import RUN_ID_ALPHABET

__all__ = ["check_run_name", "friendly_name"]

#: The shortest id prefix ``resolve_run`` accepts as a reference worth guarding.
_ID_LIKE_MIN = 4
_ID_LENGTH = 12

_ADJECTIVES = (
    "amber brave brisk calm clever cosmic crisp daring eager fancy gentle golden happy hardy "
    "jolly keen lively lucky mellow merry nimble noble pale proud quick quiet rapid silent "
    "sleek smooth snowy solar spry steady stoic sunny swift tidy vivid warm wild witty young zesty"
).split()
_ANIMALS = (
    "auk badger bat bear beaver bison boar crane crow deer dingo eagle egret elk falcon ferret "
    "finch fox gecko gull hare hawk heron ibis jay koala lark lemur lynx marten mink mole moose "
    "newt otter owl panda puffin quail raven robin seal shrew stoat swan tapir tern toad viper "
    "vole walrus wolf wombat wren yak zebra"
).split()


def friendly_name(number: int, taken: set[str] | frozenset[str] = frozenset(),
                  rng: random.Random | None = None) -> str:
    """A name like ``brisk-otter-41`` not in ``taken`` (``number`` is the run's ordinal)."""
    rng = rng or random.Random()
    for _ in range(100):
        name = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_ANIMALS)}-{number}"
        if name not in taken:
            return name
    return f"run-{number}-{rng.randrange(10**6)}"


def check_run_name(name: str, taken: Collection[str], ids: Collection[str]) -> None:
    """Refuse a name a user could not use unambiguously as a run reference.

    A name is letters, digits, ``-``, ``_`` and ``.``; not all digits; not taken; and not
    something that reads as a run id (12 characters of the id alphabet) or as a prefix of
    an existing run's id — otherwise ``show NAME`` could act on another run.

    Raises:
        WorkbenchError: One line naming the problem.
    """
    if not name or name.isdigit() or not all(c.isalnum() or c in "-_." for c in name):
        raise WorkbenchError(f"bad run name {name!r}: use letters, digits, '-', '_' or '.' (not only digits)")
    if name in taken:
        raise WorkbenchError(f"a run named {name!r} already exists; pick another --name")
    lowered = name.lower()
    if all(c in RUN_ID_ALPHABET for c in lowered):
        if len(lowered) == _ID_LENGTH:
            raise WorkbenchError(f"bad run name {name!r}: it reads as a run id; pick a name with a '-' or a letter "
                                 "outside the id alphabet")
        if len(lowered) >= _ID_LIKE_MIN:
            shadowed = sorted(i for i in ids if i.startswith(lowered))
            if shadowed:
                raise WorkbenchError(f"bad run name {name!r}: it is a prefix of run {shadowed[0]}'s id, so "
                                     f"it could not tell the two apart; pick another --name")
