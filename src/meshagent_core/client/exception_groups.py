"""Exception groups around `async with` blocks that own a task group."""

from __future__ import annotations


def leaves(group: BaseExceptionGroup) -> list[BaseException]:
    """The exceptions of `group`, nested groups flattened."""
    found: list[BaseException] = []
    for error in group.exceptions:
        found.extend(leaves(error) if isinstance(error, BaseExceptionGroup) else [error])
    return found


def unwrap_group(error: BaseException, body_error: BaseException | None) -> BaseException:
    """What a task group spanning an `async with` block raised, as the block raised it: the
    block's own exception when the group holds nothing else."""
    if body_error is not None and isinstance(error, BaseExceptionGroup) and leaves(error) == [body_error]:
        return body_error
    return error


__all__ = ["leaves", "unwrap_group"]
