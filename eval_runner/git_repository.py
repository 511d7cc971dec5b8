"""battery-lib's Git repository, for ``git:<ref>`` labels: resolve a ref to a commit, export its tree.

Talks Git's own protocols through dulwich (smart HTTP in the cluster, file:// in tests), so the core
image needs no git binary. A ref is a branch, a tag (peeled to its commit), a full commit id or an
abbreviated one of at least 7 hex digits; the repository is fetched once per resolution, which is cheap
for a library's history. Git verifies every object by its id, so an exported tree is exactly the
commit's content.
"""

from __future__ import annotations

import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dulwich.client import get_transport_and_path
from dulwich.errors import GitProtocolError, HangupException
from dulwich.objects import Blob, Commit, ObjectID, Tag, Tree
from dulwich.repo import MemoryRepo
from packaging.requirements import InvalidRequirement, Requirement

from eval_runner.errors import ConfigError, DataError, TransientError

_FULL = re.compile(r"^[0-9a-f]{40}$")
_ABBREV = re.compile(r"^[0-9a-f]{7,39}$")


@dataclass
class GitRepository:
    """One remote repository, fetched on first use and kept in memory."""

    url: str
    _repo: MemoryRepo | None = field(default=None, init=False, repr=False)
    _refs: dict[bytes, ObjectID] = field(default_factory=dict, init=False, repr=False)

    def _fetched(self) -> MemoryRepo:
        if self._repo is None:
            repo = MemoryRepo()
            try:
                client, path = get_transport_and_path(self.url)
                result = client.fetch(path, repo)
            except (GitProtocolError, HangupException, OSError) as error:
                raise TransientError(
                    f"git repository {self.url}: fetch failed ({type(error).__name__}: {error})"
                ) from error
            self._repo = repo
            self._refs = {bytes(name): sha for name, sha in result.refs.items() if sha is not None}
        return self._repo

    def commit_of(self, ref: str) -> str:
        """The 40-hex commit ``ref`` means; a ref that names nothing is a ConfigError naming it."""
        repo = self._fetched()
        for name in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
            sha = self._refs.get(name.encode())
            if sha is not None:
                return self._peel(repo, sha).decode()
        if _FULL.match(ref) or _ABBREV.match(ref):
            matches = [
                sha
                for sha in repo.object_store
                if sha.decode().startswith(ref) and isinstance(repo.object_store[sha], Commit)
            ]
            if len(matches) == 1:
                return matches[0].decode()
            if len(matches) > 1:
                raise ConfigError(f"git ref {ref!r} is ambiguous in {self.url}: {len(matches)} commits start with it")
        raise ConfigError(f"git ref {ref!r} does not exist in {self.url} (no branch, tag or commit of that name)")

    @staticmethod
    def _peel(repo: MemoryRepo, sha: ObjectID) -> bytes:
        obj = repo.object_store[sha]
        while isinstance(obj, Tag):
            obj = repo.object_store[obj.object[1]]
        if not isinstance(obj, Commit):
            raise DataError(f"git object {sha.decode()} is a {obj.type_name.decode()}, not a commit")
        return obj.id

    def export(self, commit: str, out: Path) -> None:
        """Write the commit's tree into ``out`` (regular files and their executable bit; no symlinks)."""
        repo = self._fetched()
        obj = repo.object_store[ObjectID(commit.encode())]
        if not isinstance(obj, Commit):
            raise DataError(f"git object {commit} is not a commit")
        self._write_tree(repo, obj.tree, out)

    def _write_tree(self, repo: MemoryRepo, tree_id: ObjectID, out: Path) -> None:
        tree = repo.object_store[tree_id]
        assert isinstance(tree, Tree)  # noqa: S101  # a commit's tree is a tree by Git's object model
        out.mkdir(parents=True, exist_ok=True)
        for entry in tree.iteritems():
            name = entry.path.decode()
            if name in {"", ".", ".."} or "/" in name:
                raise DataError(f"git tree {tree_id.decode()} has an unsafe entry name {name!r}")
            if stat.S_ISDIR(entry.mode):
                self._write_tree(repo, entry.sha, out / name)
            elif stat.S_ISREG(entry.mode):
                blob = repo.object_store[entry.sha]
                assert isinstance(blob, Blob)  # noqa: S101
                target = out / name
                target.write_bytes(blob.data)
                target.chmod(0o755 if entry.mode & 0o111 else 0o644)
            # Symlinks and submodules are not part of a Python package's build input: skipped.

    def requirements_at(self, commit: str) -> list[Requirement]:
        """``[project].dependencies`` of the commit's pyproject.toml (what its wheel will require)."""
        repo = self._fetched()
        obj = repo.object_store[ObjectID(commit.encode())]
        assert isinstance(obj, Commit)  # noqa: S101
        tree = repo.object_store[obj.tree]
        assert isinstance(tree, Tree)  # noqa: S101
        try:
            _, sha = tree[b"pyproject.toml"]
        except KeyError as error:
            raise ConfigError(f"git commit {commit} of {self.url} has no pyproject.toml at its root") from error
        blob = repo.object_store[sha]
        assert isinstance(blob, Blob)  # noqa: S101
        try:
            project = tomllib.loads(blob.data.decode()).get("project", {})
            return [Requirement(text) for text in project.get("dependencies", [])]
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, InvalidRequirement) as error:
            raise DataError(f"git commit {commit}: pyproject.toml does not parse ({error})") from error
