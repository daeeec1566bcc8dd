"""The ganzoo error hierarchy.

Every error a user can cause derives from :class:`GanzooError`. The CLI turns any of them into
one line on stderr (``error: <message>``) and exit code 1; anything else reaching the user is a
bug. Messages name the file (or model) and the problem.
"""

from __future__ import annotations


class GanzooError(Exception):
    """Root of all ganzoo errors.

    Example:
        >>> raise GanzooError("ckpt/config.json: format_version 9 is newer than this ganzoo")
    """


class UnknownModelError(GanzooError):
    """A name is neither a registry entry, an alias, a Hub repo id nor an existing path.

    Example:
        >>> raise UnknownModelError("unknown model 'imagenet-256'; did you mean 'imagenet-stylegan2-256'?")
    """


class UnsafeCheckpointError(GanzooError):
    """A foreign file asks for code to be imported or executed, or is built to exhaust memory.

    Example:
        >>> raise UnsafeCheckpointError("evil.pkl: refused global 'posix.system'")
    """


class ChecksumMismatchError(GanzooError):
    """A file's sha256 differs from the one recorded for it.

    Example:
        >>> raise ChecksumMismatchError("ckpt/generator.safetensors: sha256 abc… != recorded 123…")
    """


class ConversionError(GanzooError):
    """A checkpoint cannot be turned into ganzoo networks: missing, unexpected or mis-shaped
    tensors, unknown layouts, truncated or corrupt files.

    Example:
        >>> raise ConversionError("net.pt: missing tensors: synthesis.b8.conv0.weight")
    """


class CheckpointError(GanzooError):
    """A ganzoo checkpoint directory is incomplete or its config.json is invalid.

    Example:
        >>> raise CheckpointError("ckpt: no config.json (not a ganzoo checkpoint directory)")
    """


class DatasetError(GanzooError):
    """A dataset is empty, unreadable or too small for what was asked.

    Example:
        >>> raise DatasetError("./mydata: 3 images, precision/recall with k=3 needs at least 4")
    """


class RegistryError(GanzooError):
    """A registry data file (``registry/*.toml`` or a user registry folder) is malformed.

    Example:
        >>> raise RegistryError("registry/stylegan2-ada.toml: model 'afhqcat-stylegan2-512': unknown key 'resolutoin'")
    """


class OutputError(GanzooError, OSError):
    """An output cannot be written where it was asked: a read-only or full disk, a directory where
    a file is expected, a suffix of another format, a non-empty directory without ``--overwrite``.

    Also an :class:`OSError`, so code that already catches ``OSError`` around a write still does.

    Example:
        >>> raise OutputError("/mnt/ro/grid.png: cannot write in /mnt/ro (Read-only file system)")
    """

    def __str__(self) -> str:  # the message, even when errno/strerror/filename are set
        return str(self.args[0]) if self.args else ""


class DownloadError(GanzooError):
    """A download failed: the server is unreachable, answered with an error, or the artifact needs
    a manual download.

    Example:
        >>> raise DownloadError("https://huggingface.co: unreachable; HF_HUB_OFFLINE=1 uses the local cache")
    """
