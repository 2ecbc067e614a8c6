"""Commit groups: many writes made durable together, then each put in place as it would be alone.

A batch saves each model with `save(..., group=group)` inside `commit_group()`: its copies are
staged as alone, made durable together with one `syncfs` instead of several fsyncs each, and
only then renamed into place, so each output is still absent or complete at every instant. Its
in-place edits are each journaled as alone; the group takes each step for all of them, then one
`syncfs` makes that step durable for all before the next (four per group instead of five fsyncs
per model). A batch's workers hand their staged writes over to their parent, which adopts and
commits them (`CommitGroup.hand_over`, `CommitGroup.adopt`); an in-place edit's model lock goes
along through a `LockChannel`.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from surgery.errors import SavedModelIOError
from surgery.interrupts import deferred
from surgery.model import Model
from surgery.storage.files import (
    ACTIVE,
    Content,
    fsync,
    make_durable,
    not_written,
    publish,
    sync_directories,
)
from surgery.storage.journal import (
    StagedEdit,
    commit_edits,
    drop_edit,
    fail_edit,
    settle_edit,
    stage_edit,
    undo_edit,
)
from surgery.storage.locks import held_lock, lock_again
from surgery.storage.staging import StagedCopy, drop_staging, hold, stage_copy

Staged = StagedCopy | StagedEdit


class CommitGroup:
    """The writes `save(..., group=...)` staged: made durable together, then published.

    A copy must be on disk before it is renamed into place, and an in-place edit's new files
    before they are swapped in. Alone, that is an fsync of every file and directory a write
    made, each a flush of the disk's cache, and a batch of small models would spend much of its
    time waiting on them. A group makes everything its writes hold durable at once (one `syncfs`
    per file system: one flush for all of them), then publishes each copy exactly as `save`
    would have, syncing each output's parent directory once, and swaps the in-place edits in
    step by step, one flush per step for all of them (`commit_edits`). A write saved with
    `sync=False` gets no flush.
    """

    def __init__(self) -> None:
        self.staged: list[StagedCopy] = []
        self.edits: list[StagedEdit] = []
        self.failures: dict[Path, SavedModelIOError] = {}
        """The outputs (or edited models) that could not be published, each with the error
        `save` would have raised."""

    def stage_copy(
        self, model: Model, files: dict[str, Content], out: Path, *, edited: bool, force: bool, sync: bool
    ) -> None:
        """Write a copy's staging directory; the group makes it durable, publishes it and drops it."""
        self.staged.append(stage_copy(model, files, out, edited=edited, force=force, sync=sync, grouped=True))

    def refuse_staged(self, path: Path) -> None:
        """Refuse a second in-place edit of a model: swapped in after the first, it would undo it."""
        with contextlib.suppress(OSError):
            info = os.stat(path)
            if any(os.path.samestat(os.stat(edit.path), info) for edit in self.edits):
                raise SavedModelIOError(
                    f"{path} already has an in-place edit waiting in this commit group: "
                    "make both edits to one loaded model and save it once"
                )

    def stage_edit(self, model: Model, files: dict[str, Content], *, sync: bool) -> None:
        """Write an in-place edit's files and keep its model locked until the commit."""
        held = held_lock(model.path)
        lock = os.dup(held.fd) if held is not None else -1  # outlives `model_lock`: until the commit
        try:
            edit = stage_edit(model, files, sync=sync, grouped=True)
        except BaseException:
            if lock >= 0:
                os.close(lock)
            raise
        edit.fd = lock
        self.edits.append(edit)

    def commit(self) -> None:
        """Make the staged writes durable and put them in place; failures go to `failures`."""
        staged, self.staged = self.staged, []
        edits, self.edits = self.edits, []
        if not staged and not edits:
            return  # handed over, or nothing saved
        try:
            durable: list[Staged] = [s for s in staged if s.sync] + [e for e in edits if e.sync]
            try:
                make_durable(durable)
            except OSError as err:
                for s in durable:  # a write saved without sync never waited on the disk: it goes on
                    if isinstance(s, StagedEdit):
                        self.failures[s.path] = fail_edit(s, err)
                    else:
                        self.failures[s.out] = not_written(s.out, err)
            self._publish(staged)
            live = [e for e in edits if e.path not in self.failures]
            commit_edits(live, sync_directories, self.failures, let_go_old=True)
        except BaseException:  # an interrupt: each in-place edit rolled back or finished
            for edit in edits:
                settle_edit(edit)
            raise
        finally:
            for s in staged:
                drop_staging(s)
            for edit in edits:
                drop_edit(edit)

    def _publish(self, staged: list[StagedCopy]) -> None:
        parents: dict[Path, None] = {}
        for s in staged:
            if s.out in self.failures:
                continue
            try:
                publish(s.path, s.out, replace=s.replace, sync=False)
                if s.sync:
                    parents[s.out.parent] = None
            except SavedModelIOError as err:
                self.failures[s.out] = err
            except OSError as err:
                self.failures[s.out] = not_written(s.out, err)
        for parent in parents:  # published: what is left is best effort, as in `publish`
            with contextlib.suppress(OSError):
                fsync(parent)

    def discard(self) -> None:
        """Drop the staged writes unpublished (an in-place edit's files are deleted: nothing changed)."""
        staged, self.staged = self.staged, []
        edits, self.edits = self.edits, []
        for s in staged:
            drop_staging(s)
        for edit in edits:
            undo_edit(edit)
            drop_edit(edit)

    def hand_over(self, channel: LockChannel | None = None) -> list[Staged]:
        """The staged writes, unpublished, for another process of this run to `adopt` and commit.

        This process lets go of them (their locks, its `ACTIVE` entries); until they are adopted,
        their names, which carry this process's id, keep other runs' clean-up off them while it
        lives. How a batch's workers leave the waits on the disk to their parent. An in-place
        edit's model lock goes through `channel` to the adopter, held all the way; without one,
        the model is unlocked in between, and the adopter locks it again and, at the commit,
        refuses the edit if the model changed or its files went meanwhile.
        """
        staged: list[Staged] = [*self.staged, *self.edits]
        self.staged, self.edits = [], []
        for s in staged:
            if isinstance(s, StagedEdit):
                ACTIVE.difference_update(str(p) for p in s.journal)
                if s.fd >= 0 and channel is not None:
                    channel.send(s.tx, s.fd)
            else:
                ACTIVE.discard(str(s.path))
            if s.fd >= 0:
                os.close(s.fd)
                s.fd = -1
        return staged

    def adopt(self, staged: list[Staged], channel: LockChannel | None = None) -> None:
        """Take over writes another process of this run handed over: committed with this group's.

        An in-place edit's lock is taken from `channel` if it came through it, else taken again."""
        for s in staged:
            if isinstance(s, StagedEdit):
                s.fd = channel.take(s.tx) if channel is not None else -1
                self._adopt_edit(s)
                continue
            try:
                hold(s)
            except OSError as err:
                self.failures[s.out] = not_written(s.out, err)
                drop_staging(s)
                continue
            self.staged.append(s)

    def _adopt_edit(self, edit: StagedEdit) -> None:
        """Lock the model again, as `model_lock` would (its lock did not come through a channel)."""
        ACTIVE.update(str(p) for p in edit.journal)
        if edit.fd < 0:
            try:
                edit.fd = lock_again(edit.path)
            except SavedModelIOError as err:  # another process edits it: the next load recovers ours
                self.failures[edit.path] = err
                drop_edit(edit)
                return
        self.edits.append(edit)


