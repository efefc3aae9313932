"""Friendly run names: ``brisk-otter-41`` (adjective, animal, the run's number in the project)."""

from __future__ import annotations

import random

__all__ = ["friendly_name"]

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
