"""Reading and writing SavedModel directories, losslessly, atomically, and safely under crashes.

The disk layer, in modules that import only downward: `files` (system calls, new files,
temporary names, syncs, renames) < `locks` (model directory locks, live writers) < `recovery`
(what killed runs left) < `staging` (writing a copy) and `journal` (writing in place) < `group`
(commit groups) < `readwrite` (`load`, `save`). `surgery.model` (`Model`, below them all) needs
none of them. docs/storage.md describes the durability protocol as a whole.
"""

from surgery.storage.files import is_temporary
from surgery.storage.group import CommitGroup, LockChannel, Staged, commit_group
from surgery.storage.journal import StagedEdit
from surgery.storage.locks import model_lock
from surgery.storage.readwrite import find_model_file, load, save, save_edit
from surgery.storage.recovery import recover
from surgery.storage.staging import StagedCopy

__all__ = [
    "CommitGroup",
    "LockChannel",
    "Staged",
    "StagedCopy",
    "StagedEdit",
    "commit_group",
    "find_model_file",
    "is_temporary",
    "load",
    "model_lock",
    "recover",
    "save",
    "save_edit",
]