class LockChannel:
    """Carries in-place edits' model locks from a batch's workers to their parent.

    A lock belongs to the open file it was taken on, and a descriptor sent over a Unix socket
    (SCM_RIGHTS) keeps that file open while in flight: the model stays locked from its read in
    the worker to its swap in the parent. Made before the workers are forked (they inherit it);
    if every process of the run dies, the kernel drops what is in flight and the locks go.
    """

    def __init__(self) -> None:
        self._receiver, self._sender = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._receiver.setblocking(False)  # (recv_fds ignores its flags before Python 3.12)
        self._received: dict[str, int] = {}

    def send(self, tx: str, fd: int) -> None:
        """Send the lock `fd` of the transaction `tx` (a worker's; it may close its own after)."""
        socket.send_fds(self._sender, [tx.encode()], [fd])

    def take(self, tx: str) -> int:
        """The lock sent for `tx`, now the caller's to close; -1 if none came."""
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self._receiver, 256, 1)
            except BlockingIOError:
                break
            for fd in fds:
                os.set_inheritable(fd, False)
                self._received[message.decode()] = fd
        return self._received.pop(tx, -1)

    def close(self) -> None:
        """Close the sockets and any lock nobody took."""
        for fd in self._received.values():
            os.close(fd)
        self._received.clear()
        self._receiver.close()
        self._sender.close()


@contextlib.contextmanager
def commit_group() -> Iterator[CommitGroup]:
    """A new group, committed when the block ends: pass it to `save(..., group=group)`.

    `save(model, output, group=group)` stages the copy and returns the output it will publish;
    `save(model, in_place=True, group=group)` writes the new files beside the model's and keeps
    the model locked, and the group swaps them in (each edit still its own journaled
    transaction). The group's `failures` then names the outputs and models that could not be
    written (the same errors `save` raises alone). If the block raises, nothing it staged is
    published and every model is left as it was.
    """
    group = CommitGroup()
    try:
        yield group
    except BaseException:
        group.discard()
        raise
    with deferred():
        group.commit()
