"""Models on the Hugging Face Hub: ``hf://OWNER/REPO[/FILE.onnx][@REVISION]`` wherever a model is taken.

Through ``huggingface_hub`` and its cache (``HF_HOME`` / ``HF_HUB_CACHE``), so a model downloaded once is used
offline afterwards, and ``HF_HUB_OFFLINE=1`` never touches the network. Without ``FILE`` the repository's one
``.onnx`` file at its root is taken (a repository of several names them). ``REVISION``: a branch, tag or commit.
The Hub's errors become one line: offline and not cached, no such repository, no such file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nst_core.errors import NSTError, first_line

PREFIX = "hf://"
_NAME = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass(frozen=True)
class HubName:
    """A parsed ``hf://`` name: the repository, the file in it (None: its one .onnx), the revision (None: main)."""

    repo: str
    file: str | None = None
    revision: str | None = None

    def __str__(self) -> str:
        file = f"/{self.file}" if self.file else ""
        return f"{PREFIX}{self.repo}{file}" + (f"@{self.revision}" if self.revision else "")


def is_hub_name(text: str) -> bool:
    return str(text).startswith(PREFIX)


def parse_hub_name(text: str) -> HubName:
    """``hf://OWNER/REPO[/FILE.onnx][@REVISION]`` -> HubName; NSTError for anything else."""
    rest, at, revision = str(text)[len(PREFIX) :].partition("@")
    parts = rest.strip("/").split("/")
    repo, file = "/".join(parts[:2]), "/".join(parts[2:]) or None
    if not _NAME.match(repo) or (file is not None and not file.endswith(".onnx")) or (at and not revision):
        raise NSTError(f"{text}: a Hub model is named hf://OWNER/REPO, hf://OWNER/REPO/FILE.onnx, and @REVISION after")
    return HubName(repo, file, revision or None)


def hub_model(text: str) -> str:
    """The local path of the ``hf://`` model ``text``: from the Hugging Face cache, downloaded into it when the
    Hub can be reached; NSTError (one line) when it cannot be had."""
    name = parse_hub_name(text)
    try:
        import huggingface_hub as hub
        from huggingface_hub import errors
    except ImportError:
        raise NSTError(f"{text}: models on the Hub need huggingface_hub: pip install huggingface_hub") from None
    try:
        if name.file:
            return hub.hf_hub_download(name.repo, name.file, revision=name.revision)
        folder = Path(hub.snapshot_download(name.repo, revision=name.revision, allow_patterns=["*.onnx"]))
    except errors.LocalEntryNotFoundError:  # first: in huggingface_hub 2 a kind of EntryNotFoundError
        raise NSTError(
            f"{text}: not in the local Hugging Face cache, and the Hub cannot be reached (offline, or HF_HUB_OFFLINE "
            "set); download it once online, or give a local .onnx file"
        ) from None
    except errors.RepositoryNotFoundError:
        raise NSTError(f"{text}: no such model repository on the Hub (or it is private)") from None
    except errors.RevisionNotFoundError:
        raise NSTError(f"{text}: the repository has no revision {name.revision!r}") from None
    except errors.EntryNotFoundError:
        raise NSTError(f"{text}: the repository has no file {name.file!r}") from None
    except (OSError, ValueError, errors.HfHubHTTPError) as e:
        raise NSTError(f"{text}: cannot get it from the Hub ({type(e).__name__}: {first_line(e)})") from None
    models = sorted(folder.glob("*.onnx"))
    if len(models) != 1:
        found = ", ".join(p.name for p in models) or "none"
        raise NSTError(
            f"{text}: the repository holds {len(models)} .onnx files at its root ({found}); name one: "
            f"{PREFIX}{name.repo}/FILE.onnx"
        )
    return str(models[0])
