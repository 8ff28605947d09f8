"""The mark a branch leaves in its data directory: ``branch-N.json`` beside its store.

A SQLite file that is lost, or emptied, would otherwise open as a new, empty store: the
branch would serve a bank that forgot every account. The marker remembers that the
directory held branch N's store, and of which bank (its genesis digest): a directory
with a marker and no store, or an empty one, is refused, and so is a marker of another
branch or bank. It is written durably (the file and its directory fsynced) once the
branch's store opens, before the branch serves.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from dbank.errors import Unavailable
from dbank.store._errors import StoreUnusable


@dataclass(frozen=True, slots=True)
class Marker:
    """What a data directory remembers of the branch whose store it holds."""

    branch_id: int
    genesis_digest: str
    store: str
    """The store file's name, beside the marker."""


def marker_path(store_path: Path) -> Path:
    """``DIR/branch-N.json`` for the store ``DIR/branch-N.sqlite3``."""
    return store_path.with_suffix(".json")


def read_marker(store_path: Path) -> Marker | None:
    """The marker beside ``store_path``, if there is one.

    Raises:
        StoreUnusable: the marker cannot be read or is not one.
    """
    path = marker_path(store_path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreUnusable(f"cannot read {path}: {exc.strerror}") from exc
    try:
        fields = json.loads(text)
        return Marker(int(fields["branch_id"]), str(fields["genesis_digest"]), str(fields["store"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreUnusable(f"{path} is not a branch's marker: {exc}") from exc


def check_marker(marker: Marker, store_path: Path, branch_id: int) -> None:
    """Refuse a marker of another branch than ``branch_id``.

    Raises:
        StoreUnusable: it names another branch.
    """
    if marker.branch_id != branch_id:
        raise StoreUnusable(
            f"{marker_path(store_path)} says this directory held branch {marker.branch_id}'s"
            f" store, not branch {branch_id}'s"
        )


def remember(store_path: Path, branch_id: int, genesis_digest: str) -> None:
    """Write the marker beside ``store_path`` unless there is one, durably; refuse one of
    another branch or bank.

    Raises:
        StoreUnusable: the marker names another branch, or cannot be written.
        Unavailable: ``GENESIS_MISMATCH``, the marker names another genesis digest: the
            store belongs to another bank.
    """
    found = read_marker(store_path)
    if found is not None:
        check_marker(found, store_path, branch_id)
        if found.genesis_digest != genesis_digest:
            # As ``Branch`` refuses a store holding another genesis op: the same mistake.
            raise Unavailable(
                f"branch {branch_id}: its store belongs to another bank ({marker_path(store_path)}"
                f" names genesis digest {found.genesis_digest[:16] or '(none)'}, not"
                f" {genesis_digest[:16] or '(none)'})",
                reason="GENESIS_MISMATCH",
            )
        return
    path = marker_path(store_path)
    text = json.dumps(
        {"branch_id": branch_id, "genesis_digest": genesis_digest, "store": store_path.name}
    )
    temporary = path.with_suffix(".json.tmp")
    try:
        with temporary.open("w") as file:
            file.write(text + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        raise StoreUnusable(f"cannot write {path}: {exc.strerror}") from exc
